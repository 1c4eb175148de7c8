"""The metric-work estimate: hand-counted texts and NLI pairs, the scoring path's own pair count, and the CLI."""

from __future__ import annotations

import pytest
from helpers import FakeNLI, FakeSentenceModel, write_samples_file

from lm_eval_diversity import cli
from lm_eval_diversity.estimate import (
    Rates,
    calibrate,
    format_work,
    harness_estimate,
    measured_work,
    planned_work,
)
from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups
from lm_eval_diversity.settings import DiversitySettings

ALL = DiversitySettings()


def test_planned_work_at_paper_scale():
    w = planned_work("diversity_gsm8k", 500, 16, ALL)
    assert (w.n_outputs, w.unique_texts, w.exact) == (8000, 8000, False)
    # 500 prompts x C(16,2)=120 output pairs x 3 sentences x 2 directions; corpus sets of 500: C(500,2) x 6
    assert w.nli_pairs == {"per_input": 360_000, "across_input": 748_500, "overall": 748_500}
    text = format_work([w], ALL, Rates("cpu", texts_per_s=100.0, pairs_per_s=10.0))
    assert "NLI corpus levels at most 1,497,000 pairs: 4.2x the per-input work" in text
    assert "embedding at most 8,000 texts: ~80 s (100 texts/s)" in text
    assert "NLI per-input at most 360,000 pairs: ~10.0 h (10 pairs/s)" in text
    # 80 s + 36,000 s + 149,700 s
    assert text.splitlines()[0] == "metric work, 1 task(s), device cpu: ~51.6 h in all"


def test_planned_work_small_sets_are_used_whole():
    w = planned_work("t", 10, 4, ALL)
    assert w.nli_pairs == {"per_input": 10 * 6 * 6, "across_input": 45 * 6, "overall": 780 * 6}


GROUPS = [PromptGroup(0, ["A. B.", "A. C.", "D."]), PromptGroup(1, ["E.", "E."])]


def test_measured_work_counts_by_hand():
    w = measured_work("t", GROUPS, ALL)
    assert (w.n_prompts, w.k, w.n_outputs, w.unique_texts, w.exact) == (2, 3, 5, 4, True)
    # prompt 0: (A,A) (B.,C.) (A,D.) (A,D.) -> A>A, B.>C., C.>B., A>D., D.>A; prompt 1: E.>E.
    # across-input (first outputs "A. B.", "E."): A>E., E.>A
    # overall (all five outputs): the six above minus nothing, plus A<>E., D.<>E., E.>E. -> 10
    assert w.nli_pairs == {"per_input": 6, "across_input": 2, "overall": 10}
    assert sorted(w.sample_texts) == ["A. B.", "A. C.", "D.", "E."]


def test_measured_work_matches_what_scoring_runs():
    w = measured_work("t", GROUPS, ALL)
    nli = FakeNLI()
    score_groups(GROUPS, ALL.replace(metrics=("nli",), corpus_metrics=("nli",)), MetricModels(nli=nli))
    assert len(nli.calls) == 1 and len(nli.calls[0]) == w.nli_pairs["overall"]  # overall holds every pair here
    score_groups(GROUPS, ALL.replace(metrics=("nli",), corpus_metrics=()), MetricModels(nli=nli))
    assert len(nli.calls[1]) == w.nli_pairs["per_input"]


def test_uncalibrated_time_is_unknown_not_zero():
    text = format_work([planned_work("t", 10, 4, ALL)], ALL)
    assert "time unknown (not calibrated)" in text.splitlines()[0]


def test_calibrate_measures_both_models():
    models = MetricModels(sbert=FakeSentenceModel({}, default=(1.0, 0.0, 0.0)), nli=FakeNLI())
    rates = calibrate(models, ["a"] * 40, [("a", "b")] * 40, ALL.replace(device="cpu", batch_size=8), budget_s=0.5)
    assert rates.device == "cpu"
    assert rates.texts_per_s > 0 and rates.pairs_per_s > 0
    assert len(models.nli.calls) >= 2  # a warm-up batch, then timed batches
    none = calibrate(MetricModels(), [], [], ALL.replace(device="cpu"))
    assert none.texts_per_s is None and none.pairs_per_s is None


def test_harness_estimate_calibrates_once_per_model_setting():
    loads = []

    def load(settings):
        loads.append(settings)
        return MetricModels(sbert=FakeSentenceModel({}, default=(1.0, 0.0, 0.0)), nli=FakeNLI())

    st = ALL.replace(device="cpu", sbert_model="fake-sbert-for-estimate", nli_model="fake-nli-for-estimate")
    prompts = ["What is 2 + 3? Show your work.", "Name a river. Then name a city."]
    first = harness_estimate("diversity_a", prompts, 4, st, load)
    second = harness_estimate("diversity_b", prompts, 4, st, load)
    assert len(loads) == 1
    assert "diversity_a: 2 prompts x K=4; at most 8 unique texts to embed" in first
    assert "diversity_b" in second and "time unknown" not in second


def test_score_estimate_prints_work_and_writes_nothing(tmp_path, capsys):
    groups = [(0, ["The cat sat. It purred.", "A dog ran. It barked."]), (1, ["x", "x"])]
    samples = write_samples_file(tmp_path / "run", "diversity_demo", groups)
    out = tmp_path / "scores.json"
    rc = cli.main(
        ["score", str(samples), "--estimate", "--metrics", "ead,sbert", "--output_path", str(out),
         "--sbert_model", "sentence-transformers/all-MiniLM-L6-v2", "--device", "cpu"]
    )  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "diversity_demo: 2 prompts x K=2; 3 unique texts to embed" in printed
    assert "embedding 3 texts" in printed and "texts/s" in printed
    assert "NLI" not in printed  # not requested
    assert not out.exists()


@pytest.mark.parametrize("per_s,expected", [(None, "time unknown"), (2.0, "~50 s")])
def test_duration_wording(per_s, expected):
    text = format_work([planned_work("t", 10, 10, ALL.replace(metrics=("sbert",)))], ALL.replace(metrics=("sbert",)),
                       Rates("cpu", texts_per_s=per_s))  # fmt: skip
    assert expected in text


def test_semantic_cluster_pairs_counted_and_timed():
    # before generation: every prompt's K outputs distinct, K (K - 1) directional pairs each
    sem = ALL.replace(metrics=("semantic_clusters",))
    w = planned_work("t", 10, 4, sem)
    assert w.cluster_pairs == 10 * 4 * 3
    text = format_work([w], sem, Rates("cpu", pairs_per_s=12.0))
    assert "NLI semantic clusters at most 120 whole-output pairs: ~10 s" in text
    assert "NLI per-input" not in text  # the sentence-pair metric was not chosen
    # from outputs: prompt 0 has 3 distinct texts -> 6 pairs; prompt 1 two identical texts -> none
    m = measured_work("t", GROUPS, sem)
    assert m.cluster_pairs == 6
    nli = FakeNLI()
    score_groups(GROUPS, sem, MetricModels(nli=nli))
    assert [len(c) for c in nli.calls] == [m.cluster_pairs]
