"""The model-based beyond-paper metrics through ``score_groups``/``score_task``: semantic clusters with a fake NLI
model whose entailments are given, code embeddings with MiniLM as the code model (docs/metrics.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import FakeNLI

from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups, score_task
from lm_eval_diversity.settings import DiversitySettings

SEMANTIC = ("semantic_clusters", "semantic_clusters_norm", "semantic_entropy")
CODE = ("code_sbert", "code_vendi")


def entails_from(pairs: set[tuple[str, str]]) -> FakeNLI:
    """A fake NLI model: premise => hypothesis exactly for the given (premise, hypothesis) pairs."""
    return FakeNLI(fn=lambda p, h: 1.0 if (p, h) in pairs else -1.0)


# a <=> b both ways; c => d one way only (not equivalent)
ENTAILS = {("a", "b"), ("b", "a"), ("c", "d")}


def entropy(*sizes: int) -> float:
    k = sum(sizes)
    return -sum(n / k * math.log(n / k) for n in sizes)


def test_semantic_clusters_by_hand_one_batched_call():
    nli = entails_from(ENTAILS)
    groups = [
        PromptGroup(0, ["a", "b", "c", "d"]),  # {a, b}, {c}, {d}
        PromptGroup(1, ["x", "x", " x\n"]),  # identical after stripping: one cluster, no model call
        PromptGroup(2, ["only"]),  # K = 1: undefined
        PromptGroup(3, ["", "  ", "a"]),  # the two empty outputs are one cluster, "a" another
        PromptGroup(4, ["b", "a"]),  # the pair (a, b) is already scored for prompt 0
    ]
    scores = score_groups(groups, DiversitySettings(metrics=SEMANTIC), MetricModels(nli=nli))
    rows = scores.per_prompt
    assert [r["semantic_clusters"] for r in rows[:2]] == [3.0, 1.0]
    assert rows[0]["semantic_clusters_norm"] == pytest.approx(3 / 4)
    assert rows[0]["semantic_entropy"] == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(4))
    assert rows[1]["semantic_clusters_norm"] == pytest.approx(1 / 3)
    assert rows[1]["semantic_entropy"] == 0.0
    assert all(math.isnan(rows[2][m]) for m in SEMANTIC)
    assert rows[3]["semantic_clusters"] == 2.0
    assert rows[3]["semantic_entropy"] == pytest.approx(entropy(2, 1))
    assert (rows[4]["semantic_clusters"], rows[4]["semantic_entropy"]) == (1.0, 0.0)
    # one model call: the 4 distinct texts of prompt 0 give 6 unordered pairs, both directions; nothing else new
    assert len(nli.calls) == 1
    assert len(nli.calls[0]) == 12 == len(set(nli.calls[0]))
    assert scores.metrics["semantic_clusters"]["per_input_mean"] == pytest.approx((3 + 1 + 2 + 1) / 4)
    assert math.isnan(scores.metrics["semantic_clusters"]["overall"])  # per-input only


def test_semantic_rule_setting_greedy_vs_closure():
    # a ~ b, b ~ c, not a ~ c: greedy (a, b, c) gives {a, b}, {c}; the transitive closure one cluster
    nli = entails_from({("a", "b"), ("b", "a"), ("b", "c"), ("c", "b")})
    groups = [PromptGroup(0, ["a", "b", "c"])]
    greedy = score_groups(groups, DiversitySettings(metrics=SEMANTIC), MetricModels(nli=nli)).per_prompt[0]
    closure = score_groups(
        groups, DiversitySettings(metrics=SEMANTIC, semantic_rule="closure"), MetricModels(nli=nli)
    ).per_prompt[0]
    assert greedy["semantic_clusters"] == 2.0 and greedy["semantic_entropy"] == pytest.approx(entropy(2, 1))
    assert closure["semantic_clusters"] == 1.0 and closure["semantic_entropy"] == 0.0
    assert DiversitySettings(semantic_rule="closure").to_dict()["semantic_rule"] == "closure"
    with pytest.raises(ValueError, match="semantic_rule must be one of"):
        DiversitySettings(semantic_rule="transitive")


def test_semantic_clusters_without_the_nli_model_is_a_clear_error():
    with pytest.raises(ValueError, match=r"semantic_clusters requested but no nli_model model was passed"):
        score_groups([PromptGroup(0, ["a", "b"])], DiversitySettings(metrics=("semantic_clusters",)), MetricModels())


def by_hand(model, codes: list[str]) -> tuple[float, float]:
    """1 - mean pairwise cosine, and exp(entropy) of the eigenvalues of G/m, from the model's own encode."""
    e = np.asarray(model.encode(codes, normalize_embeddings=True), dtype=np.float64)
    g = e @ e.T
    m = len(codes)
    sbert = 1 - (g.sum() - np.trace(g)) / (m * (m - 1))
    lam = np.clip(np.linalg.eigvalsh(g / m), 1e-12, None)
    return float(sbert), float(math.exp(-(lam * np.log(lam)).sum()))


