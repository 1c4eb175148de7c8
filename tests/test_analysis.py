"""QC/residual split and bootstrap helpers, checked against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lm_eval_diversity.analysis import (
    bootstrap_ci,
    paired_bootstrap_diff,
    qc_residual_split,
    split_from_prompts,
    stratified_bootstrap_mean,
    stratified_paired_diff,
)

NAN = math.nan


def test_split_additive_by_hand():
    s = qc_residual_split(0.5, 0.4, 0.3, 0.25)
    assert s["loss"] == pytest.approx(0.2)
    assert s["residual"] == pytest.approx(0.15)
    assert s["qc"] == pytest.approx(0.05)
    assert s["qc_share"] == pytest.approx(0.25)
    assert s["residual_share"] == pytest.approx(0.75)


def test_split_base_qc_variant_by_hand():
    s = qc_residual_split(0.5, 0.4, 0.3, 0.25, variant="base_qc")
    assert s["qc"] == pytest.approx(0.1)  # 0.5 - 0.4
    assert s["residual"] == pytest.approx(0.1)  # 0.4 - 0.3
    assert s["qc"] + s["residual"] == pytest.approx(s["loss"])


def test_split_shares_nan_when_no_loss_and_bad_variant():
    s = qc_residual_split(0.5, 0.4, 0.5, 0.3)
    assert s["loss"] == 0 and math.isnan(s["qc_share"]) and math.isnan(s["residual_share"])
    assert s["residual"] == pytest.approx(0.1) and s["qc"] == pytest.approx(-0.1)
    with pytest.raises(ValueError):
        qc_residual_split(1, 1, 1, 1, variant="nope")


BASE = [
    {"doc_id": 0, "sbert": 0.5, "sbert_correct": 0.4, "k_correct": 3},
    {"doc_id": 1, "sbert": 0.6, "sbert_correct": 0.5, "k_correct": 3},
    {"doc_id": 2, "sbert": 0.4, "sbert_correct": None, "k_correct": 1},
    {"doc_id": 3, "sbert": 0.5, "sbert_correct": 0.3, "k_correct": 2},
    {"doc_id": 4, "sbert": 0.5, "sbert_correct": NAN, "k_correct": 0},
]
MODEL = [
    {"doc_id": 0, "sbert": 0.3, "sbert_correct": 0.2, "k_correct": 4},
    {"doc_id": 1, "sbert": 0.3, "sbert_correct": NAN, "k_correct": 1},
    {"doc_id": 2, "sbert": 0.3, "sbert_correct": NAN, "k_correct": 0},
    {"doc_id": 3, "sbert": 0.3, "sbert_correct": 0.3, "k_correct": 4},
    {"doc_id": 4, "sbert": 0.3, "sbert_correct": 0.25, "k_correct": 2},
]


def test_split_from_prompts_unmatched_by_hand():
    s = split_from_prompts(BASE, MODEL, metric="sbert")
    assert s["d_all_base"] == pytest.approx(0.5)
    assert s["d_corr_base"] == pytest.approx(0.4)  # (0.4 + 0.5 + 0.3) / 3
    assert s["d_all_model"] == pytest.approx(0.3)
    assert s["d_corr_model"] == pytest.approx(0.25)  # (0.2 + 0.3 + 0.25) / 3
    assert (s["loss"], s["residual"], s["qc"]) == pytest.approx((0.2, 0.15, 0.05))
    assert s["n_prompts"] == 5 and s["n_corr_base"] == 3 and s["n_corr_model"] == 3
    assert s["k_correct_base"] == pytest.approx(1.8)
    assert s["ids_only_base"] == [] and s["ids_only_model"] == []


def test_split_from_prompts_matched_by_hand():
    s = split_from_prompts(BASE, MODEL, metric="sbert", matched=True)
    # computable in both: doc 0 and doc 3
    assert s["n_prompts"] == 2 and s["n_corr_base"] == 2
    assert s["d_corr_base"] == pytest.approx(0.35)
    assert s["d_corr_model"] == pytest.approx(0.25)
    assert s["d_all_base"] == pytest.approx(0.5)
    assert s["d_all_model"] == pytest.approx(0.3)
    assert (s["loss"], s["residual"], s["qc"]) == pytest.approx((0.2, 0.1, 0.1))
    assert s["qc_share"] == pytest.approx(0.5)


def test_split_prefers_metric_all_and_reports_mismatch():
    base = {i: {"sbert": 9.0, "sbert_all": 0.5, "sbert_correct": 0.4} for i in range(4)}
    model = {i: {"sbert": 9.0, "sbert_all": 0.3, "sbert_correct": 0.2} for i in (2, 3, 4, 5)}
    s = split_from_prompts(base, model)
    assert s["ids_only_base"] == [0, 1] and s["ids_only_model"] == [4, 5]
    assert s["n_common"] == 2 and s["n_prompts"] == 2
    assert s["d_all_base"] == pytest.approx(0.5) and s["d_all_model"] == pytest.approx(0.3)
    assert s["residual"] == pytest.approx(0.2) and s["qc"] == pytest.approx(0.0)


def test_split_duplicate_doc_id_is_an_error():
    with pytest.raises(ValueError, match="twice"):
        split_from_prompts([{"doc_id": 1}, {"doc_id": 1}], [])


def test_bootstrap_ci_constant_and_nan_aware():
    ci = bootstrap_ci([0.3, 0.3, None, NAN, 0.3], iters=500)
    assert ci["n"] == 3 and ci["estimate"] == pytest.approx(0.3)
    assert ci["low"] == pytest.approx(0.3) and ci["high"] == pytest.approx(0.3)
    empty = bootstrap_ci([None, NAN])
    assert empty["n"] == 0 and math.isnan(empty["estimate"])


def test_bootstrap_ci_covers_mean_and_is_seeded():
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 1.0, size=200)
    a = bootstrap_ci(x, iters=1000, seed=3)
    b = bootstrap_ci(x, iters=1000, seed=3)
    assert a == b
    assert a["low"] < x.mean() < a["high"]
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert a["high"] - a["low"] == pytest.approx(2 * half, rel=0.2)
    med = bootstrap_ci(x, stat=np.median, iters=200)
    assert med["estimate"] == pytest.approx(float(np.median(x)))


def test_paired_bootstrap_diff_on_common_ids():
    a = {0: 0.4, 1: 0.5, 2: NAN, 3: 0.7}
    b = {0: 0.5, 1: 0.6, 2: 0.1, 4: 0.2}
    d = paired_bootstrap_diff(a, b, iters=300)
    assert d["n"] == 2 and d["estimate"] == pytest.approx(-0.1)
    assert d["low"] == pytest.approx(-0.1) and d["high"] == pytest.approx(-0.1)
    assert d["ids_only_a"] == [3] and d["ids_only_b"] == [4]


def test_stratified_helpers():
    s = stratified_bootstrap_mean([[1.0, 1.0], [3.0, 3.0, 3.0], [NAN]], iters=100)
    assert s["estimate"] == pytest.approx(2.0) and s["low"] == pytest.approx(2.0) and s["n"] == 5
    d = stratified_paired_diff([({0: 1.0}, {0: 0.5}), ({0: 2.0, 1: 2.0}, {0: 1.0, 1: 1.0})], iters=100)
    assert d["estimate"] == pytest.approx(0.75)
