"""Semantic clusters through lm-eval's ``simple_evaluate`` with a fake LM, selected with ``--metadata``."""

from __future__ import annotations

import math

import lm_eval
import pytest
from helpers import FakeNLI

from lm_eval_diversity import harness
from lm_eval_diversity.lm_eval_cli import task_manager
from lm_eval_diversity.scoring import MetricModels
from tests.harness.fakes import GoldLM

K = 4
SEMANTIC = "semantic_clusters,semantic_clusters_norm,semantic_entropy"


def test_semantic_cluster_rows_in_the_results(harness_env, monkeypatch):
    # GoldLM: 4 distinct reasonings (same answer); the fake NLI makes the 1st and 2nd entail each other only
    first, second = "First add the numbers.", "We multiply then check."

    def w(p: str, h: str) -> float:
        return 1.0 if {p.split("\n")[0], h.split("\n")[0]} == {first, second} else -1.0

    nli = FakeNLI(fn=w)
    scored: list[list] = []  # the label_probs calls (the work estimate before generation calls the model too)
    label_probs = nli.label_probs
    nli.label_probs = lambda pairs, **kw: (scored.append(list(pairs)), label_probs(pairs, **kw))[1]
    monkeypatch.setattr(harness, "models_for", lambda settings: MetricModels(nli=nli))
    tm = task_manager(include_defaults=False, metadata={"repeats": K, "diversity_metrics": SEMANTIC})
    res = lm_eval.simple_evaluate(
        model=GoldLM(), tasks=["diversity_gsm8k"], task_manager=tm, limit=3, log_samples=True, bootstrap_iters=0
    )
    r = res["results"]["diversity_gsm8k"]
    assert r["semantic_clusters,div"] == 3.0  # {reason 1, reason 2}, {reason 3}, {reason 4} on every prompt
    assert r["semantic_clusters_norm,div"] == pytest.approx(3 / 4)
    assert r["semantic_entropy,div"] == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert "sbert,div" not in r and "code_sbert,div" not in r  # only the chosen metrics are shown
    assert r["acc,div"] == 1.0
    # one batched pass: per prompt, 4 distinct outputs (its own answer) -> 6 pairs, both directions
    assert len(scored) == 1 and len(scored[0]) == 3 * 12


def test_missing_code_model_stops_the_run_before_generation(harness_env, tmp_path, monkeypatch):
    from lm_eval_diversity.models import ModelUnavailableError
    from tests.harness.test_before_generation import CountingLM

    monkeypatch.setenv("LM_EVAL_DIVERSITY_METRICS", "ead,code_sbert")
    monkeypatch.setenv("LM_EVAL_DIVERSITY_CODE_MODEL", str(tmp_path / "no_such_model"))
    lm = CountingLM()
    tm = task_manager(include_defaults=False, metadata={"repeats": 2})
    with pytest.raises(ModelUnavailableError, match="LM_EVAL_DIVERSITY_CODE_MODEL"):
        lm_eval.simple_evaluate(model=lm, tasks=["diversity_gsm8k"], task_manager=tm, limit=2, bootstrap_iters=0)
    assert lm.calls == 0
