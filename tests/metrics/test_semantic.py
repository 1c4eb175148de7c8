"""Semantic clusters (bidirectional entailment) with fake NLI decisions given as matrices, and NLIModel.label_probs.

Expected values are worked by hand from the stated rule: greedy against cluster representatives, a later
representative taking over the texts it is equivalent to (the semantic-entropy reference code's rule).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lm_eval_diversity import models
from lm_eval_diversity.metrics.semantic import (
    cluster_ids,
    cluster_pairs,
    clusters_from_scores,
    entailment_decisions,
    semantic_clusters,
)
from lm_eval_diversity.models import load_nli_model


def _matrix(k: int, equivalent_pairs=(), one_way=()):
    """K x K entailment decisions: the diagonal, both directions of each equivalent pair, one direction of each
    one-way pair."""
    m = np.eye(k, dtype=bool)
    for i, j in equivalent_pairs:
        m[i, j] = m[j, i] = True
    for i, j in one_way:
        m[i, j] = True
    return m


def test_one_cluster():
    texts = ["a", "b", "c", "d"]
    got = semantic_clusters(texts, np.ones((4, 4), dtype=bool))
    assert got == {"semantic_clusters": 1.0, "semantic_clusters_norm": 0.25, "semantic_entropy": 0.0}


def test_all_singletons():
    got = semantic_clusters(["a", "b", "c", "d"], _matrix(4))
    assert got["semantic_clusters"] == 4.0
    assert got["semantic_clusters_norm"] == 1.0
    assert got["semantic_entropy"] == pytest.approx(math.log(4))


def test_two_classes_entropy():
    # sizes 2, 1, 1 of K = 4: -(1/2 ln 1/2 + 2 * 1/4 ln 1/4) = 1.5 ln 2
    got = semantic_clusters(["a", "b", "c", "d"], _matrix(4, equivalent_pairs=[(0, 2)]))
    assert cluster_ids(["a", "b", "c", "d"], _matrix(4, equivalent_pairs=[(0, 2)])) == [0, 1, 0, 2]
    assert got["semantic_clusters"] == 3.0
    assert got["semantic_clusters_norm"] == 0.75
    assert got["semantic_entropy"] == pytest.approx(1.5 * math.log(2))


def test_one_way_entailment_is_not_equivalence():
    got = semantic_clusters(["a", "b"], _matrix(2, one_way=[(0, 1)]))
    assert got["semantic_clusters"] == 2.0


def test_non_transitive_triple_greedy_vs_closure():
    # a ~ b, b ~ c, not a ~ c
    m = _matrix(3, equivalent_pairs=[(0, 1), (1, 2)])
    texts = ["a", "b", "c"]
    # greedy: a founds cluster 0 and takes b; c is not equivalent to a (the only representative) -> new cluster
    assert cluster_ids(texts, m, rule="greedy") == [0, 0, 1]
    greedy = semantic_clusters(texts, m)
    assert greedy["semantic_clusters"] == 2.0
    assert greedy["semantic_entropy"] == pytest.approx(math.log(3) - 2 / 3 * math.log(2))
    # closure: a - b - c is one connected component
    assert cluster_ids(texts, m, rule="closure") == [0, 0, 0]
    assert semantic_clusters(texts, m, rule="closure")["semantic_clusters"] == 1.0
    # greedy depends on order: with b first, both a and c join b
    order = [1, 0, 2]
    assert cluster_ids([texts[i] for i in order], m[np.ix_(order, order)]) == [0, 0, 0]


def test_greedy_gives_a_text_to_the_last_representative_it_matches():
    # r1, r2 are not equivalent (two representatives); x ~ r1 and x ~ r2; y ~ r1 only.
    # r1 takes x and y, then r2 takes x over: {r1, y}, {r2, x} (sizes 2, 2; a first-match rule would give 3, 1)
    m = _matrix(4, equivalent_pairs=[(0, 2), (1, 2), (0, 3)])
    texts = ["r1", "r2", "x", "y"]
    assert cluster_ids(texts, m) == [0, 1, 1, 0]
    assert semantic_clusters(texts, m)["semantic_entropy"] == pytest.approx(math.log(2))
    assert cluster_ids(texts, m, rule="closure") == [0, 0, 0, 0]


def test_identical_texts_need_no_model():
    asked = []

    def entails(a, b):
        asked.append((a, b))
        return False

    assert cluster_ids(["x", "y", "x", "x"], entails) == [0, 1, 0, 0]
    assert all(a != b for a, b in asked)
    assert semantic_clusters(["x", "x", "x"], entails)["semantic_clusters"] == 1.0


def test_empty_outputs_form_their_own_cluster_without_the_model():
    def entails(a, b):
        assert a.strip() and b.strip(), f"model asked about an empty output: {(a, b)}"
        return True

    assert cluster_ids(["", "a", "  ", "b", ""], entails) == [0, 1, 2, 1, 0]


def test_fewer_than_two_outputs_is_nan():
    for texts in ([], ["only"]):
        got = semantic_clusters(texts, np.eye(len(texts), dtype=bool))
        assert all(math.isnan(v) for v in got.values())


def test_bad_rule_and_bad_matrix():
    with pytest.raises(ValueError, match="rule='transitive'"):
        cluster_ids(["a", "b"], np.eye(2, dtype=bool), rule="transitive")
    with pytest.raises(ValueError, match="square K x K"):
        cluster_ids(["a", "b", "c"], np.eye(2, dtype=bool))


def test_cluster_pairs_both_directions_deduplicated():
    sets = [["a", "b", "a"], ["b", "a", "c"], ["", "a", ""], ["d"]]
    assert cluster_pairs(sets) == [("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("a", "c"), ("c", "a")]
    sixteen = [[f"t{i}" for i in range(16)]]
    assert len(cluster_pairs(sixteen)) == 16 * 15


def test_clusters_from_scores_matches_the_matrix_rule():
    sets = [["a", "b", "c"], ["b", "c", "d", "d"]]
    pairs = cluster_pairs(sets)
    equivalent = {frozenset(("a", "b")), frozenset(("c", "d"))}
    one_way = {("b", "c")}  # b entails c, c does not entail b
    probs = []
    for p, h in pairs:
        if frozenset((p, h)) in equivalent or (p, h) in one_way:
            probs.append([0.6, 0.3, 0.1])
        else:
            probs.append([0.3, 0.3, 0.4] if p < h else [0.2, 0.7, 0.1])
    got = clusters_from_scores(sets, pairs, np.asarray(probs))
    assert [g["semantic_clusters"] for g in got] == [2.0, 2.0]
    # prompt 2: clusters {b}, {c, d, d}: sizes 1, 3 of K = 4
    assert got[1]["semantic_entropy"] == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    decisions = entailment_decisions(np.asarray(probs))
    assert clusters_from_scores(sets, pairs, decisions) == got


def test_clusters_from_scores_errors():
    sets = [["a", "b"]]
    with pytest.raises(ValueError, match="aligned"):
        clusters_from_scores(sets, [("a", "b"), ("b", "a")], np.ones(1, dtype=bool))
    with pytest.raises(KeyError, match="premise 'b'"):
        clusters_from_scores(sets, [("a", "b")], np.ones(1, dtype=bool))
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        entailment_decisions(np.ones((2, 2)))


def test_entailment_decision_is_argmax():
    probs = np.array([[0.5, 0.4, 0.1], [0.4, 0.5, 0.1], [0.34, 0.33, 0.33], [0.3, 0.2, 0.5]])
    assert entailment_decisions(probs).tolist() == [True, False, True, False]


# ---------------------------------------------------------------------------------------------------------------
# NLIModel.label_probs with the tiny random NLI (labels: 0 neutral, 1 ENTAILMENT, 2 Contradiction)
# ---------------------------------------------------------------------------------------------------------------

PAIRS = [
    ("The cat sat on the mat.", "A cat is sitting."),
    ("A cat is sitting.", "The cat sat on the mat."),
    ("It rains all day in the valley and the river rises.", "Dry weather."),
    ("x", "y"),
    ("", "nothing at all"),
]


def _one_at_a_time(path: str, pairs):
    """Softmax rows of each pair run on its own (no padding, no batching), straight from transformers."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    rows = []
    with torch.no_grad():
        for p, h in pairs:
            enc = tok(p, h, truncation=True, max_length=512, return_tensors="pt")
            rows.append(torch.softmax(model(**enc).logits.float(), dim=-1)[0].numpy())
    return np.asarray(rows)


