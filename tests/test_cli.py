"""``lm-eval-diversity score``: end to end on an lm-eval samples file, output schema, errors and exit codes."""

from __future__ import annotations

import json
import math

import pytest
from helpers import ref_ead, write_samples_file

from lm_eval_diversity import cli
from lm_eval_diversity.catalogue.metrics import record
from lm_eval_diversity.settings import DIVERSITY_METRICS

V = 50257
LEVELS = ("per_input_mean", "per_input_std", "across_input", "overall")

OUTPUTS = {
    0: ["the cat sat on the mat.", "the dog sat on the log.\nIt was happy."],
    1: ["x", "x"],
    2: ["<think>secret plan</think>Paris is big. It has a river.", "Paris is large. Rivers too.\nNice."],
}


def denom(c: int, v: int = V) -> float:
    return v * (1 - ((v - 1) / v) ** c)


def strict_json(path):
    """Parse rejecting NaN/Infinity tokens (the output must be standard JSON)."""

    def bad(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=bad)


def test_score_end_to_end(tmp_path, tiny_nli_dir, capsys):
    groups = list(OUTPUTS.items())
    samples = write_samples_file(tmp_path / "run", "diversity_demo", groups, filters=("none", "strict-match"))
    out = tmp_path / "out" / "scores.json"
    rc = cli.main(
        [
            "score",
            str(samples),
            "--output_path",
            str(out),
            "--sbert_model",
            "sentence-transformers/all-MiniLM-L6-v2",
            "--nli_model",
            str(tiny_nli_dir),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    res = strict_json(out)
    assert set(res) == {"settings", "settings_notes", "tasks"}
    assert any("no recorded settings" in note for note in res["settings_notes"])  # a samples file without its run
    s = res["settings"]
    assert s["sbert_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert s["nli_model"] == str(tiny_nli_dir)
    assert s["vocab_size"] == V and s["seed"] == 1234
    assert isinstance(s["package_version"], str) and s["package_version"]
    assert list(res["tasks"]) == ["diversity_demo"]
    task = res["tasks"]["diversity_demo"]
    assert task["n_prompts"] == 3 and task["k"] == 2
    # every default metric defined on an ungraded task (answer, functional-class and AST metrics: their tasks only)
    assert set(task["metrics"]) == {m for m in DIVERSITY_METRICS if record(m).on is None}
    assert "distinct_1" in task["metrics"] and "distinct_answers" not in task["metrics"]
    for metric, levels in task["metrics"].items():
        assert set(levels) >= set(LEVELS), metric
    for metric in ("ead", "sbert", "vendi"):
        assert all(isinstance(task["metrics"][metric][lvl], float) for lvl in LEVELS)
    rows = task["per_prompt"]
    assert [r["doc_id"] for r in rows] == [0, 1, 2]
    # per-prompt EAD by hand: doc 0 is S8 of tests/metrics/test_ngram.py; doc 1 is C_1 = 2, U_1 = 1, other orders 0
    assert rows[0]["ead"] == pytest.approx(0.875289, abs=1e-6)
    assert rows[1]["ead"] == pytest.approx((1 / denom(2)) / 5, abs=1e-12)
    assert rows[2]["ead"] == pytest.approx(
        ref_ead(["Paris is big. It has a river.", "Paris is large. Rivers too.\nNice."]), abs=1e-12
    )
    assert rows[1]["sbert"] == pytest.approx(0.0, abs=1e-6)  # identical outputs
    assert rows[1]["dup_rate"] == 0.5
    for r in rows:
        assert 0.0 <= r["nli"] <= 2.0 and 1.0 - 1e-6 <= r["vendi"] <= 2.0 + 1e-6
    assert "diversity_demo" in capsys.readouterr().out  # the summary table


def test_ead_only_loads_no_model(tmp_path, monkeypatch):
    import lm_eval_diversity.models as models

    def boom(*args, **kwargs):
        raise AssertionError("a model was loaded for --metrics ead")

    monkeypatch.setattr(models, "load_sentence_model", boom)
    monkeypatch.setattr(models, "load_nli_model", boom)
    samples = write_samples_file(tmp_path, "t", [(0, ["a b", "a c"]), (1, ["solo"])])
    out = tmp_path / "o.json"
    argv = ["score", str(tmp_path), "--output_path", str(out), "--metrics", "ead", "--vocab_size", "100"]
    assert cli.main(argv + ["--sbert_model", "no-such-org/no-such-model"]) == 0
    res = strict_json(out)
    task = res["tasks"]["t"]
    assert set(task["metrics"]) == {"ead"}
    assert task["source"] == str(samples)
    # doc 0 with V = 100: EAD_1 = 3 / denom(4), EAD_2 = 2 / denom(2) (= 1.0 after clipping), orders 3-5: 0
    expected = (min(1.0, 3 / denom(4, 100)) + min(1.0, 2 / denom(2, 100))) / 5
    assert task["per_prompt"][0]["ead"] == pytest.approx(expected, abs=1e-12)
    # doc 1 has a single output: undefined -> null (never NaN in the file), and counted
    assert task["per_prompt"][1]["ead"] is None
    assert task["diagnostics"]["n_undefined"] == 1
    assert task["metrics"]["ead"]["per_input_mean"] == pytest.approx(expected, abs=1e-12)
    assert task["metrics"]["ead"]["per_input_std"] == 0.0
    assert task["metrics"]["ead"]["across_input"] == pytest.approx(ref_ead(["a b", "solo"], 100), abs=1e-12)
    assert res["settings"]["vocab_size"] == 100


def test_all_null_metric_written_as_null(tmp_path):
    write_samples_file(tmp_path, "t", [(0, ["only"]), (1, ["one"])])
    out = tmp_path / "o.json"
    assert cli.main(["score", str(tmp_path), "--output_path", str(out), "--metrics", "ead"]) == 0
    m = strict_json(out)["tasks"]["t"]["metrics"]["ead"]
    assert m["per_input_mean"] is None and m["per_input_std"] is None
    assert m["across_input"] == pytest.approx(ref_ead(["only", "one"]), abs=1e-12)


def test_bad_metric_name_exit_code_2(tmp_path, capsys):
    write_samples_file(tmp_path, "t", [(0, ["a", "b"])])
    rc = cli.main(["score", str(tmp_path), "--metrics", "ead,foo"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--metrics" in err and "foo" in err


def test_missing_input_exit_code_2(tmp_path, capsys):
    assert cli.main(["score", str(tmp_path / "missing"), "--metrics", "ead"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_malformed_samples_exit_code_2(tmp_path, capsys):
    path = write_samples_file(tmp_path, "t", [(0, ["a", "b"])])
    path.write_text(path.read_text() + "{oops\n")
    assert cli.main(["score", str(path), "--metrics", "ead"]) == 2
    assert f"{path.name}:2" in capsys.readouterr().err


def test_unavailable_model_exit_code_2(tmp_path, capsys):
    write_samples_file(tmp_path, "t", [(0, ["a", "b"])])
    rc = cli.main(["score", str(tmp_path), "--metrics", "sbert", "--sbert_model", "no-such-org/no-such-model"])
    assert rc == 2
    assert "--sbert_model" in capsys.readouterr().err


def test_format_table_handles_null():
    table = cli.format_table({"tasks": {"t": {"metrics": {"ead": {"per_input_mean": None, "overall": math.nan}}}}})
    assert "n/a" in table and "t" in table
