"""The sweep driver: schedules the shards on Ray, tracks their states, writes the results, the status and the
``compare`` report; and the ``lm-eval-diversity sweep`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lm_eval_diversity.atomic import write_atomic
from lm_eval_diversity.sweep.plan import RESULTS_DIR, RUNNING, SCORES_DIR, PlanError, SweepError, SweepPlan, load_plan
from lm_eval_diversity.sweep.shards import (
    generation_shards,
    run_generation_shard,
    run_scoring_shard,
    scoring_spec,
    shard_dir,
    shard_done,
    task_doc_count,
)

# ---------------------------------------------------------------- the driver


@dataclass
class ShardState:
    spec: dict
    kind: str  # "generate" or "score"
    state: str = "pending"  # pending, done, skipped, failed
    error: str | None = None
    submitted: float | None = None
    finished: float | None = None
    attempt: int | None = None


@dataclass
class SweepSummary:
    shards: dict[str, ShardState]
    report: Path | None = None
    report_error: str | None = None
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> list[ShardState]:
        return [s for s in self.shards.values() if s.state == "failed"]

    def counts(self, kind: str | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.shards.values():
            if kind is None or s.kind == kind:
                out[s.state] = out.get(s.state, 0) + 1
        return out


def task_doc_counts(plan: SweepPlan) -> dict[str, int]:
    """Prompts per task (``limit`` applied), read through lm-eval on the driver."""
    counts = {}
    for task in plan.tasks:
        n = task_doc_count(task, plan.data_dir)
        counts[task] = min(n, plan.limit) if plan.limit else n
        if counts[task] == 0:
            raise PlanError(f"{plan.path}: task {task} has no documents")
    return counts


def status_table(plan: SweepPlan, states: dict[str, ShardState], started: float, now: float | None = None) -> str:
    """Shards done/running/failed per checkpoint x task, with the rate and an ETA."""
    now = now or time.time()
    root = plan.output_root
    rows = [("checkpoint", "task", "generate", "score")]
    for ck in plan.checkpoints:
        for task in plan.tasks:
            gen = [s for s in states.values() if s.kind == "generate" and s.spec["label"] == ck.label
                   and s.spec["task"] == task]  # fmt: skip
            sc = states.get(f"{ck.label}/{task}/score")
            rows.append((ck.label, task, _cell(gen, root), _cell([sc] if sc else [], root, scoring=True)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    fresh = [s for s in states.values() if s.state == "done" and s.finished]
    left = sum(s.state == "pending" for s in states.values())
    elapsed = max(now - started, 1e-9)
    rate = len(fresh) / elapsed * 60
    eta = f"{left / (len(fresh) / elapsed) / 60:.1f} min" if fresh and left else ("0" if not left else "n/a")
    lines.append(f"elapsed {elapsed:.0f} s | {len(fresh)} shards done this run ({rate:.1f}/min) | {left} left | "
                 f"ETA {eta}")
    return "\n".join(lines)


def _cell(shards: list[ShardState], root: Path, scoring: bool = False) -> str:
    if not shards:
        return "waiting" if scoring else "-"
    done = sum(s.state in ("done", "skipped") for s in shards)
    failed = sum(s.state == "failed" for s in shards)
    running = 0
    for s in shards:
        if s.state == "pending" and s.submitted:
            folder = (root / SCORES_DIR / s.spec["label"] / s.spec["task"]) if s.kind == "score" else shard_dir(
                root, s.spec["id"]
            )
            running += (folder / RUNNING).is_file()
    text = f"{done}/{len(shards)} done"
    if running:
        text += f", {running} running"
    if failed:
        text += f", {failed} FAILED"
    return text


def _error_text(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:500]


def write_results(plan: SweepPlan, states: dict[str, ShardState]) -> dict[str, Path]:
    """One score JSON per checkpoint (``results/<label>.json``, the ``score`` command's format) from its tasks."""
    root = plan.output_root
    out = {}
    for ck in plan.checkpoints:
        tasks = {}
        for task in plan.tasks:
            st = states.get(f"{ck.label}/{task}/score")
            if st and st.state in ("done", "skipped"):
                tasks[task] = json.loads((root / SCORES_DIR / ck.label / task / "task.json").read_text("utf-8"))
        if not tasks:
            continue
        seeds = {
            s.spec["id"]: s.spec["seed"]
            for s in states.values()
            if s.kind == "generate" and s.spec["label"] == ck.label
        }
        data = {
            "settings": plan.settings.to_dict(),
            "tasks": tasks,
            "sweep": {
                "plan": str(plan.path),
                "model": ck.model,
                "model_args": ck.model_args,
                "repeats": plan.repeats,
                "gen_kwargs": plan.gen_kwargs,
                "prompt_shards": plan.prompt_shards,
                "repeat_shards": plan.repeat_shards,
                "plan_seed": plan.seed,
                "shard_seeds": seeds,
            },
        }
        path = root / RESULTS_DIR / f"{ck.label}.json"
        write_atomic(path, json.dumps(data, indent=1, allow_nan=False))
        out[ck.label] = path
    return out


def write_report(plan: SweepPlan, results: dict[str, Path]) -> Path:
    """``compare`` over the lineage(s) with the baseline: HTML (with the lineage plot when matplotlib is there) and
    Markdown, in the output root."""
    import importlib.util

    from lm_eval_diversity.compare import run_compare

    root = plan.output_root
    lineages = {
        name: {lbl: str(results[lbl]) for lbl in stages if lbl in results} for name, stages in plan.lineages
    }
    lineage_file = root / "lineages.json"
    write_atomic(lineage_file, json.dumps({"lineages": {n: s for n, s in lineages.items() if s}}, indent=1))
    args = [str(results[c.label]) for c in plan.checkpoints if c.label in results]
    args += ["--labels", ",".join(c.label for c in plan.checkpoints if c.label in results)]
    args += ["--lineage", str(lineage_file)]
    if plan.baseline in results:
        args += ["--baseline", plan.baseline]
    html = root / "report.html"
    plot = ["--plot", str(root / "report.png")] if importlib.util.find_spec("matplotlib") else []
    rc = run_compare([*args, *plot, "--format", "html", "--output", str(html)])
    rc = rc or run_compare([*args, "--format", "markdown", "--output", str(root / "report.md")])
    if rc not in (0, 1):
        raise RuntimeError(f"compare failed (exit {rc}); see the message above")
    return html


def run_sweep(
    plan: SweepPlan,
    address: str | None = None,
    num_cpus: int | None = None,
    status_every: float = 30.0,
    echo: Callable[[str], None] | None = None,
) -> SweepSummary:
    """Run (or resume) the whole sweep on Ray and write the report; finished shards are never redone."""
    import ray

    echo = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    root = plan.output_root
    root.mkdir(parents=True, exist_ok=True)
    n_docs = task_doc_counts(plan)
    gen_specs = generation_shards(plan, n_docs)
    states: dict[str, ShardState] = {}
    for spec in gen_specs:
        done = shard_done(shard_dir(root, spec["id"]), spec)
        states[spec["id"]] = ShardState(spec, "generate", "skipped" if done else "pending")
    by_task: dict[tuple[str, str], list[dict]] = {}
    for spec in gen_specs:
        by_task.setdefault((spec["label"], spec["task"]), []).append(spec)

    started = time.time()
    init_kwargs: dict = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
    if address:
        init_kwargs["address"] = address
    else:  # a new local instance, even when a cluster started on this machine is around
        init_kwargs["address"] = "local"
        if num_cpus:
            init_kwargs["num_cpus"] = num_cpus
    try:
        ray.init(**init_kwargs)
    except Exception as exc:  # noqa: BLE001 - connection/auth failures of any kind: say where, no traceback
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise SweepError(
            f"cannot start or reach {where}: {_error_text(exc)} (a cluster with token authentication needs "
            "RAY_AUTH_MODE=token and its token, see docs/scale.md)"
        ) from None
    gpus = float(ray.cluster_resources().get("GPU", 0))
    score_gpus = (1.0 if gpus else 0.0) if plan.scoring_gpus == "auto" else float(plan.scoring_gpus)
    gen_task = ray.remote(run_generation_shard).options(
        num_cpus=1, num_gpus=plan.tensor_parallel_size if gpus else 0, max_retries=plan.max_retries,
        retry_exceptions=True,
    )  # fmt: skip
    score_task_remote = ray.remote(run_scoring_shard).options(
        num_cpus=1, num_gpus=score_gpus, max_retries=plan.max_retries, retry_exceptions=True
    )
    pending: dict = {}

    def submit(state: ShardState) -> None:
        fn = gen_task if state.kind == "generate" else score_task_remote
        state.submitted = time.time()
        pending[fn.remote(state.spec, str(root))] = state

    def maybe_score(label: str, task: str) -> None:
        gens = [states[s["id"]] for s in by_task[(label, task)]]
        if not all(g.state in ("done", "skipped") for g in gens):
            return
        spec = scoring_spec(plan, label, task, by_task[(label, task)])
        folder = root / SCORES_DIR / label / task
        st = ShardState(spec, "score", "skipped" if shard_done(folder, spec) else "pending")
        states[spec["id"]] = st
        if st.state == "pending":
            submit(st)

    summary = SweepSummary(states)
    try:
        for st in list(states.values()):
            if st.state == "pending":
                submit(st)
        for label, task in by_task:
            maybe_score(label, task)
        last_status = 0.0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=min(status_every, 5.0))
            for ref in ready:
                st = pending.pop(ref)
                try:
                    manifest = ray.get(ref)
                    st.state, st.attempt = "done", manifest.get("attempt")
                except Exception as exc:  # noqa: BLE001 - a shard's failure is reported, the others go on
                    st.state, st.error = "failed", _error_text(exc)
                    echo(f"[sweep] shard {st.spec['id']} FAILED after retries: {st.error}")
                st.finished = time.time()
                if st.kind == "generate" and st.state == "done":
                    maybe_score(st.spec["label"], st.spec["task"])
            if time.time() - last_status >= status_every:
                echo(status_table(plan, states, started))
                last_status = time.time()
    except KeyboardInterrupt:
        summary.interrupted = True
        for ref in pending:
            ray.cancel(ref, force=True)
        echo("[sweep] interrupted: finished shards are kept; rerun the same command to resume")
    finally:
        summary.elapsed_s = time.time() - started
        _write_status(plan, states, summary)
        if not address:
            ray.shutdown()
    echo(status_table(plan, states, started))
    if not summary.interrupted:
        results = write_results(plan, states)
        if results:
            try:
                summary.report = write_report(plan, results)
            except (RuntimeError, ValueError, OSError) as exc:
                summary.report_error = str(exc)
    return summary