def test_label_probs_columns_and_rows(tiny_nli_dir, monkeypatch):
    nli = load_nli_model(str(tiny_nli_dir), device="cpu")
    raw = _one_at_a_time(str(tiny_nli_dir), PAIRS)
    monkeypatch.setattr(models, "TOKENIZE_CHUNK", 2)  # several tokeniser chunks, several batches
    got = nli.label_probs(PAIRS, batch_size=2)
    assert got.shape == (len(PAIRS), 3)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)
    # [entail, neutral, contradict] = model columns [1, 0, 2] of the tiny model's id2label
    np.testing.assert_allclose(got, raw[:, [1, 0, 2]], atol=1e-5)
    assert nli.label_probs([]).shape == (0, 3)


def _entail_minus_contradict_before_refactor(nli, pairs, batch_size):
    """The batched loop as it stood before ``class_probs`` existed, kept here to show the numbers did not move."""
    import torch

    out = np.zeros(len(pairs), dtype=np.float64)
    chunks = models._length_chunks(len(pairs), [len(p) + len(h) for p, h in pairs], models.TOKENIZE_CHUNK)
    with torch.inference_mode():
        for chunk in chunks:
            features = nli.tokenize([pairs[i] for i in chunk])
            for rows, batch in models.token_batches(features, batch_size, "right"):
                probs = torch.softmax(nli.model(**batch).logits.float(), dim=-1).cpu().numpy()
                out[chunk[rows.numpy()]] = probs[:, nli.entail_index] - probs[:, nli.contradict_index]
    return out


