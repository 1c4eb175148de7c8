"""``compare`` on the beyond-paper metrics: leaderboard, change, QC/residual split and gate (direction from the
catalogue's ``higher_is_better``), on hand-written lm-eval output folders and score JSONs."""

from __future__ import annotations

import json
import math

import pytest

from lm_eval_diversity.compare import run_compare
from tests.compare.test_compare import _cell, _json_report, write_run

NAN = math.nan
# humaneval, 4 docs; code_sbert over all outputs and over the correct ones (NaN: < 2 correct)
BASE_HE = {
    "code_sbert": [0.4, 0.4, 0.4, 0.4],
    "code_sbert_all": [0.4, 0.4, 0.4, 0.4],
    "code_sbert_correct": [0.3, 0.3, NAN, 0.3],  # mean 0.3
    "semantic_entropy": [1.0, 1.0, 1.0, 1.0],
    "k_correct": [2, 3, 1, 2],
}
MODEL_HE = {
    "code_sbert": [0.2, 0.2, 0.2, 0.2],
    "code_sbert_all": [0.2, 0.2, 0.2, 0.2],
    "code_sbert_correct": [0.2, 0.2, 0.2, 0.2],  # mean 0.2
    "semantic_entropy": [0.5, 0.5, 0.5, 0.5],
    "k_correct": [4, 4, 3, 4],
}


@pytest.fixture
def runs(tmp_path):
    base = write_run(tmp_path / "b", "base", {"diversity_humaneval": BASE_HE})
    model = write_run(tmp_path / "m", "sft", {"diversity_humaneval": MODEL_HE})
    return str(base), str(model)


def test_new_metrics_in_leaderboard_change_and_split(runs, capsys):
    base, model = runs
    rep = _json_report([base, model, "--baseline", "base", "--metrics", "code_sbert,semantic_entropy"], capsys)
    c = _cell(rep, "sft", "diversity_humaneval", "code_sbert")
    assert c["value"] == pytest.approx(0.2) and c["diff"] == pytest.approx(-0.2)
    assert c["change_pct"] == pytest.approx(-50.0)
    e = _cell(rep, "sft", "diversity_humaneval", "semantic_entropy")
    assert e["diff"] == pytest.approx(-0.5) and e["diff_method"] == "paired bootstrap"
    split = {(s["metric"], s["matched"]): s for s in rep["splits"]}
    s = split[("code_sbert", False)]
    # loss = D_all(B) - D_all(M) = 0.2; residual = D_corr(B) - D_corr(M) = 0.3 - 0.2 = 0.1; qc = 0.1
    assert s["status"] == "ok"
    assert (s["loss"], s["residual"], s["qc"]) == pytest.approx((0.2, 0.1, 0.1))
    assert ("code_vendi", False) not in split  # no code_vendi values in either run: no row


def write_score(path, column: str, values: list[float]):
    rows = [{"doc_id": i, column: v} for i, v in enumerate(values)]
    data = {
        "settings": {"seed": 1234},
        "tasks": {
            "diversity_gsm8k": {
                "n_prompts": len(values), "k": 4, "per_prompt": rows,
                "metrics": {column: {"per_input_mean": sum(values) / len(values)}},
            }
        },
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return str(path)


def test_gate_on_a_new_metric(tmp_path, capsys):
    base = write_score(tmp_path / "b.json", "semantic_entropy", [1.0] * 8)
    lower = write_score(tmp_path / "l.json", "semantic_entropy", [0.8] * 8)  # -20 %, CI [-0.2, -0.2]
    gate = ["--fail_if_drop", "semantic_entropy=0.1", "--format", "json"]
    assert run_compare([base, lower, *gate]) == 1
    g = json.loads(capsys.readouterr().out)["gate"][0]
    assert g["failed"] and g["threshold"] == pytest.approx(-0.1) and g["diff_high"] == pytest.approx(-0.2)
    assert run_compare([base, lower, "--fail_if_drop", "semantic_entropy=0.25", "--format", "json"]) == 0
    capsys.readouterr()


def test_gate_on_a_lower_is_better_metric_fails_on_a_rise(tmp_path, capsys):
    """dup_rate: higher_is_better is False, so a rise is the loss the gate guards against."""
    base = write_score(tmp_path / "b.json", "dup_rate", [0.5] * 8)
    rise = write_score(tmp_path / "r.json", "dup_rate", [0.75] * 8)  # +0.25, CI [0.25, 0.25]
    fall = write_score(tmp_path / "f.json", "dup_rate", [0.25] * 8)
    gate = ["--fail_if_drop", "dup_rate=0.1", "--format", "json"]
    assert run_compare([base, rise, *gate]) == 1
    g = json.loads(capsys.readouterr().out)["gate"][0]
    assert g["failed"] and g["threshold"] == pytest.approx(0.05) and g["diff_low"] == pytest.approx(0.25)
    assert run_compare([base, fall, *gate]) == 0
    assert not json.loads(capsys.readouterr().out)["gate"][0]["failed"]
