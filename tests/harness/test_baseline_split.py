"""QC/residual split as harness metrics, and ``compare`` over three real runs with a baseline."""

from __future__ import annotations

import json

import pytest

from lm_eval_diversity.compare import run_compare
from tests.harness.fakes import GoldLM, run_saved

K = 4
LIMIT = 3


def run(lm, out_dir=None) -> dict:
    return run_saved(lm, ["diversity_gsm8k"], out_dir, repeats=K, limit=LIMIT)


@pytest.mark.slow  # two fake-LM runs
def test_split_against_baseline(harness_env, tmp_path, monkeypatch):
    base = run(GoldLM(n_reasons=4), tmp_path / "base")["results"]["diversity_gsm8k"]
    assert base["acc,div"] == 1.0 and base["k_correct,div"] == K
    # every baseline output is correct: D_corr(B) == D_all(B)
    assert base["sbert_correct,div"] == pytest.approx(base["sbert_all,div"], abs=1e-12)
    # no baseline given: the split is not defined, so it is not reported (and pass@k only for k <= K)
    assert not {"loss_sbert,div", "qc_sbert,div", "residual_vendi,div"} & set(base)
    assert "pass@1,div" in base and "pass@5,div" not in base and "pass@16,div" not in base

    monkeypatch.setenv("LM_EVAL_DIVERSITY_BASELINE", str(tmp_path / "base"))
    model = run(GoldLM(n_reasons=1))["results"]["diversity_gsm8k"]
    assert model["sbert,div"] == pytest.approx(0.0, abs=1e-6)  # K identical outputs
    # loss = D_all(B) - D_all(M) = D_all(B); residual = D_corr(B) - D_corr(M) = D_all(B); qc = loss - residual = 0
    assert model["loss_sbert,div"] == pytest.approx(base["sbert_all,div"], abs=1e-6)
    assert model["residual_sbert,div"] == pytest.approx(base["sbert_all,div"], abs=1e-6)
    assert model["qc_sbert,div"] == pytest.approx(0.0, abs=1e-6)
    # Vendi: K identical outputs -> 1 (up to the 1e-12 eigenvalue clipping)
    assert model["loss_vendi,div"] == pytest.approx(base["vendi,div"] - 1.0, abs=1e-6)
    assert model["qc_vendi,div"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow  # three fake-LM runs
def test_compare_three_runs_with_baseline(harness_env, tmp_path, capsys):
    runs = {"base": GoldLM(n_reasons=4), "sft": GoldLM(n_reasons=2), "dpo": GoldLM(n_reasons=4, wrong_every=2)}
    results = {name: run(lm, tmp_path / name)["results"]["diversity_gsm8k"] for name, lm in runs.items()}
    args = [str(tmp_path / n) for n in runs] + ["--labels", ",".join(runs), "--baseline", "base"]
    assert run_compare([*args, "--format", "json", "--bootstrap_iters", "200"]) == 0
    report = json.loads(capsys.readouterr().out)
    splits = {(s["run"], s["task"], s["metric"], s["matched"]): s for s in report["splits"]}
    assert {s[0] for s in splits} == {"sft", "dpo"}
    sft = splits[("sft", "diversity_gsm8k", "sbert", False)]
    # sft: all outputs correct, so D_corr == D_all in both runs and the whole loss is residual narrowing
    expected_loss = results["base"]["sbert_all,div"] - results["sft"]["sbert_all,div"]
    assert sft["loss"] == pytest.approx(expected_loss, abs=1e-6)
    assert sft["qc"] == pytest.approx(0.0, abs=1e-6)
    assert run_compare([*args, "--format", "table"]) == 0
    table = capsys.readouterr().out
    for label in runs:
        assert label in table
    assert "QC / residual split" in table
    # the gate: sft collapsed (SBERT diversity falls); fail on a 5% drop, pass with an absurd tolerance
    assert run_compare([*args, "--fail_if_drop", "diversity_gsm8k/sbert=0.05", "--bootstrap_iters", "200"]) == 1
    capsys.readouterr()
    assert run_compare([*args, "--fail_if_drop", "diversity_gsm8k/sbert=5", "--bootstrap_iters", "200"]) == 0
