"""Doc selection: Random(42) shuffle, first min(N, n), derived independently (docs/tasks.md)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets
import pytest

from lm_eval_diversity import loader as L
from lm_eval_diversity import selection as S


def _reference_order(items: list, n_max: int = 500) -> list:
    """Independent re-derivation: lighteval shuffles the doc list itself with Random(42), then keeps n_max."""
    items = list(items)
    random.Random(42).shuffle(items)
    return items[:n_max]


@pytest.mark.parametrize("n", [0, 1, 7, 479, 500, 501, 1319])
def test_selected_indices_match_shuffling_the_docs(n: int) -> None:
    names = [f"doc-{i}" for i in range(n)]
    expected = [int(s.split("-")[1]) for s in _reference_order(names)]
    got = S.selected_indices(n)
    assert got == expected
    assert len(got) == min(500, n)
    assert len(set(got)) == len(got)


def test_small_split_keeps_every_doc_shuffled() -> None:
    got = S.selected_indices(8)
    assert sorted(got) == list(range(8))
    assert got != list(range(8))  # Random(42) does move docs around


def test_select_docs_adds_split_index_and_keeps_rows() -> None:
    ds = datasets.Dataset.from_dict({"q": [f"question {i}" for i in range(20)]})
    out = S.select_docs(ds, max_n=5)
    expected = _reference_order(list(range(20)), 5)
    assert out["split_index"] == expected
    assert out["q"] == [f"question {i}" for i in expected]
    assert isinstance(out[0]["split_index"], int)


def test_select_docs_replaces_existing_split_index() -> None:
    ds = datasets.Dataset.from_dict({"q": ["a", "b", "c"], "split_index": [9, 9, 9]})
    out = S.select_docs(ds)
    assert sorted(out["split_index"]) == [0, 1, 2]


def test_docs_per_task_sets_n_for_a_block() -> None:
    assert S.max_docs() == 500
    ds = datasets.Dataset.from_dict({"q": list(range(10))})
    with S.docs_per_task(3):
        assert S.process_docs(ds)["split_index"] == _reference_order(list(range(10)), 3)
    assert S.max_docs() == 500  # restored after the block
    assert len(S.process_docs(ds)) == 10


def test_real_gsm8k_selection(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_data_dir / "gsm8k" / "test.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == 1319
    out = S.process_docs(L.read_jsonl(path))
    assert len(out) == 500
    # shuffle the questions themselves (not indices) and compare: same permutation
    expected_questions = _reference_order([r["question"] for r in rows])
    assert out["question"] == expected_questions
    assert out["split_index"] == _reference_order(list(range(1319)))
    assert [rows[i]["question"] for i in out["split_index"]] == out["question"]