def test_entail_minus_contradict_unchanged(tiny_nli_dir, monkeypatch):
    nli = load_nli_model(str(tiny_nli_dir), device="cpu")
    pairs = PAIRS + [(h, p) for p, h in PAIRS]
    for chunk in (3, models.TOKENIZE_CHUNK):
        monkeypatch.setattr(models, "TOKENIZE_CHUNK", chunk)
        before = _entail_minus_contradict_before_refactor(nli, pairs, batch_size=4)
        now = nli.entail_minus_contradict(pairs, batch_size=4)
        assert now.dtype == np.float64
        assert np.array_equal(now, before)
    lp = nli.label_probs(pairs, batch_size=4)
    np.testing.assert_allclose(lp[:, 0] - lp[:, 2], nli.entail_minus_contradict(pairs, batch_size=4), atol=1e-7)


def test_one_batched_pass_clusters_a_task(tiny_nli_dir):
    """Plan -> one label_probs call -> clusters equal clustering with per-pair decisions of the same model."""
    nli = load_nli_model(str(tiny_nli_dir), device="cpu")
    sets = [
        ["The cat sat.", "A dog ran.", "The cat sat.", "Birds fly south."],
        ["A dog ran.", "Rain today.", "", "Sun tomorrow."],
    ]
    pairs = cluster_pairs(sets)
    got = clusters_from_scores(sets, pairs, nli.label_probs(pairs))
    raw = _one_at_a_time(str(tiny_nli_dir), pairs)
    decided = dict(zip(pairs, (np.argmax(raw, axis=1) == 1).tolist(), strict=True))  # column 1 is ENTAILMENT
    for texts, result in zip(sets, got, strict=True):
        assert result == semantic_clusters(texts, lambda a, b: decided[(a, b)])
