"""Benchmark: the bill of judging a paper-size run with ``lm-eval-diversity judge``'s own estimate (nothing is sent).

The paper judged output #0 of 500 prompts per task on five tasks (TL;DR, CNN/DM, XSum, WildBench, WritingPrompts in
two rounds against the base model) for 13 checkpoints, the base itself not on WritingPrompts. The datasets of those
tasks are not available offline, so each task's run is synthetic: the shipped demo docs' layout with documents and
outputs of typical lengths (``--words``, English words drawn from the shipped demo texts), written as lm-eval
samples and planned exactly as ``judge`` plans a real run (every prompt rendered). Token counts are the estimate's
(about 4 characters per token); prices are list prices of the judge model (USD per 1M tokens).

    python benchmarks/bench_judge_bill.py --n 500 --checkpoints 13
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# words: (document or query, model output #0, base model output #0); "typical" lengths of the paper's data
WORDS = {
    "tldr": (300, 60, 0),
    "cnn_dailymail": (690, 70, 0),
    "xsum": (430, 40, 0),
    "wildbench": (300, 450, 0),
    "writingprompts": (30, 600, 600),
}
CHECKLIST_ITEMS, CHECKLIST_WORDS = 5, 12


def word_pool() -> list[str]:
    from lm_eval_diversity.loader import DEMO_DATA_DIR

    words = []
    for path in sorted(Path(DEMO_DATA_DIR).rglob("*.jsonl")):
        words += re.findall(r"[A-Za-z']+", path.read_text(encoding="utf-8"))
    return words


def text(pool: list[str], n: int, offset: int) -> str:
    return " ".join(pool[(offset + i) % len(pool)] for i in range(n))


def synthetic_doc(task: str, template: dict, pool: list[str], n_words: int, i: int) -> dict:
    doc = json.loads(json.dumps(template))
    body = text(pool, n_words, 7919 * i)  # a different document per prompt (identical requests are asked once)
    if task == "tldr":
        doc["post"] = body
    elif task == "cnn_dailymail":
        doc["article"] = body
    elif task == "xsum":
        doc["document"] = body
    elif task == "wildbench":
        doc["conversation_input"] = [{"role": "user", "content": body}]
        doc["checklist"] = [text(pool, CHECKLIST_WORDS, 31 * i + j) + "?" for j in range(CHECKLIST_ITEMS)]
    elif task == "writingprompts":
        doc["prompt"] = "[WP] " + body
    return doc


def main() -> None:
    from lm_eval_diversity.judge.cache import JudgeCache
    from lm_eval_diversity.judge.cli import build_parser, prepare
    from lm_eval_diversity.judge.run import estimate, format_bill, prices_for
    from tests.judge.verdicts import demo_docs, write_task_samples

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500, help="prompts per task")
    ap.add_argument("--checkpoints", type=int, default=13, help="judged checkpoints, the base among them")
    ap.add_argument("--judge_model", default="gpt-4.1-mini")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--judge_outputs", default="first", choices=("first", "all"))
    args = ap.parse_args()
    pool = word_pool()
    with tempfile.TemporaryDirectory() as tmp:
        run, base = Path(tmp) / "run", Path(tmp) / "base"
        for task, (doc_words, out_words, base_words) in WORDS.items():
            template = demo_docs(task)[0]
            docs = [synthetic_doc(task, template, pool, doc_words, i) for i in range(args.n)]
            write_task_samples(run, task, docs, [[text(pool, out_words, 101 * i + 3)] for i in range(args.n)])
            if base_words:
                write_task_samples(base, task, docs, [[text(pool, base_words, 103 * i + 5)] for i in range(args.n)])
        cli = build_parser().parse_args(
            [str(run), "--judge_model", args.judge_model, "--base_url", "http://127.0.0.1:9/v1", "--judge_base",
             str(base), "--concurrency", str(args.concurrency), "--judge_outputs", args.judge_outputs, "--no_cache"]
        )  # fmt: skip
        settings, plans, notes, _ = prepare(cli)
        bills = estimate(plans, settings, JudgeCache(None))
    prices = prices_for(args.judge_model, None, None)
    print(f"one checkpoint, {args.n} prompts per task:")
    print(format_bill(bills, settings, prices))
    # the paper: every checkpoint on the four reference-based tasks, all but the base against the base on WritingPrompts
    scale = {t: args.checkpoints - (1 if plan.protocol.needs_opponent else 0) for t, plan in
             ((p.task, p) for p in plans)}  # fmt: skip
    requests = sum(bills[t].requests * s for t, s in scale.items())
    inp = sum(bills[t].input_tokens * s for t, s in scale.items())
    out_typ = sum(bills[t].typical_output_tokens * s for t, s in scale.items())
    out_max = sum(bills[t].max_output_tokens * s for t, s in scale.items())
    print(f"\npaper size ({args.checkpoints} checkpoints; WritingPrompts for {args.checkpoints - 1}): {requests:,} "
          f"requests, ~{inp / 1e6:.1f}M input tokens, ~{out_typ / 1e6:.1f}M output tokens (at most "
          f"{out_max / 1e6:.1f}M)")  # fmt: skip
    if prices:
        typical = (inp * prices[0] + out_typ * prices[1]) / 1e6
        worst = (inp * prices[0] + out_max * prices[1]) / 1e6
        print(f"  {args.judge_model} list prices: ~${typical:,.0f} (at most ${worst:,.0f}); through the Batch API "
              f"(half price) ~${typical / 2:,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
