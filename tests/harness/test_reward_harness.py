"""The reward model through lm-eval's ``simple_evaluate`` with a fake LM, chosen with ``--metadata quality_model``."""

from __future__ import annotations

import lm_eval
import numpy as np
import pytest

from lm_eval_diversity import harness
from lm_eval_diversity.lm_eval_cli import task_manager
from lm_eval_diversity.scoring import MetricModels
from tests.harness.fakes import REASONS, GoldLM

K = 4


class LengthReward:
    """Reward = number of words of the output (so the ratings are known from the outputs)."""

    n_truncated = 0

    def rewards(self, pairs, batch_size=16, progress=False):
        return np.asarray([len(t.split()) for _, t in pairs], dtype=np.float64)


def test_reward_rows_in_the_results(harness_env, tiny_reward_model_dir, monkeypatch):
    monkeypatch.setattr(harness, "models_for", lambda settings: MetricModels(quality=LengthReward()))
    metadata = {"repeats": K, "diversity_metrics": "ead", "quality_model": str(tiny_reward_model_dir)}
    tm = task_manager(include_defaults=False, metadata=metadata)
    res = lm_eval.simple_evaluate(
        model=GoldLM(), tasks=["diversity_gsm8k"], task_manager=tm, limit=3, log_samples=True, bootstrap_iters=0
    )
    r = res["results"]["diversity_gsm8k"]
    lengths = [len(f"{reason}\n#### x".split()) for reason in REASONS]  # the same four reasonings on every prompt
    assert r["reward_mean,div"] == pytest.approx(np.mean(lengths))
    assert r["distinct_k,div"] == 4.0  # the reasonings share no more than "####" and the answer
    assert "qvendi,div" not in r  # needs vendi (sbert_model), not chosen here
    settings = res["configs"]["diversity_gsm8k"]["metadata"]["diversity_settings"]
    assert settings["quality_model"] == str(tiny_reward_model_dir) and "utility_k" in settings["metrics"]
