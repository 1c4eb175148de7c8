"""NLI diversity (docs/metrics.md): splitter, alignment, the pooled formula, per-prompt RNG, the real model call."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import FakeNLI, build_tiny_nli, hashed_w
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_diversity.metrics.nli import aligned_sentence_pairs, nli_diversity, prompt_rng, split_sentences
from lm_eval_diversity.models import ModelUnavailableError, NLIModel, load_nli_model
from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups
from lm_eval_diversity.settings import DiversitySettings

# ------------------------------------------------------------------------------------------------ splitter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A. B! C? D", ["A", "B", "C", "D"]),
        ("Wait... what?! Yes", ["Wait", "what", "Yes"]),
        ("Last one keeps it.", ["Last one keeps it."]),
        ("One. Two!", ["One", "Two!"]),
        ("pi is 3.14 today", ["pi is 3.14 today"]),  # no whitespace after the dot: no split
        ("e.g.x", ["e.g.x"]),
        ("line one\nline two\n\n\nline three", ["line one", "line two", "line three"]),
        ("a\rb", ["a b"]),  # \r becomes a space (not a line break)
        ("x\ty", ["x y"]),  # \t becomes a space
        ("End.\r\nNext", ["End", "Next"]),
        ("  padded  .  next ", ["padded", "next"]),
        ("", []),
        ("   \n\n \t ", []),
        ("!!! ??? ", []),  # only separators: every piece is empty and dropped
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


# ------------------------------------------------------------------------------------------------ alignment


class NoRng(random.Random):
    """Fails if the alignment touches the RNG."""

    def sample(self, *args, **kwargs):  # noqa: D401
        raise AssertionError("RNG used although L <= 3")


def test_alignment_is_positional_and_in_combinations_order():
    outputs = ["A1. A2.", "B1. B2. B3.", "C1"]
    got = aligned_sentence_pairs(outputs, NoRng())
    # (0,1): L=2 -> positions 0,1; (0,2): L=1; (1,2): L=1. Last sentences keep their final punctuation.
    assert got == [("A1", "B1"), ("A2.", "B2"), ("A1", "C1"), ("B1", "C1")]


def test_three_positions_use_no_rng():
    outputs = ["a. b. c.", "d. e. f. g. h."]
    assert aligned_sentence_pairs(outputs, NoRng()) == [("a", "d"), ("b", "e"), ("c.", "f")]


def test_pairs_with_an_empty_side_are_skipped():
    outputs = ["", "A. B", "C", "  \n "]
    assert aligned_sentence_pairs(outputs, NoRng()) == [("A", "C")]


def test_more_than_three_positions_sample_three_with_the_rng():
    a = "s0. s1. s2. s3. s4. s5"
    b = "t0. t1. t2. t3. t4. t5. t6"
    rng = random.Random(99)
    got = aligned_sentence_pairs([a, b], rng)
    twin = random.Random(99)
    idx = twin.sample(list(range(6)), 3)  # L = min(6, 7) = 6
    assert got == [(f"s{t}", f"t{t}") for t in idx]
    assert rng.getstate() == twin.getstate()  # exactly one sample() call consumed
    assert len({p for p, _ in got}) == 3


def test_max_sentences_parameter():
    outputs = ["a. b. c. d", "e. f. g. h"]
    got = aligned_sentence_pairs(outputs, NoRng(), max_sentences=4)
    assert got == [("a", "e"), ("b", "f"), ("c", "g"), ("d", "h")]


# ------------------------------------------------------------------------------------------------ formula


def test_spec_vector_mocked_probabilities():
    # a => b: (C, N, E) = (0.1, 0.2, 0.7) -> w = 0.6 ; b => a: (0.3, 0.3, 0.4) -> w = 0.1 ; sim = 0.35
    probs = {("a", "b"): (0.1, 0.2, 0.7), ("b", "a"): (0.3, 0.3, 0.4)}

    def w(p, h):
        c, _, e = probs[(p, h)]
        return e - c

    assert nli_diversity([("a", "b")], w) == pytest.approx(0.65, abs=1e-12)


def test_pooled_weighting_differs_from_mean_of_pair_means():
    # x, y have 3 sentences, z has 1: pair (x,y) gives 3 aligned pairs with sim +1, (x,z) and (y,z) one each with
    # sim -1. Pooled: 1 - (3*1 - 2) / 5 = 0.8 ; the mean of per-pair means would give 1 - (1 - 1 - 1)/3 = 4/3.
    x, y, z = "x0. x1. x2.", "y0. y1. y2.", "z0"
    aligned = aligned_sentence_pairs([x, y, z], NoRng())
    assert len(aligned) == 5

    def w(p, h):
        return -1.0 if "z0" in (p, h) else 1.0

    assert nli_diversity(aligned, w) == pytest.approx(0.8, abs=1e-12)
    assert nli_diversity(aligned, w) != pytest.approx(4 / 3, abs=1e-3)


def test_direction_average_uses_both_directions():
    scores = {("p", "q"): 1.0, ("q", "p"): -0.5, ("r", "s"): 0.0, ("s", "r"): 0.2}
    got = nli_diversity([("p", "q"), ("r", "s")], lambda a, b: scores[(a, b)])
    assert got == pytest.approx(1 - ((1.0 - 0.5) / 2 + (0.0 + 0.2) / 2) / 2, abs=1e-12)


def test_no_pairs_gives_zero():
    assert nli_diversity([], lambda a, b: 1 / 0) == 0.0
    assert aligned_sentence_pairs(["only one. output"], NoRng()) == []
    assert aligned_sentence_pairs(["", "", ""], NoRng()) == []


def test_extremes():
    aligned = [("a", "b"), ("c", "d")]
    assert nli_diversity(aligned, lambda a, b: 1.0) == 0.0
    assert nli_diversity(aligned, lambda a, b: -1.0) == 2.0
    assert nli_diversity(aligned, lambda a, b: 0.0) == 1.0


SENT = st.sampled_from(["a", "b", "c", "dd", "e e"])
OUTPUT = st.lists(SENT, max_size=6).map(". ".join)


@settings(max_examples=100, deadline=None)
@given(st.lists(OUTPUT, max_size=6), st.integers(0, 10))
def test_range_zero_two(outputs, seed):
    aligned = aligned_sentence_pairs(outputs, random.Random(seed))
    value = nli_diversity(aligned, hashed_w)
    assert 0.0 <= value <= 2.0
    n_nonempty = sum(bool(split_sentences(o)) for o in outputs)
    assert (len(aligned) == 0) == (n_nonempty < 2)


# ------------------------------------------------------------------------------------------------ RNG


def test_prompt_rng_is_deterministic_and_keyed():
    seq = [prompt_rng(1234, 7).random() for _ in range(2)]
    assert seq[0] == seq[1]
    random.seed(0)
    a = prompt_rng(1234, 7).random()
    random.seed(1)
    assert prompt_rng(1234, 7).random() == a  # independent of the global RNG
    assert prompt_rng(1234, 8).random() != a
    assert prompt_rng(1235, 7).random() != a
    assert prompt_rng(1234, "overall").random() != prompt_rng(1234, "across_input").random()


def _long(tag: str, n: int) -> str:
    return " ".join(f"{tag} sentence {i}." for i in range(n))


def test_per_prompt_nli_independent_of_group_order():
    groups = [PromptGroup(doc_id=d, outputs=[_long(f"d{d}o{j}", 6 + j) for j in range(4)]) for d in range(5)]
    st_ = DiversitySettings(metrics=("nli",), corpus_metrics=("nli",), seed=1234)
    forward = score_groups(groups, st_, MetricModels(nli=FakeNLI(fn=hashed_w)))
    backward = score_groups(list(reversed(groups)), st_, MetricModels(nli=FakeNLI(fn=hashed_w)))
    fwd = {r["doc_id"]: r["nli"] for r in forward.per_prompt}
    bwd = {r["doc_id"]: r["nli"] for r in backward.per_prompt}
    assert fwd == bwd
    # each prompt's value is what its own RNG (seed, doc_id) gives, recomputed with the pure functions
    for g in groups:
        aligned = aligned_sentence_pairs([o.strip() for o in g.outputs], prompt_rng(1234, g.doc_id))
        assert fwd[g.doc_id] == pytest.approx(nli_diversity(aligned, hashed_w), abs=1e-12)
    # and the seed matters (sampling of 3 of >= 6 positions)
    other = score_groups(groups, st_.replace(seed=99), MetricModels(nli=FakeNLI(fn=hashed_w)))
    assert [r["nli"] for r in other.per_prompt] != [fwd[g.doc_id] for g in groups]


# ------------------------------------------------------------------------------------------------ real tiny model


def _independent_w(model_dir, pairs):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    labels = {int(k): v.lower() for k, v in model.config.id2label.items()}
    ent = next(k for k, v in labels.items() if v == "entailment")
    con = next(k for k, v in labels.items() if v == "contradiction")
    out = []
    with torch.no_grad():
        for p, h in pairs:  # one pair at a time: no padding at all
            logits = model(**tok(p, h, return_tensors="pt")).logits[0].double()
            probs = torch.softmax(logits, dim=-1)
            out.append(float(probs[ent] - probs[con]))
    return np.array(out)


PAIRS = [
    ("A cat sat on the mat.", "A cat is sitting."),
    ("The weather is lovely today and the sun is out over the hills.", "It rains."),
    ("x", "y"),
    ("Prices rose sharply in March after the announcement by the central bank.", "Prices fell."),
    ("Short.", "A considerably longer hypothesis sentence with many more word pieces in it than the premise."),
]


def test_entail_minus_contradict_matches_transformers(tiny_nli_dir):
    nli = load_nli_model(str(tiny_nli_dir), device="cpu")
    # id2label {0: neutral, 1: ENTAILMENT, 2: Contradiction}: matched by substring, case-insensitively
    assert (nli.entail_index, nli.contradict_index) == (1, 2)
    expected = _independent_w(str(tiny_nli_dir), PAIRS)
    got = nli.entail_minus_contradict(PAIRS, batch_size=2)
    assert got.shape == (len(PAIRS),)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(nli.entail_minus_contradict(PAIRS, batch_size=64), expected, atol=1e-5)
    assert np.ptp(expected) > 1e-3  # the model separates the pairs, so a wrong label index would be caught
    assert np.all(np.abs(got) <= 1.0)
    assert nli.entail_minus_contradict([]).shape == (0,)


def test_model_without_nli_labels_is_rejected(tmp_path):
    path = build_tiny_nli(tmp_path / "bad", id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(ModelUnavailableError, match="--nli_model"):
        load_nli_model(str(path), device="cpu")


def test_nli_model_label_order_from_config():
    class Cfg:
        id2label = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}  # roberta-large-mnli order

    class M:
        config = Cfg()

    nli = NLIModel(M(), tokenizer=None, device="cpu")
    assert (nli.entail_index, nli.contradict_index) == (2, 0)
