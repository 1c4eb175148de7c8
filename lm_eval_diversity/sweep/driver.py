"""The sweep driver: schedules the shards on Ray, tracks their states, writes the results, the status and the
``compare`` report; and the ``lm-eval-diversity sweep`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_diversity.atomic import write_atomic
from lm_eval_diversity.sweep.cluster import (
    ShardResources,
    check_workers,
    cluster_gpus,
    output_root_lock,
    remote_shards,
    resolve_resources,
    start_ray,
)
from lm_eval_diversity.sweep.plan import RESULTS_DIR, RUNNING, PlanError, SweepError, SweepPlan, load_plan
from lm_eval_diversity.sweep.shards import (
    error_text,
    generation_shards,
    score_dir,
    scoring_spec,
    shard_dir,
    shard_done,
    shards_done,
    task_doc_count,
)

# ---------------------------------------------------------------- shard states

# waiting: a scoring shard whose generation shards are not all finished; pending: to be submitted; submitted: in
# Ray's hands (queued, or running once its worker wrote the running marker of this run); done, skipped (finished
# before this run), failed, cancelled (Ctrl-C).
FINISHED = ("done", "skipped")


@dataclass
class ShardState:
    spec: dict
    kind: str  # "generate" or "score"
    state: str = "pending"
    error: str | None = None
    submitted: float | None = None
    finished: float | None = None
    attempt: int | None = None

    def folder(self, root: Path) -> Path:
        if self.kind == "score":
            return score_dir(root, self.spec["label"], self.spec["task"])
        return shard_dir(root, self.spec["id"])

    def marker(self, root: Path) -> dict | None:
        """The running marker a worker wrote when it started the shard (attempt, run id, host, pid)."""
        try:
            marker = json.loads((self.folder(root) / RUNNING).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return marker if isinstance(marker, dict) else None

    def running(self, root: Path, run_id: str) -> bool:
        """Submitted and started by a worker of this run (a marker left by an earlier run does not count)."""
        return self.state == "submitted" and (self.marker(root) or {}).get("run_id") == run_id


@dataclass
class SweepSummary:
    shards: dict[str, ShardState]
    report: Path | None = None
    report_error: str | None = None
    elapsed_s: float = 0.0
    interrupted: bool = False
    resources: ShardResources | None = None

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
    """Prompts per task (``limit`` applied), read through lm-eval on the driver; a task whose documents cannot be
    read is a :class:`PlanError` naming it, before anything is written."""
    counts = {}
    for task in plan.tasks:
        try:
            n = task_doc_count(task, plan.data_dir)
        except Exception as exc:  # noqa: BLE001 - a loader error of any kind names the task and the data folder
            where = f"data_dir {plan.data_dir}" if plan.data_dir else "the HuggingFace Hub (no data_dir)"
            raise PlanError(
                f"{plan.path}: task {task}: cannot read its documents from {where}: {error_text(exc)}"
            ) from None
        counts[task] = min(n, plan.limit) if plan.limit else n
        if counts[task] == 0:
            raise PlanError(f"{plan.path}: task {task} has no documents")
    return counts


# ---------------------------------------------------------------- status


def _cell(shards: list[ShardState], root: Path, run_id: str) -> str:
    done = sum(s.state in FINISHED for s in shards)
    running = sum(s.running(root, run_id) for s in shards)
    queued = sum(s.state == "submitted" for s in shards) - running
    failed = sum(s.state == "failed" for s in shards)
    text = f"{done}/{len(shards)} done"
    for n, what in ((running, "running"), (queued, "queued"), (failed, "FAILED")):
        if n:
            text += f", {n} {what}"
    return text


def _rate_line(kind: str, states: list[ShardState], now: float) -> str:
    """Shards of one kind finished this run, their rate since the first was submitted, and the ETA of the rest."""
    fresh = [s for s in states if s.state == "done" and s.finished]
    left = sum(s.state not in (*FINISHED, "failed", "cancelled") for s in states)
    first = min((s.submitted for s in states if s.submitted), default=None)
    rate = len(fresh) / max(now - first, 1e-9) * 60 if fresh and first else 0.0
    eta = f"{left / rate:.1f} min" if rate and left else ("0" if not left else "n/a")
    return f"{kind} {len(fresh)} done this run ({rate:.1f}/min), {left} left, ETA {eta}"


def status_table(plan: SweepPlan, states: dict[str, ShardState], started: float, now: float | None = None,
                 run_id: str = "") -> str:  # fmt: skip
    """Per checkpoint x task: generation and scoring shards done/running/queued/failed; then the rate and ETA of
    each kind, counting every shard the sweep will run."""
    now = now or time.time()
    rows = [("checkpoint", "task", "generate", "score")]
    by_unit: dict[tuple[str, str, str], list[ShardState]] = {}
    for s in states.values():
        by_unit.setdefault((s.spec["label"], s.spec["task"], s.kind), []).append(s)
    for ck in plan.checkpoints:
        for task in plan.tasks:
            gen, sc = by_unit.get((ck.label, task, "generate"), []), by_unit.get((ck.label, task, "score"), [])
            rows.append((ck.label, task, _cell(gen, plan.output_root, run_id), _cell(sc, plan.output_root, run_id)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    kinds = [("generation", "generate"), ("scoring", "score")]
    rates = " | ".join(_rate_line(name, [s for s in states.values() if s.kind == k], now) for name, k in kinds)
    lines.append(f"elapsed {now - started:.0f} s | {rates}")
    return "\n".join(lines)


def write_status(plan: SweepPlan, states: dict[str, ShardState], summary: SweepSummary, run_id: str) -> None:
    """``status.json``: every shard's state (running only when a worker of this run started it), seed, error,
    attempt and driver-side time."""
    root = plan.output_root

    def state(s: ShardState) -> str:
        return ("running" if s.running(root, run_id) else "queued") if s.state == "submitted" else s.state

    data = {
        "run_id": run_id,
        "updated": time.time(),
        "elapsed_s": round(summary.elapsed_s, 3),
        "interrupted": summary.interrupted,
        "shards": {
            sid: {
                "kind": s.kind,
                "state": state(s),
                "error": s.error,
                "attempt": s.attempt,
                "seed": s.spec.get("seed"),
                "driver_s": round(s.finished - s.submitted, 3) if s.finished and s.submitted else None,
            }
            for sid, s in states.items()
        },  # fmt: skip
    }
    write_atomic(root / "status.json", json.dumps(data, indent=1))


# ---------------------------------------------------------------- results and report


def write_results(plan: SweepPlan, states: dict[str, ShardState]) -> dict[str, Path]:
    """One score JSON per checkpoint (``results/<label>.json``, the ``score`` command's format) from its tasks."""
    root = plan.output_root
    out = {}
    for ck in plan.checkpoints:
        tasks = {}
        for task in plan.tasks:
            st = states.get(f"{ck.label}/{task}/score")
            if st and st.state in FINISHED:
                tasks[task] = json.loads((score_dir(root, ck.label, task) / "task.json").read_text("utf-8"))
        if not tasks:
            continue
        seeds = {s.spec["id"]: s.spec["seed"] for s in states.values() if s.kind == "generate"
                 and s.spec["label"] == ck.label}  # fmt: skip
        sweep = {
            "plan": str(plan.path), "model": ck.model, "model_args": ck.model_args, "repeats": plan.repeats,
            "gen_kwargs": plan.gen_kwargs, "apply_chat_template": plan.apply_chat_template,
            "batch_size": plan.batch_size, "prompt_shards": plan.prompt_shards, "repeat_shards": plan.repeat_shards,
            "prompts_per_write": plan.prompts_per_write, "plan_seed": plan.seed, "shard_seeds": seeds,
        }  # fmt: skip
        data = {"settings": plan.settings.to_dict(), "tasks": tasks, "sweep": sweep}
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
    lineages = {name: {lbl: str(results[lbl]) for lbl in stages if lbl in results} for name, stages in plan.lineages}
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


# ---------------------------------------------------------------- scheduling


@dataclass
class Scheduler:
    """One run of the driver over a plan: the shard states, what Ray holds, and the order of work."""

    plan: SweepPlan
    resources: ShardResources
    echo: Callable[[str], None]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    states: dict[str, ShardState] = field(default_factory=dict)
    by_unit: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    pending: dict = field(default_factory=dict)
    remotes: tuple = ()

    def add_shards(self, n_docs: dict[str, int]) -> None:
        """Every shard the sweep will run: generation shards (finished ones skipped, checked in parallel) and one
        scoring shard per checkpoint x task, waiting for its generation shards."""
        root = self.plan.output_root
        gen_specs = generation_shards(self.plan, n_docs)
        done = shards_done(root, [(shard_dir(root, s["id"]), s) for s in gen_specs])
        for spec, finished in zip(gen_specs, done):
            self.states[spec["id"]] = ShardState(spec, "generate", "skipped" if finished else "pending")
            self.by_unit.setdefault((spec["label"], spec["task"]), []).append(spec)
        for label, task in self.by_unit:
            spec = {"id": f"{label}/{task}/score", "label": label, "task": task}
            self.states[spec["id"]] = ShardState(spec, "score", "waiting")

    def submit(self, state: ShardState) -> None:
        generate, score = self.remotes
        fn = generate if state.kind == "generate" else score
        state.state, state.submitted = "submitted", time.time()
        self.pending[fn.remote(state.spec, str(self.plan.output_root), self.run_id)] = state

    def maybe_score(self, label: str, task: str) -> None:
        """Once a checkpoint x task's generation shards are all finished: its scoring shard, unless already done."""
        state = self.states[f"{label}/{task}/score"]
        if state.state != "waiting":
            return
        if not all(self.states[s["id"]].state in FINISHED for s in self.by_unit[(label, task)]):
            return
        state.spec = scoring_spec(self.plan, label, task, self.by_unit[(label, task)])
        folder = state.folder(self.plan.output_root)
        if shard_done(self.plan.output_root, folder, state.spec):
            state.state = "skipped"
        else:
            self.submit(state)

    def collect(self, ref) -> None:
        import ray

        state = self.pending.pop(ref)
        try:
            manifest = ray.get(ref)
            state.state, state.attempt = "done", manifest.get("attempt")
        except Exception as exc:  # noqa: BLE001 - a shard's failure is reported, the others go on
            state.state, state.error = "failed", error_text(exc)
            state.attempt = (state.marker(self.plan.output_root) or {}).get("attempt")
            self.echo(f"[sweep] shard {state.spec['id']} FAILED: {state.error}")
        state.finished = time.time()
        if state.kind == "generate" and state.state == "done":
            self.maybe_score(state.spec["label"], state.spec["task"])

    def run(self, summary: SweepSummary, status_every: float, started: float) -> None:
        """Submit everything that can run, then collect results until nothing is in flight."""
        import ray

        self.remotes = remote_shards(self.plan, self.resources)
        for state in list(self.states.values()):
            if state.state == "pending":
                self.submit(state)
        for label, task in self.by_unit:
            self.maybe_score(label, task)
        last = time.time()
        while self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=min(status_every, 5.0))
            for ref in ready:
                self.collect(ref)
            if time.time() - last >= status_every:
                self.echo(status_table(self.plan, self.states, started, run_id=self.run_id))
                summary.elapsed_s = time.time() - started
                write_status(self.plan, self.states, summary, self.run_id)
                last = time.time()

    def cancel(self) -> None:
        import ray

        for ref, state in self.pending.items():
            ray.cancel(ref, force=True)
            state.state = "cancelled"
        self.pending.clear()


