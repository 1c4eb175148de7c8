"""Code-embedding diversity (code_sbert, code_vendi) through the embeddings pass over the code model: hand vectors,
the empty-code rule, the correct subset, and MiniLM offline."""

from __future__ import annotations

import math

import pytest
from helpers import FakeSentenceModel

from lm_eval_diversity.passes import embedded_texts
from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups
from lm_eval_diversity.settings import DiversitySettings

CODE = DiversitySettings(metrics=("code_sbert", "code_vendi"), corpus_metrics=())
TASK = "diversity_humaneval"  # a code task: the code metrics are defined on it


def _rows(outputs, vectors, **kwargs):
    model = FakeSentenceModel(vectors)
    groups = [PromptGroup(i, outs) for i, outs in enumerate(outputs)]
    res = score_groups(groups, CODE, MetricModels(code=model), task_name=TASK, **kwargs)
    return res.per_prompt, model


def test_what_the_code_model_embeds_is_the_extracted_code():
    flat = ["```python\ndef f():\n    return 1\n```", "def f():\n    return 1", "```python\n```", "def g(): pass"]
    assert embedded_texts(flat, "code_model") == ["def f():\n    return 1", "def f():\n    return 1", None,
                                                 "def g(): pass"]  # fmt: skip
    assert embedded_texts(flat, "sbert_model") == flat  # any other model embeds the text itself


def test_hand_vectors_each_unique_code_embedded_once():
    # I3 -> SBERT 1, Vendi 3; {e1, e1, e3} -> SBERT 2/3, Vendi 1.889882 (hand-computed)
    vectors = {"a": (1, 0, 0), "b": (0, 1, 0), "c": (0, 0, 1)}
    rows, model = _rows([["a", "b", "c"], ["a", "```\na\n```", "c"]], vectors)
    assert rows[0]["code_sbert"] == pytest.approx(1.0) and rows[0]["code_vendi"] == pytest.approx(3.0)
    assert rows[1]["code_sbert"] == pytest.approx(2 / 3)
    assert rows[1]["code_vendi"] == pytest.approx(1.889882, abs=1e-6)
    assert sorted(t for call in model.calls for t in call) == ["a", "b", "c"]


def test_empty_code_is_dropped_not_a_point():
    vectors = {"a": (1, 0, 0), "b": (0, 1, 0)}
    rows, _ = _rows([["a", "", "b"], ["a", ""]], vectors)
    # the empty output is not a third point: two orthogonal codes -> SBERT 1, Vendi 2
    assert rows[0]["code_sbert"] == pytest.approx(1.0) and rows[0]["code_vendi"] == pytest.approx(2.0)
    assert math.isnan(rows[1]["code_sbert"])  # one non-empty code left: undefined


def test_correct_subset_variants():
    vectors = {"a": (1, 0, 0), "b": (0.6, 0.8, 0), "c": (0, 0, 1)}
    rows, _ = _rows([["a", "b", "c"]], vectors, correct=[[True, True, False]])
    assert rows[0]["code_sbert_all"] == pytest.approx(rows[0]["code_sbert"])
    assert rows[0]["code_sbert_correct"] == pytest.approx(1 - 0.6)  # a and b: cosine 0.6
    rows, _ = _rows([["a", "b", "c"]], vectors, correct=[[True, False, False]])
    assert math.isnan(rows[0]["code_sbert_correct"]) and math.isnan(rows[0]["code_vendi_correct"])


def test_minilm_code_embeddings(minilm):
    same = "def add(a, b):\n    return a + b"
    outputs = [
        [f"```python\n{same}\n```", same, same],
        [same, "import re\n\ndef count_vowels(s):\n    return len(re.findall('[aeiou]', s))", "print('hello world')"],
    ]
    groups = [PromptGroup(i, outs) for i, outs in enumerate(outputs)]
    identical, varied = score_groups(groups, CODE, MetricModels(code=minilm), task_name=TASK).per_prompt
    assert identical["code_sbert"] == pytest.approx(0.0, abs=1e-6)
    assert identical["code_vendi"] == pytest.approx(1.0, abs=1e-4)
    assert 0.2 < varied["code_sbert"] < 1.5
    assert 1.5 < varied["code_vendi"] <= 3.0
