"""Reward-model quality through the scoring path: per-prompt values by hand with a fake reward model, the
calibration read from a reference run, and ``score`` / ``compare`` on all 15 tasks with a tiny real reward model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import FakeSentenceModel

from lm_eval_diversity.catalogue.tasks import task_names
from lm_eval_diversity.cli import main
from lm_eval_diversity.quality.reward import QualityReferenceError, reference_calibration
from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups, task_scores_to_json
from lm_eval_diversity.settings import DiversitySettings
from tests.judge.verdicts import demo_docs, write_task_samples

# prompt 0: rewards 1, 6, 2, 7; prompt 1: 3, 8, 5, 4 (all of 1..8 once: deciles 1 + 7q, median 4.5)
OUTPUTS = [
    ["the cat sat on the mat", "the cat sat on a mat", "dogs bark loudly", "birds sing"],
    ["alpha beta", "gamma delta", "epsilon zeta", "eta theta"],
]
REWARDS = {
    "the cat sat on the mat": 1.0, "the cat sat on a mat": 6.0, "dogs bark loudly": 2.0, "birds sing": 7.0,
    "alpha beta": 3.0, "gamma delta": 8.0, "epsilon zeta": 5.0, "eta theta": 4.0,
}  # fmt: skip
VECTORS = {
    "the cat sat on the mat": (0, 0, 1), "the cat sat on a mat": (1, 0, 0), "dogs bark loudly": (0, 0, 1),
    "birds sing": (0, 1, 0), "alpha beta": (0, 1, 0), "gamma delta": (1, 0, 0), "epsilon zeta": (1, 0, 0),
    "eta theta": (0, 1, 0),
}  # fmt: skip


class FakeRewardModel:
    """Rewards by output text; records the (prompt, output) pairs it was asked."""

    n_truncated = 0

    def __init__(self, table):
        self.table = table
        self.asked = []

    def rewards(self, pairs, batch_size=16, progress=False):
        self.asked.append(list(pairs))
        return np.asarray([self.table[t] for _, t in pairs], dtype=np.float64)


def _score(settings, rm=None):
    docs = demo_docs("alpaca")[:2]
    groups = [PromptGroup(doc_id=i, outputs=o, doc=d) for i, (o, d) in enumerate(zip(OUTPUTS, docs))]
    models = MetricModels(sbert=FakeSentenceModel(VECTORS), quality=rm or FakeRewardModel(REWARDS))
    return score_groups(groups, settings, models, task_name="diversity_alpaca")


def test_reward_metrics_by_hand():
    rm = FakeRewardModel(REWARDS)
    settings = DiversitySettings(metrics=("sbert", "vendi"), quality_model="fake-rm")
    scores = _score(settings, rm)
    p0, p1 = scores.per_prompt
    # deciles of 1..8: 1.7 2.4 3.1 3.8 4.5 5.2 5.9 6.6 7.3 -> ratings 1,8,2,9 and 3,10,6,5
    assert (p0["reward_mean"], p0["reward_rating"], p0["acceptable_rate"], p0["k_acceptable"]) == (4.0, 5.0, 0.5, 2)
    assert (p1["reward_mean"], p1["reward_rating"], p1["acceptable_rate"], p1["k_acceptable"]) == (5.0, 6.0, 0.5, 2)
    # NoveltyBench: p0 classes [0, 0, 1, 2] (the two cat sentences share 5 of 6 words), p1 all distinct
    w = 1 + 0.8 + 0.64 + 0.512
    assert (p0["distinct_k"], p1["distinct_k"]) == (3.0, 4.0)
    assert p0["utility_k"] == pytest.approx((1 + 0.64 * 2 + 0.512 * 9) / w)
    assert p1["utility_k"] == pytest.approx((3 + 0.8 * 10 + 0.64 * 6 + 0.512 * 5) / w)
    # acceptable (reward >= 4.5): p0 the outputs rewarded 6 and 7 (orthogonal: SBERT 1, Vendi 2); p1 8 and 5
    # (the same vector: SBERT 0, Vendi 1)
    assert p0["sbert_acceptable"] == pytest.approx(1.0) and p0["vendi_acceptable"] == pytest.approx(2.0)
    assert p1["sbert_acceptable"] == pytest.approx(0.0, abs=1e-12)
    assert p1["vendi_acceptable"] == pytest.approx(1.0, abs=1e-9)
    # qVS = mean(rating / 10) * Vendi of all four: p0 Gram spectrum {2, 1, 1, 0} / 4 -> Vendi 2 sqrt 2;
    # p1 {2, 2, 0, 0} / 4 -> Vendi 2
    assert p0["qvendi"] == pytest.approx(0.5 * 2 * math.sqrt(2), rel=1e-9)
    assert p1["qvendi"] == pytest.approx(0.6 * 2, rel=1e-9)
    assert scores.metrics["sbert_acceptable"]["per_input_mean"] == pytest.approx(0.5)
    cal = scores.diagnostics["reward"]["calibration"]
    assert cal["threshold"] == 4.5 and cal["source"] == "this run" and cal["quantile"] == 0.5
    assert cal["cutoffs"] == pytest.approx([1.7, 2.4, 3.1, 3.8, 4.5, 5.2, 5.9, 6.6, 7.3])
    # the conversation's user turn is the task's prompt (doc_to_text) of the logged doc
    prompts = {p for p, _ in rm.asked[0]}
    assert len(prompts) == 2 and all("### Instruction:" in p for p in prompts)


def test_absolute_threshold_and_too_few_acceptable():
    settings = DiversitySettings(metrics=("sbert",), quality_model="fake-rm", quality_threshold=6.5)
    p0, p1 = _score(settings).per_prompt
    assert (p0["k_acceptable"], p1["k_acceptable"]) == (1, 1)  # 7 and 8 only
    assert math.isnan(p0["sbert_acceptable"]) and p0["acceptable_computable"] == 0.0


def test_calibration_from_a_reference_score_json(tmp_path):
    base = _score(DiversitySettings(metrics=("sbert",), quality_model="fake-rm"))
    ref = tmp_path / "base.json"
    ref.write_text(json.dumps({"settings": {}, "tasks": {"diversity_alpaca": task_scores_to_json(base)}}))
    shifted = {t: r + 10 for t, r in REWARDS.items()}  # every output better than all of the reference's
    settings = DiversitySettings(metrics=("sbert",), quality_model="fake-rm", quality_reference=str(ref))
    p0, p1 = _score(settings, FakeRewardModel(shifted)).per_prompt
    assert p0["reward_rating"] == p1["reward_rating"] == 10.0 and p0["acceptable_rate"] == 1.0
    for bad, message in [
        (DiversitySettings(quality_model="other-rm", quality_reference=str(ref)), "reward model 'fake-rm'"),
        (DiversitySettings(quality_model="fake-rm", quality_reference=str(ref), quality_quantile=0.7), "quantile"),
    ]:
        with pytest.raises(QualityReferenceError, match=message):
            reference_calibration(str(ref), "diversity_alpaca", bad)
    with pytest.raises(QualityReferenceError, match="no reward calibration for diversity_prism"):
        reference_calibration(str(ref), "diversity_prism", settings)


def test_reward_settings_are_validated():
    assert "utility_k" in DiversitySettings(quality_model="m").metrics  # a reward model brings its metrics
    with pytest.raises(ValueError, match="need a reward model"):
        DiversitySettings(metrics=("ead", "utility_k"))
    with pytest.raises(ValueError, match="quality_quantile"):
        DiversitySettings(quality_model="m", quality_quantile=1.5)


@pytest.mark.slow
def test_score_and_compare_on_all_15_tasks(tmp_path, tiny_reward_model_dir, capsys):
    """The acceptance run: a base and a later run of every task scored with a tiny reward model (the later run
    calibrated on the base's scores), then compare's split over the acceptable outputs on all 15 tasks."""
    words = "river stone light paper garden window music orange cloud silver".split()
    for run, shift in (("base", 0), ("model", 3)):
        for t, task in enumerate(task_names()):
            docs = demo_docs(task)[:3]
            outs = [
                [" ".join(words[(i + j * (1 + shift) + t) % 10 : ][:4] + words[: j + 1]) for j in range(4)]
                for i in range(len(docs))
            ]
            write_task_samples(tmp_path / run, task, docs, outs)
    common = ["--quality_model", str(tiny_reward_model_dir), "--sbert_model", "sentence-transformers/all-MiniLM-L6-v2",
              "--diversity_metrics", "ead,sbert,vendi", "--metric_device", "cpu"]  # fmt: skip
    assert main(["score", str(tmp_path / "base"), *common, "--output_path", str(tmp_path / "base.json")]) == 0
    assert main(["score", str(tmp_path / "model"), *common, "--quality_reference", str(tmp_path / "base.json"),
                 "--output_path", str(tmp_path / "model.json")]) == 0  # fmt: skip
    result = json.loads((tmp_path / "model.json").read_text())
    assert len(result["tasks"]) == 15
    for task, entry in result["tasks"].items():
        for m in ("reward_mean", "utility_k", "distinct_k", "qvendi", "sbert_acceptable", "acceptable_computable"):
            assert m in entry["metrics"], (task, m)
        assert entry["diagnostics"]["reward"]["calibration"]["source"] == str(tmp_path / "base.json")
    capsys.readouterr()
    rc = main(["compare", str(tmp_path / "base.json"), str(tmp_path / "model.json"), "--baseline",
               str(tmp_path / "base.json"), "--metrics", "sbert,utility_k", "--format", "json"])  # fmt: skip
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    split_tasks = {s["task"] for s in report["splits"] if s["subset"] == "acceptable" and s["status"] == "ok"}
    assert len(split_tasks) == 15
    assert not [c for c in report["checks"] if c["field"] == "reward_calibration"]  # the same calibration
