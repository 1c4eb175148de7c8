"""EAD (docs/metrics.md): hand-computed test vectors, tokenisation quirks, and properties checked by hypothesis."""

from __future__ import annotations

import random

import pytest
from helpers import ref_ead, ref_ead_n
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_diversity.metrics.ngram import ead, ead_n, ead_orders, ead_tokenize

V = 50257


def denom(c: int, v: int = V) -> float:
    """Expected number of distinct tokens in c uniform draws from v: v * (1 - ((v-1)/v)^c)."""
    return v * (1 - ((v - 1) / v) ** c)


# ------------------------------------------------------------------------------------------------ tokenisation


def test_tokenize_deletes_dots_and_newlines():
    assert ead_tokenize("end\nNext") == ["endNext"]
    assert ead_tokenize("pi is 3.5") == ["pi", "is", "35"]
    assert ead_tokenize("Hello, world. Bye!") == ["Hello,", "world", "Bye!"]
    assert ead_tokenize("a\tb  c\r\nd") == ["a", "b", "c", "d"]  # \r is whitespace, \n deleted -> "c\r" split
    assert ead_tokenize("...\n\n") == []
    assert ead_tokenize("Case case") == ["Case", "case"]


# --------------------------------------------------------------------------------------- test vectors

S8 = ["the cat sat on the mat.", "the dog sat on the log.\nIt was happy."]


def test_s8_vector_orders():
    # tokens: [the cat sat on the mat] + [the dog sat on the logIt was happy]
    # n=1: C=14, U=9 (the cat sat on mat dog logIt was happy); n=2: C=12, U=10 ("sat on", "on the" repeat)
    # n=3: C=10, U=9 ("sat on the" repeats); n=4: C=8, U=8; n=5: C=6, U=6 (both clipped at 1)
    by_hand = [9 / denom(14), 10 / denom(12), 9 / denom(10), 1.0, 1.0]
    got = ead_orders(S8)
    assert got == pytest.approx(by_hand, abs=1e-12)
    assert got == pytest.approx([0.642940, 0.833425, 0.900081, 1.0, 1.0], abs=1e-6)
    assert 8 / denom(8) > 1 and 6 / denom(6) > 1  # why orders 4 and 5 are exactly 1


def test_s8_vector_ead_and_vocab_size():
    assert ead(S8) == pytest.approx(0.875289, abs=1e-6)
    assert ead(S8, vocab_size=100278) == pytest.approx(0.875264, abs=1e-6)
    assert ead(S8, vocab_size=100278) != ead(S8)


def test_sixteen_identical_ten_word_outputs():
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    # order n: C = 16 * (11 - n), U = 11 - n
    by_hand = sum((11 - n) / denom(16 * (11 - n)) for n in range(1, 6)) / 5
    assert ead([text] * 16) == pytest.approx(by_hand, abs=1e-12)
    assert ead([text] * 16) == pytest.approx(0.062579, abs=1e-6)


def test_sixteen_single_token_outputs():
    # EAD_1 = 1 / denom(16); orders 2..5 have C_n = 0 and count as 0 in the average (not skipped)
    assert ead_orders(["x"] * 16) == pytest.approx([1 / denom(16), 0, 0, 0, 0], abs=1e-12)
    assert ead_orders(["x"] * 16)[0] == pytest.approx(0.062509, abs=1e-6)
    assert ead(["x"] * 16) == pytest.approx(0.012502, abs=1e-6)


def test_empty_cases():
    assert ead(["", ""]) == 0.0
    assert ead([]) == 0.0
    assert ead([".", "\n"]) == 0.0


def test_random_long_outputs_saturate():
    rng = random.Random(7)
    outputs = [" ".join(f"w{rng.randrange(100_000)}" for _ in range(200)) for _ in range(16)]
    assert denom(3200) == pytest.approx(3100.28, abs=0.01)
    assert ead_orders(outputs) == [1.0, 1.0, 1.0, 1.0, 1.0]
    assert ead(outputs) == 1.0


def test_clipping_at_one():
    # one response of 6 distinct words: U_n = C_n and denom(C) < C, so every order is clipped to exactly 1
    assert ead(["a b c d e f"]) == 1.0
    assert ead_n([["a", "b"]], 1, V) == 1.0


def test_ngrams_do_not_cross_responses():
    # n=2: bigrams "a b", "a b", "c d", "c d" (C=4, U=2); crossing would add "b a", "b c", "d c" (C=7, U=5)
    assert ead_orders(["a b", "a b", "c d", "c d"])[1] == pytest.approx(2 / denom(4), abs=1e-12)
    # n=3: no response has 3 words, so C_3 = 0 -> 0 (crossing would give the trigrams "a b c", "b c d")
    assert ead_orders(["a b", "c d"])[2] == 0.0
    # a shared bigram across responses is counted once in U, twice in C
    assert ead_orders(["a b", "a b"])[1] == pytest.approx(1 / denom(2), abs=1e-12)


def test_short_response_contributes_no_ngrams_of_higher_order():
    # "x y z" gives trigram (x y z); "q" adds a unigram but no bigram/trigram
    got = ead_orders(["x y z", "q"])
    assert got[0] == pytest.approx(min(1.0, 4 / denom(4)), abs=1e-12)
    assert got[2] == pytest.approx(min(1.0, 1 / denom(1)), abs=1e-12)
    assert got[3] == 0.0 and got[4] == 0.0


def test_vocab_size_changes_denominator():
    # V = 2: denom(C) = 2 * (1 - 0.5^C); tokens "a a a": U_1 = 1, C_1 = 3 -> 1 / 1.75
    assert ead_n([["a", "a", "a"]], 1, 2) == pytest.approx(1 / 1.75, abs=1e-12)
    assert ead_n([["a", "a", "a"]], 1, 10) == pytest.approx(1 / (10 * (1 - 0.9**3)), abs=1e-12)


# ------------------------------------------------------------------------------------------------ properties

WORDS = st.sampled_from(["a", "b", "c", "d.", "e\nf", "3.5", "x!", "A", ""])
RESPONSE = st.lists(WORDS, max_size=12).map(" ".join)
RESPONSES = st.lists(RESPONSE, max_size=8)
VOCAB = st.sampled_from([2, 7, 1000, 50257, 100278])


@settings(max_examples=150, deadline=None)
@given(RESPONSES, VOCAB)
def test_matches_independent_formula_and_range(responses, vocab):
    value = ead(responses, vocab_size=vocab)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(ref_ead(responses, vocab), abs=1e-12)
    for n, got in enumerate(ead_orders(responses, vocab), start=1):
        assert got == pytest.approx(ref_ead_n(responses, n, vocab), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(RESPONSES, st.randoms(use_true_random=False))
def test_invariant_to_output_order(responses, rnd):
    shuffled = list(responses)
    rnd.shuffle(shuffled)
    assert ead(shuffled) == pytest.approx(ead(responses), abs=1e-15)


@settings(max_examples=100, deadline=None)
@given(RESPONSES, VOCAB)
def test_duplicating_the_set_never_increases_ead(responses, vocab):
    # doubling S doubles every C_n and keeps U_n; V(1 - q^C) is increasing in C, so each EAD_n can only drop
    assert ead(responses + responses, vocab) <= ead(responses, vocab) + 1e-15


@settings(max_examples=100, deadline=None)
@given(RESPONSES)
def test_empty_responses_add_nothing(responses):
    assert ead(responses + ["", " ", "\n."]) == ead(responses)