def run_sweep(
    plan: SweepPlan,
    address: str | None = None,
    num_cpus: int | None = None,
    status_every: float = 30.0,
    echo: Callable[[str], None] | None = None,
    num_gpus: int | None = None,
) -> SweepSummary:
    """Run (or resume) the whole sweep on Ray and write the report; finished shards are never redone."""
    echo = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    n_docs = task_doc_counts(plan)  # before anything is written: a task that cannot load is a plan error
    with output_root_lock(plan.output_root):
        start_ray(address, num_cpus, num_gpus)
        try:
            summary = _schedule(plan, n_docs, status_every, echo)
        finally:
            if not address:
                import ray

                ray.shutdown()
        if not summary.interrupted:
            _finish(plan, summary)
    return summary


def _schedule(plan: SweepPlan, n_docs: dict[str, int], status_every: float, echo: Callable[[str], None]):
    """Resources, the checks on the workers, then the shards; returns the summary (status written)."""
    resources = resolve_resources(plan, cluster_gpus())
    echo(f"[sweep] GPUs per generation shard {resources.generation_gpus:g}, per scoring shard "
         f"{resources.scoring_gpus:g}")  # fmt: skip
    for note in resources.notes:
        echo(f"[sweep] {note}")
    check_workers(plan, resources, echo)
    scheduler = Scheduler(plan, resources, echo)
    scheduler.add_shards(n_docs)
    summary = SweepSummary(scheduler.states, resources=resources)
    started = time.time()
    try:
        scheduler.run(summary, status_every, started)
    except KeyboardInterrupt:
        summary.interrupted = True
        scheduler.cancel()
        echo("[sweep] interrupted: finished shards are kept; rerun the same command to resume")
    finally:
        summary.elapsed_s = time.time() - started
        write_status(plan, scheduler.states, summary, scheduler.run_id)
    echo(status_table(plan, scheduler.states, started, run_id=scheduler.run_id))
    return summary


