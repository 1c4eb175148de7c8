"""``score`` reads the settings the run recorded (the results JSON beside the samples); flags override with a note."""

from __future__ import annotations

import json

import pytest
from helpers import TIMESTAMP, write_samples_file

from lm_eval_diversity import cli
from lm_eval_diversity.settings import COMMAND_DEFAULTS

GROUPS = [(0, ["a b c", "a b d", "e f", "a b c"]), (1, ["x y", "x z", "x y", "w"])]


def write_run(directory, recorded: dict | None, *, task: str = "t", repeats: int = 4, stamp: str = TIMESTAMP):
    write_samples_file(directory, task, GROUPS, timestamp=stamp)
    if recorded is not None:
        config = {"task": task, "repeats": repeats, "metadata": {"diversity_settings": recorded}}
        results = {"results": {task: {}}, "configs": {task: config}}
        (directory / f"results_{stamp}.json").write_text(json.dumps(results))


def score(tmp_path, paths, *flags) -> tuple[int, dict | None]:
    out = tmp_path / "score.json"
    rc = cli.main(["score", *map(str, paths), "--output_path", str(out), *flags])
    return rc, (json.loads(out.read_text()) if rc == 0 else None)


RECORDED = {
    **COMMAND_DEFAULTS.to_dict(),
    "metrics": ["ead"], "vocab_size": 100, "math_mode": "compat", "sbert_model": "no-such-org/recorded-sbert",
    "device": "cuda:3", "batch_size": 512,
}  # fmt: skip


def test_recorded_settings_are_used_without_flags(tmp_path, capsys):
    write_run(tmp_path / "run", RECORDED)
    rc, res = score(tmp_path, [tmp_path / "run"])
    assert rc == 0
    s = res["settings"]
    assert (s["metrics"], s["vocab_size"], s["math_mode"]) == (["ead"], 100, "compat")
    assert s["sbert_model"] == "no-such-org/recorded-sbert"  # recorded, unused by ead (no model loaded)
    # where scoring runs is this machine's business, not the run's
    assert s["device"] is None and s["batch_size"] == COMMAND_DEFAULTS.batch_size
    assert set(res["tasks"]["t"]["metrics"]) == {"ead"}
    assert "settings as the run recorded them" in capsys.readouterr().err


def test_flags_override_the_recorded_settings_with_a_note(tmp_path, capsys):
    write_run(tmp_path / "run", RECORDED)
    rc, res = score(tmp_path, [tmp_path / "run"], "--vocab_size", "200", "--math_mode", "compat")
    assert rc == 0
    assert res["settings"]["vocab_size"] == 200 and res["settings"]["metrics"] == ["ead"]
    err = capsys.readouterr().err
    assert "--vocab_size 200 overrides the run's 100" in err
    assert "--math_mode" not in err, "a flag that agrees with the run overrides nothing"
    assert any("--vocab_size 200" in n for n in res["settings_notes"])


def test_no_results_json_means_defaults_with_a_note(tmp_path, capsys):
    write_run(tmp_path / "run", None)
    rc, res = score(tmp_path, [tmp_path / "run"], "--metrics", "ead")
    assert rc == 0 and res["settings"]["vocab_size"] == COMMAND_DEFAULTS.vocab_size
    assert "no recorded settings" in capsys.readouterr().err


def test_runs_that_recorded_different_settings_are_refused(tmp_path, capsys):
    write_run(tmp_path / "a", RECORDED, task="t1")
    write_run(tmp_path / "b", {**RECORDED, "vocab_size": 300}, task="t2", stamp="2026-11-25T13-00-00.000000")
    rc, _ = score(tmp_path, [tmp_path / "a", tmp_path / "b"])
    assert rc == 2
    assert "different vocab_size" in capsys.readouterr().err
    rc, res = score(tmp_path, [tmp_path / "a", tmp_path / "b"], "--vocab_size", "50")
    assert rc == 0 and res["settings"]["vocab_size"] == 50


def test_recorded_k_that_differs_from_the_samples_is_noted(tmp_path, capsys):
    write_run(tmp_path / "run", RECORDED, repeats=16)
    rc, res = score(tmp_path, [tmp_path / "run"])
    assert rc == 0 and res["tasks"]["t"]["k"] == 4
    assert "recorded repeats=16, its samples hold K=4" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [{"metrics": ["no_such_metric"]}, {"vocab_size": 1}])
def test_unusable_recorded_settings_name_the_flag_way_out(tmp_path, capsys, bad):
    write_run(tmp_path / "run", {**RECORDED, **bad})
    rc, _ = score(tmp_path, [tmp_path / "run"])
    assert rc == 2
    assert "the run's recorded settings" in capsys.readouterr().err
