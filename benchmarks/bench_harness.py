"""Benchmark: harness overhead for all 15 tasks through lm-eval with a fake LM (no generation cost), per phase.

Phases (wall-clock, one process): task loading (index + datasets + doc selection), request building and the fake
LM call, the diversity filter (batched EAD/SBERT/Vendi per task, plus quality grading on verifiable tasks), and
lm-eval's own aggregation. Metrics use all-MiniLM-L6-v2 on CPU; NLI is off (a CPU NLI pass over 500 x 120 pairs
per task is a GPU job, see docs/performance.md).

    LM_EVAL_DIVERSITY_DATA_DIR=../shared/data:lm_eval_diversity/demo_data python benchmarks/bench_harness.py --k 16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

WORDS = "the a answer value result first then we see that it is not only also each total sum so thus final".split()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--variants", type=int, default=8, help="distinct outputs per prompt (sampling repeats some)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--code", action="store_true", help="also grade humaneval/mbpp in the sandbox")
    args = ap.parse_args()
    os.environ.setdefault("LM_EVAL_DIVERSITY_SBERT_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
    os.environ.setdefault("LM_EVAL_DIVERSITY_METRICS", "ead,sbert,vendi")
    os.environ.setdefault("LM_EVAL_DIVERSITY_DEVICE", "cpu")

    from lm_eval.api.model import LM
    from lm_eval.evaluator import evaluate

    import lm_eval_diversity.harness as harness
    from lm_eval_diversity.catalogue.tasks import code_task_names, task_name, task_names
    from lm_eval_diversity.lm_eval_cli import task_manager
    from lm_eval_diversity.preflight import models_for
    from lm_eval_diversity.settings import COMMAND_DEFAULTS, resolve_settings

    timings: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)

    class FakeLM(LM):
        def generate_until(self, requests, disable_tqdm: bool = False):
            t0 = time.perf_counter()
            rng = random.Random(0)
            seen: dict[int, int] = {}
            out = []
            for r in requests:
                j = seen.get(id(r), 0)
                seen[id(r)] = j + 1
                local = random.Random(f"{r.doc_id}:{j % args.variants}")
                out.append(" ".join(local.choices(WORDS, k=20 + rng.randint(0, 20))) + ".")
            timings["fake_lm"] += time.perf_counter() - t0
            counts["requests"] += len(requests)
            return out

        def loglikelihood(self, requests):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

    apply = harness.DiversityMetricsFilter.apply

    def timed_apply(self, resps, docs):
        t0 = time.perf_counter()
        out = apply(self, resps, docs)
        timings["diversity_filter"] += time.perf_counter() - t0
        counts["docs"] += len(docs)
        return out

    harness.DiversityMetricsFilter.apply = timed_apply
    models_for(resolve_settings({}, COMMAND_DEFAULTS)[0])  # load the metric model outside the timed phases
    tasks = [task_name(t) for t in task_names() if args.code or t not in code_task_names()]
    t0 = time.perf_counter()
    tm = task_manager(include_defaults=False, metadata={"repeats": args.k})
    task_dict = tm.load(tasks)
    timings["task_loading"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate(
        lm=FakeLM(), task_dict=task_dict, limit=args.limit, bootstrap_iters=0, confirm_run_unsafe_code=args.code
    )
    total = time.perf_counter() - t0
    timings["evaluate_total"] = total
    timings["harness_rest"] = total - timings["fake_lm"] - timings["diversity_filter"]
    print(json.dumps({"tasks": len(tasks), "k": args.k, **counts, **{k: round(v, 2) for k, v in timings.items()}},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