def _write_status(plan: SweepPlan, states: dict[str, ShardState], summary: SweepSummary) -> None:
    data = {
        "elapsed_s": round(summary.elapsed_s, 3),
        "interrupted": summary.interrupted,
        "shards": {
            sid: {"kind": s.kind, "state": s.state, "error": s.error, "attempt": s.attempt,
                  "seed": s.spec.get("seed"),
                  "driver_s": round(s.finished - s.submitted, 3) if s.finished and s.submitted else None}
            for sid, s in states.items()
        },  # fmt: skip
    }
    write_atomic(plan.output_root / "status.json", json.dumps(data, indent=1))


# ---------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lm-eval-diversity sweep",
        description="Run a checkpoint x task sweep on Ray (local, or a cluster with --address auto): sharded "
        "generation with distinct seeds, exact merge, scoring, and the compare report. Reruns resume.",
    )
    p.add_argument("plan", help="plan YAML/JSON (format in docs/scale.md)")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto': the cluster this node belongs to)")
    p.add_argument("--num_cpus", type=int, default=None, help="CPUs of a local Ray instance (default: all)")
    p.add_argument("--status_every", type=float, default=30.0, help="seconds between status tables")
    p.add_argument("--dry_run", action="store_true", help="print the shards and their seeds; run nothing")
    return p


