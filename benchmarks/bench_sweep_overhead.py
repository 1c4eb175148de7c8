"""Benchmark: what Ray scheduling costs per shard of a sweep.

1. Round trip of an empty Ray task (submit -> result), one at a time after warm-up, and the throughput of many at
   once: the floor of the per-shard cost.
2. A real sweep (``--plan``; e.g. the tiny GPT-2 on 2 tasks): for every shard, the driver's time from submission
   to result minus the time the shard body ran (its manifest's ``wall_s``): scheduling, worker start (a fresh
   process per generation shard), argument and result transfer. Run it with no more shards than CPUs to keep
   queueing out, or read the minimum. Also the driver's peak memory and the size of the samples files.

    python benchmarks/bench_sweep_overhead.py --plan plan.yaml --num_cpus 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _noop(x: int) -> int:
    return x


def empty_task_costs(num_cpus: int, n: int) -> dict:
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    task = ray.remote(_noop).options(num_cpus=1)
    ray.get([task.remote(i) for i in range(num_cpus * 2)])  # start the workers
    lat = []
    for i in range(n):
        t = time.perf_counter()
        ray.get(task.remote(i))
        lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    ray.get([task.remote(i) for i in range(n)])
    batch_s = time.perf_counter() - t
    ray.shutdown()
    return {
        "ray_init_s": round(init_s, 2),
        "roundtrip_ms_median": round(statistics.median(lat) * 1e3, 2),
        "roundtrip_ms_p90": round(sorted(lat)[int(0.9 * n)] * 1e3, 2),
        "tasks_per_s_parallel": round(n / batch_s, 1),
    }


def sweep_costs(plan_path: str, num_cpus: int, num_gpus: int | None) -> dict:
    import resource

    from lm_eval_diversity import sweep

    plan = sweep.load_plan(plan_path)
    t = time.perf_counter()
    summary = sweep.run_sweep(plan, num_cpus=num_cpus, num_gpus=num_gpus, status_every=1e9, echo=lambda _: None)
    total = time.perf_counter() - t
    rows = []
    for st in summary.shards.values():
        if st.state != "done":
            continue
        m = sweep.read_manifest(st.folder(plan.output_root))
        rows.append((st.kind, st.finished - st.submitted, m["wall_s"]))
    out = {
        "total_s": round(total, 1),
        "shards": len(rows),
        "driver_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "files_mb": {
            part: round(sum(f.stat().st_size for f in (plan.output_root / part).rglob("*.jsonl")) / 2**20, 3)
            for part in (sweep.SHARDS_DIR, sweep.SAMPLES_DIR)
        },
    }
    for kind in ("generate", "score"):
        over = [d - w for k, d, w in rows if k == kind]
        body = [w for k, _, w in rows if k == kind]
        if over:
            out[kind] = {
                "n": len(over),
                "body_s_median": round(statistics.median(body), 2),
                "overhead_s_min": round(min(over), 2),
                "overhead_s_median": round(statistics.median(over), 2),
            }
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--plan", default=None, help="sweep plan to run (fresh output root: nothing skipped)")
    p.add_argument("--num_cpus", type=int, default=2)
    p.add_argument("--num_gpus", type=int, default=None, help="GPUs of the local instance (fake ones on a CPU machine)")
    p.add_argument("--n", type=int, default=200, help="empty tasks")
    args = p.parse_args()
    print(json.dumps({"empty_task": empty_task_costs(args.num_cpus, args.n)}, indent=1))
    if args.plan:
        print(json.dumps({"sweep": sweep_costs(args.plan, args.num_cpus, args.num_gpus)}, indent=1))


if __name__ == "__main__":
    main()
