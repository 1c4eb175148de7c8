"""Benchmark: the metric backends (``metric_backend``) side by side in one process, and their error against torch.

Per backend (torch, onnx, onnx-int8, openvino, openvino-int8), interleaved over ``--reps`` repetitions (the order
reverses every repetition; medians of wall and CPU seconds, CPU including the runtimes' threads):
  * ``score``: loading the models (the export already cached) and ``score_groups`` with EAD + SBERT + Vendi at all
    levels over realistic outputs (``bench_scoring.realistic_tasks``: five tasks, real references, K variants);
  * NLI per pair: ``NLIModel.class_probs`` on realistic aligned sentence pairs, with a random classifier of a
    chosen size as compute stand-in (``--nli_layers``/``--nli_hidden``; no MNLI model installs offline);
  * the one-off export (cache miss) of each backend, in a fresh cache directory.
Then the error of every backend against torch on held-out texts (another seed): per metric and level, the largest
and mean absolute difference of the task values and the largest per-prompt difference; and whether the order of
three "checkpoints" (the same references, each sentence kept with probability 0.3, 0.6 or 0.9) changes on any
task and metric.

    python benchmarks/bench_backends.py --n_prompts 95 --k 16 --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
METRICS = ("ead", "sbert", "vendi")
LEVELS = ("per_input_mean", "across_input", "overall")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n_prompts", type=int, default=95, help="prompts over five tasks (95 x 16 = 1,520 texts)")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--nli_pairs", type=int, default=256)
    ap.add_argument("--nli_layers", type=int, default=12)
    ap.add_argument("--nli_hidden", type=int, default=768)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--skip", default="", help="comma list of: score, nli, export, error")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    backends = args.backends.split(",")

    import torch
    from bench_scoring import _interleaved, _timed, build_nli_standin, realistic_tasks

    from lm_eval_diversity import models
    from lm_eval_diversity.estimate import measured_work
    from lm_eval_diversity.scoring import PromptGroup, load_models, score_groups
    from lm_eval_diversity.settings import DiversitySettings

    data = Path(args.data_dir)
    base = DiversitySettings(
        metrics=METRICS, corpus_metrics=METRICS, sbert_model=MINILM, device="cpu", batch_size=args.batch_size
    )
    out: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                 f"torch {torch.__version__} ({torch.get_num_threads()} threads)", "args": vars(args)}  # fmt: skip

    def groups_of(tasks):
        return {t: [PromptGroup(i, o) for i, o in enumerate(g)] for t, g in tasks.items()}

    def scorer(backend, tasks):
        def run():
            settings = base.replace(backend=backend)
            loaded = load_models(settings)
            return {t: score_groups(g, settings, loaded) for t, g in tasks.items()}

        return run

    # a fresh export cache (the export timings need misses), or the one given to reuse its exports
    cache = Path(os.environ.get(models.CACHE_ENV) or tempfile.mkdtemp(prefix="bench-backends-"))
    os.environ[models.CACHE_ENV] = str(cache)
    nli_path = str(cache / f"nli-standin-{args.nli_layers}x{args.nli_hidden}")
    if not Path(nli_path, "config.json").is_file():
        build_nli_standin(nli_path, args.nli_layers, args.nli_hidden)
    if "export" not in skip:  # cache misses: the one-off export of each backend (MiniLM and the NLI stand-in)
        out["export_s"] = {}
        for b in backends[1:] if backends[0] == "torch" else backends:
            wall, cpu = _timed(lambda b=b: (models.load_sentence_model(MINILM, "cpu", backend=b),
                                            models.load_nli_model(nli_path, "cpu", backend=b)))  # fmt: skip
            out["export_s"][b] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
        print("export (cache miss), MiniLM + NLI stand-in:", out["export_s"], flush=True)
    for b in backends:  # warm the cache (and the page cache) before timing
        models.load_sentence_model(MINILM, "cpu", backend=b)
        if "nli" not in skip:
            models.load_nli_model(nli_path, "cpu", backend=b)

    if "score" not in skip:
        tasks = groups_of(realistic_tasks(args.n_prompts, args.k, data))
        n_texts = sum(len(g.outputs) for gs in tasks.values() for g in gs)
        out["score"] = _interleaved({b: scorer(b, tasks) for b in backends}, args.reps)
        out["score_texts"] = n_texts
        print(f"score, {n_texts} texts (load + EAD/SBERT/Vendi, all levels):", out["score"], flush=True)

    if "nli" not in skip:
        settings = base.replace(metrics=("nli",))
        sample = realistic_tasks(40, args.k, data, seed=2)
        works = [measured_work(t, [PromptGroup(i, o) for i, o in enumerate(g)], settings, args.nli_pairs)
                 for t, g in sample.items()]  # fmt: skip
        pairs = [p for w in works for p in w.sample_pairs][: args.nli_pairs]
        nli = {b: models.load_nli_model(nli_path, "cpu", backend=b) for b in backends}
        timing = _interleaved(
            {b: (lambda m=m: m.class_probs(pairs, batch_size=args.batch_size)) for b, m in nli.items()}, args.reps
        )
        ref = nli[backends[0]].class_probs(pairs, batch_size=args.batch_size)
        for b, m in nli.items():
            timing[b]["pairs_per_cpu_s"] = round(len(pairs) / timing[b]["cpu_s"], 2)
            timing[b]["max_abs_prob_error"] = float(abs(m.class_probs(pairs, batch_size=args.batch_size) - ref).max())
        out["nli"] = {"pairs": len(pairs), "model": f"{args.nli_layers} x {args.nli_hidden} stand-in", **timing}
        print("NLI per pair:", out["nli"], flush=True)

    if "error" not in skip:
        held_out = {
            f"keep {p}": groups_of(realistic_tasks(args.n_prompts, args.k, data, seed=1, keep=p))
            for p in (0.3, 0.6, 0.9)
        }
        values = {b: {c: scorer(b, tasks)() for c, tasks in held_out.items()} for b in backends}
        out["error"] = {}
        ref = values[backends[0]]
        for b in backends[1:]:
            rows = {}
            for m in METRICS:
                for lvl in LEVELS:
                    diffs = [abs(values[b][c][t].metrics[m][lvl] - ref[c][t].metrics[m][lvl])
                             for c in held_out for t in ref[c]]  # fmt: skip
                    per_prompt = [abs(rb[m] - ra[m]) for c in held_out for t in ref[c]
                                  for ra, rb in zip(ref[c][t].per_prompt, values[b][c][t].per_prompt)]  # fmt: skip
                    worst_prompt = max(per_prompt) if lvl == "per_input_mean" else None
                    rows[f"{m} {lvl}"] = {
                        "max": max(diffs),
                        "mean": statistics.mean(diffs),
                        "per_prompt_max": worst_prompt,
                    }
            changed = []
            for m in METRICS:
                for lvl in LEVELS:
                    for t in ref["keep 0.6"]:

                        def order(v):
                            return sorted(held_out, key=lambda c: v[c][t].metrics[m][lvl])  # noqa: B023

                        if order(ref) != order(values[b]):
                            changed.append(f"{t} {m} {lvl}")
            out["error"][b] = {"values": rows, "ranking_changes": changed}
            print(f"error of {b} vs torch:", json.dumps(out["error"][b]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