FENCED = "Here it is:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
BARE = "def mul(a, b):\n    return a * b"
OTHER = "```\nimport os\nprint(os.getcwd())\n```"
SAME_1 = "Sure.\n```python\nx = 1\n```"
SAME_2 = "```\nx = 1\n```\nThat sets x."


def test_code_embeddings_with_minilm_all_and_correct(minilm):
    groups = [
        PromptGroup(0, [FENCED, BARE, OTHER, "```python\n```"]),  # the 4th has empty code: dropped
        PromptGroup(1, [SAME_1, SAME_2, BARE]),  # the first two are the same code "x = 1"
        PromptGroup(2, [BARE, ""]),  # one non-empty code: undefined
    ]
    correct = [[True, True, False, True], [True, True, False], [True, True]]
    settings = DiversitySettings(metrics=CODE, code_model="sentence-transformers/all-MiniLM-L6-v2")
    scores = score_groups(groups, settings, MetricModels(code=minilm), correct=correct, task_name="diversity_humaneval")
    rows = scores.per_prompt
    codes_0 = ["def add(a, b):\n    return a + b", BARE, "import os\nprint(os.getcwd())"]
    sbert_0, vendi_0 = by_hand(minilm, codes_0)
    assert rows[0]["code_sbert"] == pytest.approx(sbert_0, abs=1e-5)
    assert rows[0]["code_vendi"] == pytest.approx(vendi_0, abs=1e-5)
    assert rows[0]["code_sbert_all"] == pytest.approx(sbert_0, abs=1e-5)
    sbert_c, vendi_c = by_hand(minilm, codes_0[:2])  # correct: #0, #1 and #3 (empty code, dropped)
    assert rows[0]["code_sbert_correct"] == pytest.approx(sbert_c, abs=1e-5)
    assert rows[0]["code_vendi_correct"] == pytest.approx(vendi_c, abs=1e-5)
    # the two correct outputs of prompt 1 have the same code: no diversity among the correct ones
    assert rows[1]["code_sbert_correct"] == pytest.approx(0.0, abs=1e-6)
    assert rows[1]["code_vendi_correct"] == pytest.approx(1.0, abs=1e-5)
    assert 0 < rows[1]["code_sbert"] < 2
    assert all(math.isnan(rows[2][m]) for m in (*CODE, "code_sbert_all", "code_sbert_correct"))
    assert rows[2]["computable"] == 1.0  # two correct outputs; only one has code


def test_code_metrics_only_on_code_tasks():
    """On a task that is not a code task the code metrics are not computed (no code model needed)."""
    settings = DiversitySettings(metrics=("ead", "code_sbert"))
    scores = score_task("diversity_alpaca", [PromptGroup(0, ["one two", "three four"])], settings, MetricModels())
    assert "code_sbert" not in scores.metrics and "code_sbert" not in scores.per_prompt[0]
    assert scores.metrics["ead"]["per_input_mean"] > 0
