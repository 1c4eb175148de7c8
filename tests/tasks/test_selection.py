"""Doc selection (Random(42) shuffle, first min(500, n)) and the PRISM filter (docs/tasks.md)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets
import pytest

from lm_eval_diversity import loader as L
from lm_eval_diversity import selection as S
from lm_eval_diversity.catalogue import prompts as P


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


# ------------------------------------------------------------------------------------------------ PRISM


def _doc(prompt: str | None, balanced: bool | None = True) -> dict:
    return {"opening_prompt": prompt, "included_in_balanced_subset": balanced}


def test_prism_keeps_ordinary_prompt() -> None:
    assert P.prism_keep(_doc("  Is it ever right to lie?  "))


@pytest.mark.parametrize("balanced", [False, None])
def test_prism_drops_non_balanced(balanced: bool | None) -> None:
    assert not P.prism_keep(_doc("Is it ever right to lie?", balanced))


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t", None])
def test_prism_drops_empty(prompt: str | None) -> None:
    assert not P.prism_keep(_doc(prompt))


@pytest.mark.parametrize(
    "prompt", ["hello", "Hello!", "HI.", "hey", "Hey!!", "hola", "  hi?  ", "Hello,", "hi!?.", "Hola!"]
)
def test_prism_drops_greetings(prompt: str) -> None:
    assert not P.prism_keep(_doc(prompt))


@pytest.mark.parametrize("prompt", ["hello there", "hi, how are you?", "hey you", "hellooo", "hi :)"])
def test_prism_keeps_greeting_like_prompts(prompt: str) -> None:
    assert P.prism_keep(_doc(prompt))


def test_prism_non_ascii_threshold() -> None:
    # exactly 20% non-ASCII is kept, more is dropped (code point > 127)
    assert P.prism_keep(_doc("abcdéfghîj"))  # 2 / 10
    assert not P.prism_keep(_doc("abcdéfghîî"))  # 3 / 10
    assert not P.prism_keep(_doc("死刑制度について教えてください"))
    assert P.prism_keep(_doc("¿Qué opinas sobre la pena de muerte?"))
    # the ratio is over the stripped prompt
    assert not P.prism_keep(_doc("    ééé ab     "))


def test_prism_filter_then_select_on_demo_file(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = L.read_jsonl(L.DEMO_DATA_DIR / "prism" / "train.jsonl")
    kept = P.filter_prism(raw)
    assert kept["conversation_id"] == ["c0", "c3", "c4", "c8", "c10"]
    out = P.process_docs_prism(raw)
    # split_index indexes the filtered split
    assert out["split_index"] == _reference_order(list(range(5)))
    assert out["conversation_id"] == [kept["conversation_id"][i] for i in out["split_index"]]
