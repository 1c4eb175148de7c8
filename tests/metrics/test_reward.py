"""Reward-model quality: the maths by hand, and the batched reward pass against one-at-a-time transformers forwards."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import single_reward_forwards

from lm_eval_diversity.metrics.reward import (
    acceptable_threshold,
    distinct_k,
    quality_weighted_vendi,
    rating_cutoffs,
    ratings,
    rouge1_f,
    unigram_partition,
    utility_k,
)
from lm_eval_diversity.models import ModelUnavailableError, load_reward_model


def test_ratings_from_reference_deciles():
    cutoffs = rating_cutoffs(list(range(1, 11)))  # 1..10: the q-quantile is 1 + 9q
    assert cutoffs == pytest.approx([1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1])
    # one plus the number of cut-offs strictly below: a reward equal to a cut-off stays below it
    assert ratings([1.0, 1.9, 2.0, 5.5, 9.2, 10.0], cutoffs).tolist() == [1, 1, 2, 5, 10, 10]
    assert acceptable_threshold([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert acceptable_threshold([1.0, 2.0, 3.0, 4.0], 1.0) == 4.0
    with pytest.raises(ValueError):
        acceptable_threshold([], 0.5)


def test_rouge1_matches_rouge_score():
    from rouge_score import rouge_scorer

    a, b = "the cat sat".split(), "the cat ran away".split()
    assert rouge1_f(a, b) == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))  # P = 2/4, R = 2/3
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    for x, y in [("the the cat", "the cat cat dog"), ("A b, c!", "c b a"), ("", "x"), ("same", "same")]:
        from lm_eval_diversity.metrics.lexical import rouge_tokens

        assert rouge1_f(rouge_tokens(x), rouge_tokens(y)) == pytest.approx(scorer.score(x, y)["rouge1"].fmeasure)


def test_unigram_partition_and_distinct():
    texts = ["the cat sat on the mat", "the cat sat on a mat", "dogs bark loudly", "", ""]
    # 1 vs 0: 5 shared of 6 words each, F1 0.83 > 0.458; "dogs bark loudly" shares nothing; two empty texts are
    # identical (the same class) although ROUGE-1 between them is 0
    assert unigram_partition(texts) == [0, 0, 1, 2, 2]
    assert distinct_k([0, 0, 1, 2, 2]) == 3
    # greedy against the class's first member only: c is close to b, b to a, c not to a
    chain = ["w1 w2 w3 w4", "w3 w4 w5 w6", "w5 w6 w7 w8"]  # F1(a,b) = F1(b,c) = 0.5, F1(a,c) = 0
    assert unigram_partition(chain) == [0, 0, 1]


def test_utility_by_hand():
    # credited [8, 0, 9, 3] (output 1 repeats class 0), weights 1, .8, .64, .512
    expected = (8 + 0 + 0.64 * 9 + 0.512 * 3) / (1 + 0.8 + 0.64 + 0.512)
    assert utility_k([8, 6, 9, 3], [0, 0, 1, 2]) == pytest.approx(expected)
    assert utility_k([5, 5], [0, 1], patience=1.0) == 5.0
    assert utility_k([7, 7, 7], [0, 0, 0], patience=0.5) == pytest.approx(7 / 1.75)
    assert math.isnan(utility_k([], []))
    with pytest.raises(ValueError):
        utility_k([1], [0], patience=0.0)


def test_quality_weighted_vendi_by_hand():
    assert quality_weighted_vendi(2.5, [10, 5]) == pytest.approx(0.75 * 2.5)
    assert math.isnan(quality_weighted_vendi(2.0, []))


PAIRS = [
    ("What is 2+2?", "4"),
    ("Tell me a story about a fox.", "Once upon a time a fox " * 12),
    ("What is 2+2?", "4"),  # a repeat: scored once
    ("Summarise: the meeting moved.", ""),
    ("Tell me a story about a fox.", "A fox. The end."),
    ("Quote { braces } and \"quotes\"", "Sure: {x} — naïve ünïcode 🙂"),
]


def test_batched_rewards_equal_single_forwards(tiny_reward_model_dir):
    rm = load_reward_model(str(tiny_reward_model_dir), "cpu")
    calls = []
    forward = rm.model.forward

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return forward(*args, **kwargs)

    rm.model.forward = counting
    batched = rm.rewards(PAIRS, batch_size=2)
    single = single_reward_forwards(tiny_reward_model_dir, PAIRS)
    assert np.abs(batched - single).max() < 1e-5
    assert np.ptp(single) > 0.1  # the rewards differ, so a permuted batch would show
    assert sum(calls) == 5  # six pairs, five distinct
    assert batched[0] == batched[2]


def test_truncation_keeps_the_first_tokens(tiny_reward_model_dir):
    rm = load_reward_model(str(tiny_reward_model_dir), "cpu", max_length=12)
    batched = rm.rewards(PAIRS, batch_size=4)
    assert np.abs(batched - single_reward_forwards(tiny_reward_model_dir, PAIRS, max_length=12)).max() < 1e-5
    assert rm.n_truncated >= 2


def test_models_that_are_not_reward_models_are_refused(tiny_nli_dir, tmp_path):
    with pytest.raises(ModelUnavailableError, match="3 outputs; a reward model has one"):
        load_reward_model(str(tiny_nli_dir), "cpu")
    from helpers import build_tiny_reward_model
    from transformers import AutoTokenizer

    path = build_tiny_reward_model(tmp_path / "rm")
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = None
    tok.save_pretrained(path)
    (path / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(ModelUnavailableError, match="no chat template"):
        load_reward_model(str(path), "cpu")
