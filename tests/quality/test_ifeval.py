"""IFEval verifiers: lm-eval's official checkers offline, and the reference's compat verifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lm_eval_diversity.quality import grade_task
from lm_eval_diversity.quality.ifeval import ensure_punkt_data, grade_ifeval, ifeval_details

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def doc(ids: list[str], kwargs: list[dict[str, Any]], prompt: str = "Write something.") -> dict[str, Any]:
    return {"key": 1, "prompt": prompt, "instruction_id_list": ids, "kwargs": kwargs}


LONG = " ".join(["word"] * 60) + "."
CASES = [
    # (doc, response, official strict pass, compat pass)
    (doc(["punctuation:no_comma"], [{}]), "Hello world. No commas here.", True, True),
    (doc(["punctuation:no_comma"], [{}]), "Hello, world.", False, False),
    (
        doc(["detectable_format:number_highlighted_sections"], [{"num_highlights": 2}]),
        "*a* and *b*",
        True,
        True,
    ),
    (
        doc(["detectable_format:number_highlighted_sections"], [{"num_highlights": 2}]),
        "only *a*",
        False,
        False,
    ),
    # "less than" passes in compat whatever the length
    (
        doc(["length_constraints:number_words"], [{"relation": "less than", "num_words": 10}]),
        LONG,
        False,
        True,
    ),
    (doc(["length_constraints:number_words"], [{"relation": "at least", "num_words": 10}]), LONG, True, True),
    (
        doc(["length_constraints:number_words"], [{"relation": "at least", "num_words": 100}]),
        LONG,
        False,
        False,
    ),
    # paragraph counts always pass in compat; the official checker splits on ***
    (doc(["length_constraints:number_paragraphs"], [{"num_paragraphs": 2}]), "One.\n***\nTwo.", True, True),
    (doc(["length_constraints:number_paragraphs"], [{"num_paragraphs": 3}]), "One.\n***\nTwo.", False, True),
    (
        doc(["startend:end_checker"], [{"end_phrase": "Any other questions?"}]),
        "Done. Any other questions?",
        True,
        True,
    ),
    (doc(["startend:end_checker"], [{"end_phrase": "Any other questions?"}]), "Done.", False, False),
    (doc(["change_case:english_lowercase"], [{}]), "all lower case here", True, True),
    (doc(["change_case:english_lowercase"], [{}]), "Not lower", False, False),
    (doc(["detectable_format:title"], [{}]), "<<My Title>>\nText", True, True),
    (doc(["detectable_format:title"], [{}]), "My Title\nText", False, False),
    # non-English language requests pass in compat
    (
        doc(["language:response_language"], [{"language": "kn"}]),
        "This is clearly an English sentence about the weather today.",
        False,
        True,
    ),
    # ids unknown to lm-eval pass in compat, fail in official
    (doc(["made_up:instruction"], [{}]), "anything", False, True),
    (doc(["keywords:existence"], [{"keywords": ["cat", "dog"]}]), "A Cat and a dog.", True, True),
    (doc(["keywords:forbidden_words"], [{"forbidden_words": ["cat"]}]), "A cat.", False, False),
    (doc(["punctuation:no_comma", "change_case:english_lowercase"], [{}, {}]), "fine, ok", False, False),
]


@pytest.mark.parametrize(("d", "response", "official", "compat"), CASES)
def test_hand_written_cases(d: dict[str, Any], response: str, official: bool, compat: bool) -> None:
    assert grade_ifeval(d, [response], "official")[0].correct is official
    assert grade_ifeval(d, [response], "compat")[0].correct is compat


def test_cot_is_stripped_and_empty_fails() -> None:
    d = doc(["punctuation:no_comma"], [{}])
    assert grade_ifeval(d, ["<think>a, b, c</think>No commas"], "official")[0].correct
    assert grade_ifeval(d, ["<think>a, b, c</think>No commas"], "compat")[0].correct
    v = grade_ifeval(d, ["", "<think>only thought</think>"], "official")
    assert [x.correct for x in v] == [False, False]
    assert v[0].reason == "failed:punctuation:no_comma" and v[0].answer is None
    # compat: the reference checks "" like any response, and "" has no comma
    # (ifeval_constraints.py:255-258 of the reference)
    assert [x.correct for x in grade_ifeval(d, ["", "<think>only thought</think>"], "compat")] == [True, True]


def test_loose_and_details() -> None:
    d = doc(["startend:quotation"], [{}])
    resp = 'Sure, here it is:\n"A quoted answer."'
    det = ifeval_details(d, resp, "official")
    assert det["strict_prompt"] is False and det["loose_prompt"] is True
    assert det["strict_instructions"] == [False] and det["loose_instructions"] == [True]
    d2 = doc(["punctuation:no_comma", "detectable_format:title"], [{}, {}])
    det = ifeval_details(d2, "<<T>> a, b", "compat")
    assert det["strict_instructions"] == [False, True] and det["strict_fraction"] == 0.5
    assert det["loose_fraction"] == 0.5


def test_none_kwargs_like_datasets_3x() -> None:
    # datasets 3.x fills every absent key with None; the official checkers must not see them
    kw = {"num_highlights": 2, "relation": None, "num_words": None, "keywords": None, "language": None}
    d = doc(["detectable_format:number_highlighted_sections"], [kw])
    assert grade_ifeval(d, ["*a* and *b*"], "official")[0].correct
    assert grade_ifeval(d, ["*a* and *b*"], "compat")[0].correct
    assert not grade_ifeval(d, ["*a*"], "official")[0].correct


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="ifeval mode"):
        grade_ifeval(doc([], []), ["x"], "lenient")  # type: ignore[arg-type]


@pytest.mark.slow  # a fresh interpreter importing lm-eval
def test_punkt_offline_in_fresh_process(tmp_path: Path) -> None:
    """A fresh cache dir: the data is generated, nltk.download is never called, sent_tokenize works."""
    code = (
        "import nltk, unittest.mock as um\n"
        "with um.patch('nltk.download', side_effect=AssertionError('download called')):\n"
        "    from lm_eval_diversity.quality.ifeval import grade_ifeval, ensure_punkt_data\n"
        "    d = {'key': 1, 'prompt': 'p', 'instruction_id_list': ['length_constraints:number_sentences'],\n"
        "         'kwargs': [{'relation': 'at least', 'num_sentences': 3}]}\n"
        "    t = 'Mr. Smith went to Washington. He arrived at 3 p.m. on Jan. 5. It was cold!'\n"
        "    assert grade_ifeval(d, [t])[0].correct\n"
        "    assert not grade_ifeval(d, ['Mr. Smith went to Washington.'])[0].correct\n"
        "    s = nltk.sent_tokenize(t)\n"
        "    assert len(s) == 3, s\n"
        "    print(ensure_punkt_data())\n"
    )
    env = dict(os.environ, LM_EVAL_DIVERSITY_NLTK_DATA=str(tmp_path / "nd"), HF_HUB_OFFLINE="1")
    env.pop("NLTK_DATA", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "nd" / "tokenizers" / "punkt_tab" / "english" / "ortho_context.tab").is_file()
    assert "Downloaded punkt_tab" not in r.stdout


def test_ensure_punkt_data_idempotent() -> None:
    import nltk

    root = ensure_punkt_data()
    assert ensure_punkt_data() == root
    assert nltk.data.path.count(str(root)) == 1


def test_real_data_both_modes() -> None:
    path = DATA / "ifeval" / "train.jsonl"
    if not path.exists():
        pytest.skip("shared data absent")
    docs = [json.loads(line) for line in path.open(encoding="utf-8")]
    assert len(docs) == 541
    resp = "Hello world. This is a short answer with a comma, and nothing else."
    for mode in ("official", "compat"):
        res = grade_task("diversity_ifeval", docs, [[resp, ""]] * len(docs), ifeval_mode=mode)
        if mode == "official":
            assert all(not r[1].correct for r in res)  # empty output
        n_ok = sum(r[0].correct for r in res)
        assert 0 < n_ok < len(docs)
    # the compat verifier is more lenient than the official one on the same response
    off = sum(r[0].correct for r in grade_task("ifeval", docs, [[resp]] * len(docs)))
    com = sum(r[0].correct for r in grade_task("ifeval", docs, [[resp]] * len(docs), ifeval_mode="compat"))
    assert com > off
