"""The ``compare`` report as typed data: cells, changes vs the baseline, QC/residual splits, comparability rows,
gate results and the report holding them. NaN means undefined (shown as ``n/a``, ``null`` in JSON, never 0).

``to_dict`` gives the JSON report's objects, with the keys in the order the JSON report has always had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lm_eval_diversity.compare.names import GROUP


@dataclass
class Change:
    """A cell's change vs the baseline: ``change_pct = 100 (v - b) / |b|`` and the CI of the difference ``diff``."""

    baseline_value: float
    change_pct: float
    diff: float
    diff_low: float
    diff_high: float
    diff_n: int | None
    diff_method: str


@dataclass
class Cell:
    """One run x task x metric value with its bootstrap CI (``task`` is ``diversity`` for the group average)."""

    run: str
    task: str
    metric: str
    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int | None
    ci_note: str
    tasks_used: list[str] | None = None  # group cells: the tasks where the metric is defined
    change: Change | None = None  # candidate runs when there is a baseline

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "run": self.run,
            "task": self.task,
            "metric": self.metric,
            "value": self.value,
            "stderr": self.stderr,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "ci_note": self.ci_note,
        }
        if self.tasks_used is not None:
            d["tasks_used"] = self.tasks_used
        ch = self.change
        if ch is not None:
            d.update(baseline_value=ch.baseline_value, change_pct=ch.change_pct, diff=ch.diff)
            if self.task != GROUP and ch.diff_n is None:  # a task's change without a paired bootstrap
                d.update(diff_n=ch.diff_n, diff_low=ch.diff_low, diff_high=ch.diff_high)
            else:
                d.update(diff_low=ch.diff_low, diff_high=ch.diff_high, diff_n=ch.diff_n)
            d["diff_method"] = ch.diff_method
        return d


@dataclass
class Split:
    """The QC/residual split of one candidate vs the baseline on one task and metric, or why it is unavailable.

    ``values`` is :func:`lm_eval_diversity.analysis.split_from_prompts`'s result when ``status == "ok"``.
    """

    run: str
    task: str
    metric: str
    matched: bool
    status: str
    reason: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    subset: str = "correct"  # D_corr over the grader's correct outputs, or the reward model's acceptable ones

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"run": self.run, "task": self.task, "metric": self.metric, "matched": self.matched}
        d["subset"] = self.subset
        d["status"] = self.status
        if self.reason is not None:
            d["reason"] = self.reason
        d.update(self.values)
        return d


@dataclass
class Check:
    """A setting in which a run differs from the reference run on a task."""

    task: str
    run: str
    reference: str
    field: str
    reference_value: Any
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class GateResult:
    """One ``--fail_if_drop`` gate evaluated for one candidate run."""

    spec: str
    run: str
    task: str
    metric: str
    baseline_value: float
    diff: float
    diff_low: float
    diff_high: float
    threshold: float
    method: str
    failed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class RunInfo:
    """A compared run as the report names it."""

    label: str
    path: str
    model_name: str
    per_prompt_tasks: list[str]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Lineage:
    """A named sequence of stages (stage label, run label)."""

    name: str
    stages: list[tuple[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stages": [{"label": lbl, "run": run} for lbl, run in self.stages]}


@dataclass
class Bootstrap:
    """The bootstrap settings behind every CI of the report."""

    iters: int
    seed: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Report:
    """Everything the outputs show."""

    runs: list[RunInfo]
    baseline: str | None
    reference: str
    tasks: list[str]
    metrics: list[str]
    missing_tasks: dict[str, list[str]]
    cells: list[Cell]
    checks: list[Check]
    splits: list[Split]
    notes: list[str]
    bootstrap: Bootstrap
    gate: list[GateResult] = field(default_factory=list)
    lineages: list[Lineage] = field(default_factory=list)
    plot: str | None = None

    def cell(self, run: str, task: str, metric: str) -> Cell | None:
        """The cell of a run label, task (or ``diversity``) and metric; None when the report has none."""
        return next((c for c in self.cells if c.run == run and c.task == task and c.metric == metric), None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "runs": [r.to_dict() for r in self.runs],
            "baseline": self.baseline,
            "reference": self.reference,
            "tasks": self.tasks,
            "metrics": self.metrics,
            "missing_tasks": self.missing_tasks,
            "cells": [c.to_dict() for c in self.cells],
            "checks": [c.to_dict() for c in self.checks],
            "splits": [s.to_dict() for s in self.splits],
            "gate": [g.to_dict() for g in self.gate],
            "notes": self.notes,
            "bootstrap": self.bootstrap.to_dict(),
            "lineages": [lin.to_dict() for lin in self.lineages],
        }
        if self.plot is not None:
            d["plot"] = self.plot
        return d
