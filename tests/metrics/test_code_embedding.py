"""Code-embedding diversity (code_sbert, code_vendi): hand vectors, the empty-code rule, masks, and MiniLM offline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lm_eval_diversity.metrics.code_embedding import TaskCode, code_embedding_metrics, task_code_embedding_metrics
from lm_eval_diversity.models import embed_texts


def test_task_code_texts_unique_non_empty():
    outputs = [
        ["```python\ndef f():\n    return 1\n```", "def f():\n    return 1", "```python\n```"],
        ["def g(): pass", "", "def f():\n    return 1"],
    ]
    task = TaskCode.from_outputs(outputs)
    assert task.codes == [
        ["def f():\n    return 1", "def f():\n    return 1", ""],
        ["def g(): pass", "", "def f():\n    return 1"],
    ]
    assert task.texts == ["def f():\n    return 1", "def g(): pass"]
    assert task.index == {"def f():\n    return 1": 0, "def g(): pass": 1}


def test_hand_vectors():
    # hand-computed vectors: I3 -> SBERT 1, Vendi 3; {e1, e1, e3} -> SBERT 2/3, Vendi 1.889882
    index = {"a": 0, "b": 1, "c": 2}
    eye = np.eye(3)
    got = code_embedding_metrics(["a", "b", "c"], eye, index)
    assert got["code_sbert"] == pytest.approx(1.0)
    assert got["code_vendi"] == pytest.approx(3.0)
    got = code_embedding_metrics(["a", "a", "c"], eye, index)
    assert got["code_sbert"] == pytest.approx(2 / 3)
    assert got["code_vendi"] == pytest.approx(1.889882, abs=1e-6)


def test_empty_code_dropped_mask_and_nan():
    index = {"a": 0, "b": 1}
    emb = np.array([[1.0, 0.0], [0.0, 1.0]])
    # the empty output is not a third point: two orthogonal codes -> SBERT 1, Vendi 2
    got = code_embedding_metrics(["a", "", "b"], emb, index)
    assert got == pytest.approx({"code_sbert": 1.0, "code_vendi": 2.0})
    masked = code_embedding_metrics(["a", "", "b"], emb, index, mask=[True, True, False])
    assert all(math.isnan(v) for v in masked.values())  # one non-empty code left
    with pytest.raises(ValueError, match="mask of length 1"):
        code_embedding_metrics(["a", "b"], emb, index, mask=[True])


def test_task_level_checks_alignment():
    task = TaskCode.from_outputs([["a = 1", "b = 2"], ["a = 1"]])
    emb = np.array([[1.0, 0.0], [0.6, 0.8]])
    got = task_code_embedding_metrics(task, emb, masks=[None, [True]])
    assert got[0]["code_sbert"] == pytest.approx(1 - 0.6)
    assert math.isnan(got[1]["code_sbert"])
    with pytest.raises(ValueError, match="1 code embeddings for 2 unique"):
        task_code_embedding_metrics(task, emb[:1])
    with pytest.raises(ValueError, match="1 masks for 2 prompts"):
        task_code_embedding_metrics(task, emb, masks=[None])


def test_minilm_code_embeddings(minilm):
    same = "def add(a, b):\n    return a + b"
    outputs = [
        [f"```python\n{same}\n```", same, same],
        [same, "import re\n\ndef count_vowels(s):\n    return len(re.findall('[aeiou]', s))", "print('hello world')"],
    ]
    task = TaskCode.from_outputs(outputs)
    emb = embed_texts(minilm, task.texts)
    assert emb.shape[0] == 3
    identical, varied = task_code_embedding_metrics(task, emb)
    assert identical["code_sbert"] == pytest.approx(0.0, abs=1e-6)
    assert identical["code_vendi"] == pytest.approx(1.0, abs=1e-4)
    assert 0.2 < varied["code_sbert"] < 1.5
    assert 1.5 < varied["code_vendi"] <= 3.0
