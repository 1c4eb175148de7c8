"""QC/residual split as harness metrics: a run against a baseline run's logged samples (issue: quality split)."""

from __future__ import annotations

import math
import re

import lm_eval
import pytest
from lm_eval.api.model import LM
from lm_eval.loggers import EvaluationTracker

from lm_eval_diversity.harness import task_manager

K = 4
LIMIT = 3


def gold(doc: dict) -> str:
    return re.search(r"####\s*(-?[\d,\.]+)", doc["answer"]).group(1).replace(",", "")


class GoldLM(LM):
    """Every output correct (``#### <gold>``); ``varied`` makes the K reasonings differ, else all K are identical."""

    def __init__(self, varied: bool):
        super().__init__()
        self.varied = varied

    def generate_until(self, requests, disable_tqdm: bool = False):
        seen: dict[int, int] = {}
        out = []
        for r in requests:
            j = seen.get(id(r), 0)
            seen[id(r)] = j + 1
            reason = ["First add the numbers.", "We multiply then check.", "Count carefully step by step.",
                      "Reason about units and totals."][j % 4] if self.varied else "Compute it."  # fmt: skip
            out.append(f"{reason}\n#### {gold(r.doc)}")
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError


def run(lm: LM, out_dir=None) -> dict:
    tm = task_manager(include_defaults=False, metadata={"repeats": K})
    tracker = EvaluationTracker(output_path=str(out_dir)) if out_dir else None
    res = lm_eval.simple_evaluate(
        model=lm, tasks=["diversity_gsm8k"], task_manager=tm, limit=LIMIT, log_samples=True, bootstrap_iters=0,
        evaluation_tracker=tracker,
    )  # fmt: skip
    if tracker:
        tracker.save_results_aggregated(results=res, samples=res["samples"])
        for task, samples in res["samples"].items():
            tracker.save_results_samples(task_name=task, samples=samples)
    return res


def test_split_against_baseline(harness_env, tmp_path, monkeypatch):
    base = run(GoldLM(varied=True), tmp_path / "base")["results"]["diversity_gsm8k"]
    assert base["acc,div"] == 1.0 and base["k_correct,div"] == K
    # every baseline output is correct: D_corr(B) == D_all(B)
    assert base["sbert_correct,div"] == pytest.approx(base["sbert_all,div"], abs=1e-12)
    assert math.isnan(base["qc_sbert,div"]), "no baseline given: the split is not computed"

    monkeypatch.setenv("LM_EVAL_DIVERSITY_BASELINE", str(tmp_path / "base"))
    model = run(GoldLM(varied=False))["results"]["diversity_gsm8k"]
    assert model["sbert,div"] == pytest.approx(0.0, abs=1e-6)  # K identical outputs
    # loss = D_all(B) - D_all(M) = D_all(B); residual = D_corr(B) - D_corr(M) = D_all(B); qc = loss - residual = 0
    assert model["loss_sbert,div"] == pytest.approx(base["sbert_all,div"], abs=1e-6)
    assert model["residual_sbert,div"] == pytest.approx(base["sbert_all,div"], abs=1e-6)
    assert model["qc_sbert,div"] == pytest.approx(0.0, abs=1e-6)
    # Vendi: K identical outputs -> 1 (up to the 1e-12 eigenvalue clipping)
    assert model["loss_vendi,div"] == pytest.approx(base["vendi,div"] - 1.0, abs=1e-6)
    assert model["qc_vendi,div"] == pytest.approx(0.0, abs=1e-6)
