"""Exact prompt and target strings of the catalogued tasks (docs/tasks.md), written out by hand."""

from __future__ import annotations

import pytest

from lm_eval_diversity.catalogue import prompts as P
from lm_eval_diversity.catalogue.tasks import get_task, task_records


def test_tldr() -> None:
    doc = {"subreddit": "cooking", "title": "Dense bread", "post": "My loaf is heavy.\nWhy?", "summary": "Dense."}
    assert P.prompt_tldr(doc) == "SUBREDDIT: cooking\nTITLE: Dense bread\nPOST: My loaf is heavy.\nWhy?\nTL;DR:"
    assert P.target_tldr(doc) == " Dense."


def test_cnn_dailymail() -> None:
    doc = {"article": "A bridge opened.", "highlights": "Bridge opens .", "id": "x"}
    assert P.prompt_cnn_dailymail(doc) == "ARTICLE: A bridge opened.\nTL;DR:"
    assert P.target_cnn_dailymail(doc) == " Bridge opens ."


def test_xsum() -> None:
    doc = {"document": "Line one.\nLine two.", "summary": "Two lines.", "id": "1"}
    assert P.prompt_xsum(doc) == "ARTICLE: Line one.\nLine two.\nTL;DR:"
    assert P.target_xsum(doc) == " Two lines."


def test_humaneval_prompt_is_raw() -> None:
    prompt = '\ndef f(x: int) -> int:\n    """ Double x.\n    """\n'
    doc = {
        "task_id": "HumanEval/0",
        "prompt": prompt,
        "canonical_solution": "    return 2 * x\n",
        "test": "",
        "entry_point": "f",
    }
    assert P.prompt_humaneval(doc) == '\ndef f(x: int) -> int:\n    """ Double x.\n    """\n'
    assert P.target_humaneval(doc) == "    return 2 * x\n"


def test_mbpp() -> None:
    doc = {
        "task_id": 11,
        "text": "Write a function to add two numbers.",
        "code": "def add(a, b):\r\n    return a + b",
        "test_list": ["assert add(1, 2) == 3"],
        "test_setup_code": "",
        "challenge_test_list": [],
    }
    assert P.prompt_mbpp(doc) == '"""\nWrite a function to add two numbers.\n"""\n'
    assert P.target_mbpp(doc) == "def add(a, b):\r\n    return a + b"


def test_cruxeval_template_with_backticks() -> None:
    doc = {"code": "def f(s):\n    return s[::-1]", "input": "'ab'", "output": "'ba'", "id": "sample_0"}
    expected = (
        "Given the following Python function:\n\n```python\ndef f(s):\n    return s[::-1]\n```\n\n"
        "What is the output of `f('ab')`?\n\nAnswer:"
    )
    assert P.prompt_cruxeval(doc) == expected
    assert P.target_cruxeval(doc) == " 'ba'"


def test_gsm8k() -> None:
    doc = {"question": "What is 2 + 3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"}
    assert P.prompt_gsm8k(doc) == "Question: What is 2 + 3?\n\nAnswer:"
    assert P.target_gsm8k(doc) == " 2 + 3 = <<2+3=5>>5\n#### 5"


@pytest.mark.parametrize("task", ["math_algebra", "math_geometry"])
def test_math(task: str) -> None:
    doc = {"problem": "Solve $x+1=3$.", "level": "Level 1", "type": "Algebra", "solution": "$x=\\boxed{2}$."}
    record = get_task(task)
    to_text, to_target = record.prompt, record.target
    assert to_text(doc) == "Problem: Solve $x+1=3$.\n\nSolution:"
    assert to_target(doc) == " $x=\\boxed{2}$."


def test_truthfulqa() -> None:
    doc = {"question": "Do goldfish forget quickly?", "best_answer": "No"}
    assert P.prompt_truthfulqa(doc) == "Q: Do goldfish forget quickly?\nA:"
    assert P.target_truthfulqa(doc) == " No"


def test_alpaca_with_input() -> None:
    doc = {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}
    expected = (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nTranslate to French.\n\n### Input:\nGood morning\n\n### Response:\n"
    )
    assert P.prompt_alpaca(doc) == expected
    assert P.target_alpaca(doc) == "Bonjour"


def test_alpaca_without_input() -> None:
    doc = {"instruction": "Name a flightless bird.", "input": "", "output": "Ostrich"}
    expected = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nName a flightless bird.\n\n### Response:\n"
    )
    assert P.prompt_alpaca(doc) == expected


def test_alpaca_fields_not_stripped() -> None:
    doc = {"instruction": " Say hi ", "input": "x\n", "output": ""}
    assert "### Instruction:\n Say hi \n\n### Input:\nx\n\n\n### Response:\n" in P.prompt_alpaca(doc)


def test_ifeval() -> None:
    doc = {"key": 1, "prompt": "Write a poem. Do not use commas.\n", "instruction_id_list": [], "kwargs": []}
    assert P.prompt_ifeval(doc) == "Write a poem. Do not use commas.\n"
    assert P.target_empty(doc) == ""


def test_writingprompts_strip_then_blank_line() -> None:
    doc = {"prompt": "  [WP] The sun forgets to rise. \n", "story": "It was dark."}
    assert P.prompt_writingprompts(doc) == "[WP] The sun forgets to rise.\n\n"
    assert P.target_writingprompts(doc) == "It was dark."


def test_prism_strip() -> None:
    doc = {"opening_prompt": "\n  Is lying ever acceptable?  ", "included_in_balanced_subset": True}
    assert P.prompt_prism(doc) == "Is lying ever acceptable?"
    assert P.target_empty(doc) == ""


def test_wildbench_first_turn_only() -> None:
    doc = {
        "session_id": "s1",
        "conversation_input": [
            {"role": "user", "content": "  Write merge intervals.\n"},
            {"role": "assistant", "content": "Here it is."},
            {"role": "user", "content": "Now half-open."},
        ],
        "checklist": ["Is it correct?", "Half-open handled?"],
    }
    assert P.prompt_wildbench(doc) == "Write merge intervals."
    assert P.target_wildbench(doc) == "Is it correct?; Half-open handled?"


PINNED = {
    "tldr", "cnn_dailymail", "xsum", "humaneval", "mbpp", "cruxeval", "gsm8k", "math_algebra", "math_geometry",
    "truthfulqa", "alpaca", "ifeval", "writingprompts", "prism", "wildbench",
}  # fmt: skip


def test_every_catalogued_task_has_its_strings_pinned_here() -> None:
    records = task_records()
    assert {r.name for r in records} == PINNED
    for r in records:  # the YAMLs reference these by dotted path: they live in lm_eval_diversity.catalogue.prompts
        assert getattr(P, r.prompt.__name__) is r.prompt and getattr(P, r.target.__name__) is r.target
