"""A metric added through the catalogue only (no package file edited) reaches lm-eval's results and samples."""

from __future__ import annotations

import pytest

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue.metrics import MetricRecord
from tests.harness.fakes import REASONS, GoldLM, gsm8k_gold


def mean_length(sets, settings):
    """Toy metric: mean number of characters of the stripped outputs of each set."""
    return [sum(len(t) for t in texts) / len(texts) for texts in sets]


TOY = MetricRecord("toy_mean_length", "texts", "mean characters per stripped output", mean_length, selectable=True)
K = 4


def test_toy_metric_in_a_fake_lm_run(harness_env, monkeypatch):
    import lm_eval

    from lm_eval_diversity.lm_eval_cli import task_manager

    monkeypatch.setenv("LM_EVAL_DIVERSITY_METRICS", "toy_mean_length")  # no metric model: none is loaded
    with catalogue.registered(TOY):
        res = lm_eval.simple_evaluate(
            model=GoldLM(n_reasons=4), tasks=["diversity_gsm8k"],
            task_manager=task_manager(include_defaults=False, metadata={"repeats": K}), limit=3, log_samples=True,
            bootstrap_iters=0,
        )  # fmt: skip
    results = res["results"]["diversity_gsm8k"]
    samples = res["samples"]["diversity_gsm8k"]
    # GoldLM writes "<REASONS[j]>\n#### <gold>" for the j-th of the K samples: 6 characters besides the two parts
    by_hand = [sum(len(REASONS[j]) + 6 + len(gsm8k_gold(s["doc"])) for j in range(K)) / K for s in samples]
    assert [s["toy_mean_length"] for s in samples] == pytest.approx(by_hand)
    assert results["toy_mean_length,div"] == pytest.approx(sum(by_hand) / len(by_hand))
    assert res["configs"]["diversity_gsm8k"]["metadata"]["diversity_settings"]["metrics"] == ["toy_mean_length"]
    assert "ead,div" not in results and "sbert,div" not in results  # not chosen: not shown
    assert results["acc,div"] == 1.0  # the task's other metrics are untouched
