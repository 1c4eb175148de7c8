"""SBERT diversity and Vendi (docs/metrics.md): closed-form vectors and properties that are theorems."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import ref_sbert, ref_vendi
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_diversity.metrics.embedding import (
    gram,
    normalize_rows,
    sbert_diversity_from_gram,
    vendi_from_gram,
)


def sbert_diversity(embeddings) -> float:
    """D_SBERT of one set of embeddings (rows): the Gram matrix of the pass, then the record's function."""
    return float(sbert_diversity_from_gram(gram(embeddings)))


def vendi_score(embeddings) -> float:
    return float(vendi_from_gram(gram(embeddings)))


def entropy_exp(eigs) -> float:
    """exp(-sum lam ln lam) with the reference's 1e-12 floor."""
    lam = [max(x, 1e-12) for x in eigs]
    return math.exp(-sum(x * math.log(x) for x in lam))


# --------------------------------------------------------------------------------------- test vectors


def test_identity_three():
    e = np.eye(3)
    assert sbert_diversity(e) == pytest.approx(1.0, abs=1e-12)
    assert vendi_score(e) == pytest.approx(3.0, abs=1e-9)


def test_e1_e1_e3():
    e = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=float)
    # cosines: (1, 0, 0) -> mean 1/3; G/3 has eigenvalues 2/3, 1/3, 0
    assert sbert_diversity(e) == pytest.approx(2 / 3, abs=1e-12)
    assert vendi_score(e) == pytest.approx(entropy_exp([2 / 3, 1 / 3, 0.0]), abs=1e-9)
    assert vendi_score(e) == pytest.approx(1.889882, abs=1e-6)


def test_sixty_degrees():
    e = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    # G/2 = [[1, .5], [.5, 1]] / 2 has eigenvalues 3/4 and 1/4
    assert sbert_diversity(e) == pytest.approx(0.5, abs=1e-12)
    assert vendi_score(e) == pytest.approx(entropy_exp([0.75, 0.25]), abs=1e-9)
    assert vendi_score(e) == pytest.approx(1.754765, abs=1e-6)


def test_sixteen_identical():
    e = np.tile([[0.3, -0.4, 0.5, 0.1]], (16, 1))
    assert sbert_diversity(e) == pytest.approx(0.0, abs=1e-12)
    # eigenvalues 1 and fifteen clipped to 1e-12: exp(15 * 1e-12 * ln(1e12)) = 1.000000000414...
    expected = math.exp(15 * 1e-12 * math.log(1e12))
    assert vendi_score(e) == pytest.approx(expected, abs=1e-12)
    assert vendi_score(e) == pytest.approx(1.0000000004, abs=1e-10)


def test_degenerate_sizes():
    assert sbert_diversity(np.zeros((0, 3))) == 0.0
    assert vendi_score(np.zeros((0, 3))) == 1.0
    assert sbert_diversity(np.array([[1.0, 2.0]])) == 0.0
    assert vendi_score(np.array([[1.0, 2.0]])) == 1.0
    batched = np.ones((4, 1, 1))
    assert np.array_equal(sbert_diversity_from_gram(batched), np.zeros(4))
    assert np.array_equal(vendi_from_gram(batched), np.ones(4))


def test_normalisation():
    e = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    n = normalize_rows(e)
    assert n.tolist() == [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]]
    # scaling a row changes nothing
    assert sbert_diversity(np.array([[3.0, 4.0], [0.0, -2.0]])) == pytest.approx(1 - (-0.8), abs=1e-12)
    assert np.allclose(gram(e[[0, 2]]), [[1.0, -0.8], [-0.8, 1.0]])


def test_batched_equals_single():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(5, 4, 6))
    g = gram(e)
    assert g.shape == (5, 4, 4)
    sb = sbert_diversity_from_gram(g)
    vs = vendi_from_gram(g)
    for i in range(5):
        assert sb[i] == pytest.approx(ref_sbert(e[i]), abs=1e-12)
        assert vs[i] == pytest.approx(ref_vendi(e[i]), abs=1e-9)


def test_antipodal_pair_reaches_two():
    assert sbert_diversity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0, abs=1e-12)


# ------------------------------------------------------------------------------------------------ properties

VEC = st.lists(st.integers(-3, 3), min_size=3, max_size=3).filter(any)
SETS = st.lists(VEC, min_size=2, max_size=9)


@settings(max_examples=150, deadline=None)
@given(SETS)
def test_ranges_and_independent_values(vectors):
    e = np.asarray(vectors, dtype=float)
    m = len(e)
    sb, vs = sbert_diversity(e), vendi_score(e)
    assert -1e-12 <= sb <= 2 + 1e-12
    assert 1 - 1e-9 <= vs <= m * (1 + 1e-9)
    # the effective number of distinct directions cannot exceed the rank (3 here), up to the 1e-12 floor
    assert vs <= min(m, np.linalg.matrix_rank(e)) + 1e-6
    assert sb == pytest.approx(ref_sbert(vectors), abs=1e-12)
    assert vs == pytest.approx(ref_vendi(vectors), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(SETS, st.randoms(use_true_random=False))
def test_permutation_invariance(vectors, rnd):
    e = np.asarray(vectors, dtype=float)
    perm = list(range(len(e)))
    rnd.shuffle(perm)
    assert sbert_diversity(e[perm]) == pytest.approx(sbert_diversity(e), abs=1e-12)
    assert vendi_score(e[perm]) == pytest.approx(vendi_score(e), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(SETS)
def test_duplicating_the_whole_set(vectors):
    # G(S+S)/(2m) = [[1,1],[1,1]]/2 (x) G(S)/m: the same nonzero eigenvalues, so Vendi is unchanged (apart from
    # m more eigenvalues at the 1e-12 floor, each adding 2.8e-11 to the entropy)
    e = np.asarray(vectors, dtype=float)
    m = len(e)
    doubled = np.vstack([e, e])
    assert vendi_score(doubled) == pytest.approx(vendi_score(e), rel=1e-8)
    # SBERT: with mu the mean pairwise cosine of S, the mean over S+S is (2 mu (m-1) + 1) / (2m - 1), so
    # D(S+S) = D(S) * (2m - 2) / (2m - 1) <= D(S)
    assert sbert_diversity(doubled) == pytest.approx(sbert_diversity(e) * (2 * m - 2) / (2 * m - 1), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 40))
def test_identical_and_orthogonal_sets(m):
    same = np.tile([[0.0, 2.0, 0.0]], (m, 1))
    # one eigenvalue 1, m - 1 at the 1e-12 floor: 1 up to the floor artefact (< 1e-9 for m <= 16)
    assert vendi_score(same) == pytest.approx(math.exp((m - 1) * 1e-12 * math.log(1e12)), abs=1e-12)
    if m <= 16:
        assert abs(vendi_score(same) - 1.0) < 1e-9
    assert sbert_diversity(same) == pytest.approx(0.0, abs=1e-12)
    ortho = np.eye(m) * 3.0
    assert vendi_score(ortho) == pytest.approx(float(m), rel=1e-12)
    assert sbert_diversity(ortho) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, math.pi))
def test_two_vectors_closed_form(theta):
    e = np.array([[1.0, 0.0], [math.cos(theta), math.sin(theta)]])
    c = math.cos(theta)
    assert sbert_diversity(e) == pytest.approx(1 - c, abs=1e-12)
    assert vendi_score(e) == pytest.approx(entropy_exp([(1 + c) / 2, (1 - c) / 2]), abs=1e-8)
