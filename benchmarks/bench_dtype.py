"""Benchmark: how much the metric-model precision (``dtype``) moves every diversity number, on real texts.

Scores the same prompt groups with the SBERT/NLI models in float32 and in a lower precision (bfloat16 by default;
CPU bf16 works for this measurement) and prints, per metric and level, the float32 value, the difference and the
largest per-prompt difference. Texts: TruthfulQA's reference answers (the correct and incorrect answers of a
question form one group of K: related, paraphrase-like texts) and Alpaca outputs (K consecutive outputs per group:
unrelated texts), read from the offline data folder.

    LM_EVAL_DIVERSITY_DATA_DIR=../shared/data python benchmarks/bench_dtype.py --k 4 --n 120 --nli_model PATH
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def groups_from_data(data_dir: Path, k: int, n: int) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    tqa = [json.loads(x) for x in (data_dir / "truthfulqa" / "validation.jsonl").read_text("utf-8").splitlines() if x]
    sets = [(d["correct_answers"] + d["incorrect_answers"])[:k] for d in tqa]
    out["truthfulqa_answers"] = [s for s in sets if len(s) == k][:n]
    alp = [json.loads(x)["output"] for x in (data_dir / "alpaca" / "train.jsonl").read_text("utf-8").splitlines() if x]
    out["alpaca_outputs"] = [alp[i : i + k] for i in range(0, len(alp) - k + 1, k)][:n]
    return out


def main() -> None:
    from lm_eval_diversity.scoring import PromptGroup, load_models, score_groups
    from lm_eval_diversity.settings import DiversitySettings

    p = argparse.ArgumentParser()
    p.add_argument("--data_dir", default=os.environ.get("LM_EVAL_DIVERSITY_DATA_DIR", "../shared/data").split(":")[0])
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--n", type=int, default=120, help="prompt groups per text source")
    p.add_argument("--sbert_model", default="sentence-transformers/all-MiniLM-L6-v2")
    p.add_argument("--nli_model", default=None, help="NLI model path (omit: no NLI)")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    metrics = ("ead", "sbert", "vendi", "nli") if args.nli_model else ("ead", "sbert", "vendi")
    base = DiversitySettings(
        metrics=metrics, corpus_metrics=metrics, sbert_model=args.sbert_model, nli_model=args.nli_model or "",
        device=args.device, corpus_sample_size=100,
    )  # fmt: skip
    sources = groups_from_data(Path(args.data_dir), args.k, args.n)
    results = {}
    for dtype in ("float32", args.dtype):
        settings = base.replace(dtype=dtype)
        models = load_models(settings)
        for name, sets in sources.items():
            groups = [PromptGroup(doc_id=i, outputs=list(s)) for i, s in enumerate(sets)]
            t0 = time.perf_counter()
            results[(dtype, name)] = score_groups(groups, settings, models)
            results[(dtype, name)].diagnostics["seconds"] = time.perf_counter() - t0
    print(f"K={args.k}, device={args.device}, {args.dtype} vs float32")
    print("| texts | metric | level | float32 | difference | largest per-prompt difference |")
    print("|---|---|---|---|---|---|")
    for name, sets in sources.items():
        a, b = results[("float32", name)], results[(args.dtype, name)]
        for m in metrics:
            worst = max(
                (abs(ra[m] - rb[m]) for ra, rb in zip(a.per_prompt, b.per_prompt) if not math.isnan(ra[m])), default=0
            )
            for lvl in ("per_input_mean", "across_input", "overall"):
                va, vb = a.metrics[m][lvl], b.metrics[m][lvl]
                extra = f"{worst:.2e}" if lvl == "per_input_mean" else ""
                print(f"| {name} ({len(sets)}) | {m} | {lvl} | {va:.5f} | {vb - va:+.2e} | {extra} |")
        print(
            f"| {name} | time | | {a.diagnostics['seconds']:.1f} s | {b.diagnostics['seconds']:.1f} s "
            f"({args.dtype}) | |"
        )


if __name__ == "__main__":
    main()