def _finish(plan: SweepPlan, summary: SweepSummary) -> None:
    results = write_results(plan, summary.shards)
    if results:
        try:
            summary.report = write_report(plan, results)
        except (RuntimeError, ValueError, OSError) as exc:
            summary.report_error = str(exc)


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
    p.add_argument("--num_gpus", type=int, default=None, help="GPUs of a local Ray instance (default: all)")
    p.add_argument("--status_every", type=float, default=30.0, help="seconds between status tables")
    p.add_argument("--dry_run", action="store_true", help="print the shards and their seeds; run nothing")
    return p


def _dry_run(plan: SweepPlan) -> int:
    specs = generation_shards(plan, task_doc_counts(plan))
    for s in specs:
        print(f"{s['id']}  docs {s['doc_ids'][0]}-{s['doc_ids'][-1]}  K {s['repeats']}  seed {s['seed']}")
    n_units = len(plan.checkpoints) * len(plan.tasks)
    print(f"{len(specs)} generation shards, {n_units} scoring shards ({len(specs) + n_units} in all)")
    return 0


def _report(summary: SweepSummary) -> int:
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


def run_sweep_cli(argv: list[str]) -> int:
    """``sweep``: 0 all shards finished and the report written; 1 a shard failed or the report did not build;
    2 bad plan, Ray unreachable, output root in use, or a check before the shards failed; 130 interrupted."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        plan = load_plan(args.plan)
        for note in plan.deprecations:
            print(f"lm-eval-diversity sweep: {note}", file=sys.stderr)
        if args.dry_run:
            return _dry_run(plan)
        if args.address is None:
            try:
                import ray  # noqa: F401
            except ImportError:
                raise PlanError('the sweep needs Ray: pip install "lm-eval-diversity[ray]"') from None
        summary = run_sweep(
            plan, address=args.address, num_cpus=args.num_cpus, num_gpus=args.num_gpus, status_every=args.status_every
        )
    except KeyboardInterrupt:
        print("lm-eval-diversity sweep: interrupted before the shards started", file=sys.stderr)
        return 130
    except (PlanError, SweepError, ValueError, OSError) as exc:
        print(f"lm-eval-diversity sweep: error: {exc}", file=sys.stderr)
        return 2
    return 130 if summary.interrupted else _report(summary)
