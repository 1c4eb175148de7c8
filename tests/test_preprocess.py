"""CoT stripping (docs/metrics.md, first paragraph): expected values written by hand from the three rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lm_eval_diversity.preprocess import strip_cot, strip_cot_with_diagnostics


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # rule 1: paired block removed, tags included
        ("<think>let me see</think>The answer is 4.", "The answer is 4."),
        ("Intro <think>x</think> outro", "Intro  outro"),
        # several blocks, each removed
        ("<think>a</think>one<think>b</think> two <think>c</think>", "one two"),
        # a stray '<think>' inside a block: rule 1 removes "<think>a <think> b</think>", then the remaining
        # "rest</think>tail" has an orphan close tag and rule 2 removes "rest</think>"
        ("<think>a <think> b</think>rest</think>tail", "tail"),
        # rule 2: orphan close tag -> everything up to and including the first </think> goes
        ("I am thinking hard</think>\n  Final: 7", "Final: 7"),
        ("thought</think>answer</think>more", "answer</think>more"),
        # "…</think>answer <think>more": rule 1 stops (no </think> after <think>), rule 2 does not fire
        ("reasoning</think>answer <think>more", "reasoning</think>answer <think>more"),
        # truncated thought (no closing tag): the whole thought is kept
        ("<think>I never finish", "<think>I never finish"),
        # no tags at all: only stripped
        ("  \n plain text \t\n", "plain text"),
        # result empty after removal: kept as ""
        ("<think>only a thought</think>   \n", ""),
        ("", ""),
    ],
)
def test_strip_cot_rules(raw, expected):
    assert strip_cot(raw) == expected


def test_unclosed_think_is_flagged_and_kept():
    out = strip_cot_with_diagnostics("  <think>step 1, step 2 ")
    assert out.text == "<think>step 1, step 2"
    assert out.unclosed_think is True
    assert out.had_think is True


def test_orphan_close_then_unclosed_open_is_flagged():
    out = strip_cot_with_diagnostics("reasoning</think>answer <think>more")
    assert out.text == "reasoning</think>answer <think>more"
    assert out.unclosed_think is True


def test_closed_blocks_are_not_flagged():
    out = strip_cot_with_diagnostics("<think>a</think>b")
    assert out == type(out)(text="b", unclosed_think=False, had_think=True)
    plain = strip_cot_with_diagnostics("no tags")
    assert plain.unclosed_think is False and plain.had_think is False


def test_unclosed_thoughts_kept_and_flagged():
    out = [strip_cot_with_diagnostics(t) for t in ["<think>x</think>A", "<think>cut off", "B", "<think>also cut"]]
    assert [o.text for o in out] == ["A", "<think>cut off", "B", "<think>also cut"]
    assert [o.unclosed_think for o in out] == [False, True, False, True]


@given(st.text(alphabet=st.sampled_from(list("ab <>/thinkTHINK\n")), max_size=60))
def test_strip_cot_properties(text):
    out = strip_cot(text)
    # always stripped, never longer than the input
    assert out == out.strip()
    assert len(out) <= len(text)
    if "<think>" not in text and "</think>" not in text:
        assert out == text.strip()
    # no complete <think>...</think> block can survive
    start = out.find("<think>")
    assert start < 0 or out.find("</think>", start) < 0


@pytest.mark.parametrize(
    ("raw", "text", "unclosed"),
    [
        ("plan</think>  Answer ", "Answer", False),  # the thought the prompt opened ends at </think>
        # "<think>a <think> b </think>" goes first, then the orphan rule removes " c</think>"
        ("a <think> b </think> c</think>Answer", "Answer", False),
        ("ran out of tokens while thinking", "ran out of tokens while thinking", True),  # kept whole, counted
        ("", "", True),
    ],
)
def test_prompt_opened_thought(raw, text, unclosed):
    s = strip_cot_with_diagnostics(raw, prompt_opened_think=True)
    assert (s.text, s.unclosed_think) == (text, unclosed)
    # without knowing the prompt, a never-closed thought is invisible (the reference's view)
    if "</think>" not in raw:
        assert strip_cot_with_diagnostics(raw).unclosed_think is False
