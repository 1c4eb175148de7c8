"""The CI gate ``--fail_if_drop METRIC=FRACTION`` (docs/ci_gating.md).

For every candidate run C (each run but the baseline B) and every gate: Δ = C − B (a task's metric, or the
task-averaged ``diversity`` group metric) with the (1 − alpha) CI [lo, hi] the report already holds for that
change; the gate FAILS iff ``hi < −FRACTION × |value(B)|``, or, for a metric where lower is more diverse (the
catalogue's ``higher_is_better`` False, e.g. ``self_bleu``), iff ``lo > FRACTION × |value(B)|`` (a rise). That
CI is a paired bootstrap over prompts (stratified by task for a group metric, ``--bootstrap_iters`` resamples from
``--seed``); without per-prompt values a normal interval from lm-eval's stderrs, and without those the point
estimate (lo = hi = Δ), named in ``method``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from lm_eval_diversity.analysis import as_float
from lm_eval_diversity.catalogue import TASK_PREFIX
from lm_eval_diversity.compare.errors import CompareError
from lm_eval_diversity.compare.model import GateResult, Report
from lm_eval_diversity.compare.names import GROUP, metric_higher_is_better


class Gate(NamedTuple):
    """A parsed ``--fail_if_drop``: the task (None for the group average), the metric, the allowed relative drop."""

    task: str | None
    metric: str
    fraction: float


def task_key(name: str, known: list[str]) -> str:
    """A task as named in the runs, given with or without the ``diversity_`` prefix."""
    if name in known:
        return name
    if TASK_PREFIX + name in known:
        return TASK_PREFIX + name
    raise CompareError(f"--tasks / gate: unknown task {name!r}; tasks in these runs: {', '.join(known)}")


def parse_gate(spec: str) -> Gate:
    """``METRIC=FRACTION`` or ``TASK/METRIC=FRACTION`` -> (task or None for the group average, metric, fraction)."""
    if "=" not in spec:
        raise CompareError(f"--fail_if_drop {spec!r}: expected METRIC=FRACTION, e.g. sbert=0.05")
    target, frac_s = spec.rsplit("=", 1)
    try:
        frac = float(frac_s)
    except ValueError as exc:
        raise CompareError(f"--fail_if_drop {spec!r}: FRACTION must be a number") from exc
    if not 0 <= frac < math.inf:
        raise CompareError(f"--fail_if_drop {spec!r}: FRACTION must be a finite number >= 0 (a relative drop)")
    task, _, metric = target.rpartition("/")
    if not metric:
        raise CompareError(f"--fail_if_drop {spec!r}: empty metric")
    return Gate(task or None, metric, frac)


def _evaluate(report: Report, spec: str, gate: Gate, run: str, baseline: str) -> GateResult:
    tkey = GROUP if gate.task is None or gate.task == GROUP else task_key(gate.task, report.tasks)
    cell = report.cell(run, tkey, gate.metric)
    if cell is None:
        raise CompareError(f"--fail_if_drop {spec!r}: no {gate.metric} value for {tkey} in run {run}")
    if tkey == GROUP:
        bcell = report.cell(baseline, GROUP, gate.metric)
        if bcell is None:
            raise CompareError(f"--fail_if_drop {spec!r}: no {gate.metric} value in the baseline {baseline}")
        base_v = as_float(bcell.value)
    else:
        base_v = as_float(cell.change.baseline_value if cell.change else None)
    ch = cell.change
    diff = as_float(ch.diff if ch else None)
    lo, hi = as_float(ch.diff_low if ch else None), as_float(ch.diff_high if ch else None)
    if math.isnan(hi):
        lo = hi = diff
    up = metric_higher_is_better(gate.metric)
    threshold = (-1.0 if up else 1.0) * gate.fraction * abs(base_v)
    if math.isnan(hi) or math.isnan(threshold):
        raise CompareError(f"--fail_if_drop {spec!r}: {gate.metric} of {tkey} is undefined for {run} or the baseline")
    return GateResult(
        spec=spec,
        run=run,
        task=tkey,
        metric=gate.metric,
        baseline_value=base_v,
        diff=diff,
        diff_low=lo,
        diff_high=hi,
        threshold=threshold,
        method=ch.diff_method if ch else "",
        failed=hi < threshold if up else lo > threshold,
    )


def evaluate_gates(report: Report, specs: list[str], baseline: str) -> bool:
    """Append every gate's result for every candidate run to ``report.gate``; True when any gate fails."""
    for spec in specs:
        gate = parse_gate(spec)
        for info in report.runs:
            if info.label != baseline:
                report.gate.append(_evaluate(report, spec, gate, info.label, baseline))
    return any(g.failed for g in report.gate)
