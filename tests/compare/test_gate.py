"""The ``--fail_if_drop`` gate on hand-built reports: parsing, the FAIL rule, the point-estimate and group paths."""

from __future__ import annotations

import math

import pytest

from lm_eval_diversity.compare.errors import CompareError
from lm_eval_diversity.compare.gate import Gate, evaluate_gates, parse_gate
from lm_eval_diversity.compare.model import Bootstrap, Cell, Change, Report, RunInfo

NAN = math.nan


def _cell(run: str, task: str, value: float, change: Change | None = None) -> Cell:
    return Cell(run, task, "sbert", value, NAN, NAN, NAN, None, "", change=change)


def _report(cells: list[Cell]) -> Report:
    runs = [RunInfo(label, label, label, [], []) for label in ("base", "cand")]
    return Report(runs, "base", "base", ["diversity_gsm8k"], ["sbert"], {}, cells, [], [], [], Bootstrap(10, 0, 0.05))


@pytest.mark.parametrize(
    ("spec", "gate"),
    [
        ("sbert=0.05", Gate(None, "sbert", 0.05)),
        ("gsm8k/sbert=0.1", Gate("gsm8k", "sbert", 0.1)),
        ("diversity/vendi=0", Gate("diversity", "vendi", 0.0)),
    ],
)
def test_parse_gate(spec, gate):
    assert parse_gate(spec) == gate


@pytest.mark.parametrize(
    ("spec", "says"),
    [("sbert", "expected METRIC=FRACTION"), ("sbert=x", "must be a number"), ("sbert=-0.1", "finite number >= 0"),
     ("sbert=inf", "finite number >= 0"), ("gsm8k/=0.1", "empty metric")],
)  # fmt: skip
def test_parse_gate_rejects(spec, says):
    with pytest.raises(CompareError, match=says):
        parse_gate(spec)


@pytest.mark.parametrize(("high", "failed"), [(-0.08, True), (-0.04, False), (-0.05, False)])
def test_fails_only_when_the_ci_upper_bound_is_below_the_allowed_drop(high, failed):
    # baseline 0.5, FRACTION 0.1: threshold -0.05; the gate fails iff the CI's upper end is below it
    change = Change(0.5, -20.0, -0.1, -0.12, high, 10, "paired bootstrap")
    report = _report([_cell("base", "diversity_gsm8k", 0.5), _cell("cand", "diversity_gsm8k", 0.4, change)])
    assert evaluate_gates(report, ["gsm8k/sbert=0.1"], "base") is failed
    (g,) = report.gate
    assert (g.run, g.task, g.threshold, g.diff_high, g.failed) == ("cand", "diversity_gsm8k", -0.05, high, failed)
    assert g.method == "paired bootstrap"


@pytest.mark.parametrize(("low", "failed"), [(0.08, True), (0.04, False), (0.05, False)])
def test_a_lower_is_better_metric_fails_on_a_rise(low, failed):
    # self_bleu (lower = more diverse): baseline 0.5, FRACTION 0.1: fails iff the CI's lower end is above +0.05
    change = Change(0.5, 20.0, 0.1, low, 0.12, 10, "paired bootstrap")
    cells = [
        Cell(run, "diversity_gsm8k", "self_bleu", v, NAN, NAN, NAN, None, "", change=ch)
        for run, v, ch in (("base", 0.5, None), ("cand", 0.6, change))
    ]
    report = _report(cells)
    assert evaluate_gates(report, ["gsm8k/self_bleu=0.1"], "base") is failed
    (g,) = report.gate
    assert (g.threshold, g.diff_low, g.failed) == (0.05, low, failed)


def test_without_a_ci_the_point_estimate_decides():
    change = Change(0.5, -8.0, -0.04, NAN, NAN, None, "point estimate (no CI)")
    report = _report([_cell("base", "diversity_gsm8k", 0.5), _cell("cand", "diversity_gsm8k", 0.46, change)])
    assert evaluate_gates(report, ["diversity_gsm8k/sbert=0.05"], "base") is True  # -0.04 < -0.025
    assert (report.gate[0].diff_low, report.gate[0].diff_high) == (-0.04, -0.04)


def test_group_gate_scales_by_the_baseline_group_value():
    # group value of the baseline 0.8 (its own cell), FRACTION 0.25: threshold -0.2; CI upper -0.15 passes
    change = Change(0.7, -25.0, -0.2, -0.3, -0.15, 20, "paired bootstrap, stratified by task")
    report = _report([_cell("base", "diversity", 0.8), _cell("cand", "diversity", 0.6, change)])
    assert evaluate_gates(report, ["sbert=0.25"], "base") is False
    assert report.gate[0].baseline_value == 0.8 and report.gate[0].threshold == -0.2


def test_unknown_metric_and_task_name_the_spec():
    report = _report([_cell("base", "diversity", 0.8)])
    with pytest.raises(CompareError, match="no vendi value for diversity in run cand"):
        evaluate_gates(report, ["vendi=0.1"], "base")
    with pytest.raises(CompareError, match="unknown task 'xsum'"):
        evaluate_gates(report, ["xsum/sbert=0.1"], "base")
