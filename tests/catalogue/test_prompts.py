"""The doc filters of the task records (catalogue/prompts.py): the PRISM filter, then the selection (docs/tasks.md)."""

from __future__ import annotations

import random

import pytest

from lm_eval_diversity import loader as L
from lm_eval_diversity.catalogue import prompts as P


def _reference_order(items: list, n_max: int = 500) -> list:
    """Independent re-derivation: lighteval shuffles the doc list itself with Random(42), then keeps n_max."""
    items = list(items)
    random.Random(42).shuffle(items)
    return items[:n_max]


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


def test_prism_filter_then_select_on_demo_file() -> None:
    raw = L.read_jsonl(L.DEMO_DATA_DIR / "prism" / "train.jsonl")
    kept = P.filter_prism(raw)
    assert kept["conversation_id"] == ["c0", "c3", "c4", "c8", "c10"]
    out = P.process_docs_prism(raw)
    # split_index indexes the filtered split
    assert out["split_index"] == _reference_order(list(range(5)))
    assert out["conversation_id"] == [kept["conversation_id"][i] for i in out["split_index"]]
