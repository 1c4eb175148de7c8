"""The typed report model: the JSON objects it writes (keys and their order) and the cell look-up."""

from __future__ import annotations

import json
import math

from lm_eval_diversity.compare.model import Bootstrap, Cell, Change, Check, Lineage, Report, RunInfo, Split
from lm_eval_diversity.compare.render import render

NAN = math.nan
BASE_KEYS = ["run", "task", "metric", "value", "stderr", "ci_low", "ci_high", "n", "ci_note"]


def _cell(task: str, change: Change | None, tasks_used: list[str] | None = None) -> Cell:
    return Cell("m", task, "sbert", 0.4, NAN, 0.3, 0.5, 5, "", tasks_used=tasks_used, change=change)


def test_cell_keys_in_the_json_reports_order():
    paired = Change(0.5, -20.0, -0.1, -0.2, 0.0, 5, "paired bootstrap")
    normal = Change(0.5, -20.0, -0.1, -0.15, -0.05, None, "normal approx. from stderr")
    assert list(_cell("t", None).to_dict()) == BASE_KEYS
    change_keys = ["baseline_value", "change_pct", "diff", "diff_low", "diff_high", "diff_n", "diff_method"]
    assert list(_cell("t", paired).to_dict()) == BASE_KEYS + change_keys
    # a task's change without per-prompt values has always listed diff_n right after diff
    unpaired = ["baseline_value", "change_pct", "diff", "diff_n", "diff_low", "diff_high", "diff_method"]
    assert list(_cell("t", normal).to_dict()) == BASE_KEYS + unpaired
    group = _cell("diversity", normal, tasks_used=["t"]).to_dict()
    assert list(group) == [*BASE_KEYS, "tasks_used", *change_keys]
    assert group["diff_low"] == -0.15 and group["diff_method"] == "normal approx. from stderr"


def test_split_keeps_its_values_after_the_status():
    ok = Split("m", "t", "sbert", True, "ok", values={"metric": "sbert", "matched": True, "loss": 0.1})
    assert list(ok.to_dict()) == ["run", "task", "metric", "matched", "subset", "status", "loss"]
    off = Split("m", "t", "vendi", False, "unavailable", reason="no per-prompt vendi_correct values")
    assert off.to_dict()["reason"] == "no per-prompt vendi_correct values" and "loss" not in off.to_dict()


def test_report_json_and_lookup():
    cells = [_cell("t", None), Cell("b", "t", "sbert", NAN, NAN, NAN, NAN, None, "no per-prompt values")]
    report = Report(
        runs=[RunInfo("b", "runs/b", "b", [], []), RunInfo("m", "runs/m", "m", ["t"], ["a note"])],
        baseline=None,
        reference="b",
        tasks=["t"],
        metrics=["sbert"],
        missing_tasks={},
        cells=cells,
        checks=[Check("t", "m", "b", "K", 4, 8)],
        splits=[],
        notes=[],
        bootstrap=Bootstrap(100, 1, 0.1),
        lineages=[Lineage("l", [("start", "b"), ("end", "m")])],
    )
    assert report.cell("m", "t", "sbert") is cells[0] and report.cell("m", "t", "vendi") is None
    data = json.loads(render(report, "json"))
    assert list(data)[:7] == ["runs", "baseline", "reference", "tasks", "metrics", "missing_tasks", "cells"]
    assert "plot" not in data
    assert data["cells"][1]["value"] is None  # NaN is null, never 0
    assert data["checks"] == [
        {"task": "t", "run": "m", "reference": "b", "field": "K", "reference_value": 4, "value": 8}
    ]
    assert data["lineages"] == [{"name": "l", "stages": [{"label": "start", "run": "b"}, {"label": "end", "run": "m"}]}]
    assert data["bootstrap"] == {"iters": 100, "seed": 1, "alpha": 0.1}