def run_sweep_cli(argv: list[str]) -> int:
    """``sweep``: 0 all shards finished and the report written; 1 a shard failed or the report did not build;
    2 bad plan; 130 interrupted."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        plan = load_plan(args.plan)
        if args.dry_run:
            specs = generation_shards(plan, task_doc_counts(plan))
            for s in specs:
                print(f"{s['id']}  docs {s['doc_ids'][0]}-{s['doc_ids'][-1]}  K {s['repeats']}  seed {s['seed']}")
            return 0
        if args.address is None:
            try:
                import ray  # noqa: F401
            except ImportError:
                raise PlanError('the sweep needs Ray: pip install "lm-eval-diversity[ray]"') from None
        summary = run_sweep(plan, address=args.address, num_cpus=args.num_cpus, status_every=args.status_every)
    except (PlanError, SweepError, ValueError, FileNotFoundError) as exc:
        print(f"lm-eval-diversity sweep: error: {exc}", file=sys.stderr)
        return 2
    if summary.interrupted:
        return 130
    for st in summary.failed:
        print(f"FAILED {st.spec['id']}: {st.error}", file=sys.stderr)
    if summary.report_error:
        print(f"lm-eval-diversity sweep: report not written: {summary.report_error}", file=sys.stderr)
    if summary.report:
        print(f"[sweep] report: {summary.report}", file=sys.stderr)
    c = summary.counts()
    print(
        f"[sweep] {c.get('done', 0)} shards run, {c.get('skipped', 0)} already finished (skipped), "
        f"{c.get('failed', 0)} failed, in {summary.elapsed_s:.1f} s",
        file=sys.stderr,
    )
    return 1 if summary.failed or summary.report_error else 0
