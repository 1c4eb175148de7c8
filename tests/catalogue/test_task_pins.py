"""Each catalogued task's facts written out by hand from the protocol (docs/tasks.md): dataset, stops, token limit,
category, whether it is graded, and its exact prompt and target on one doc. A new task is pinned here
(docs/extending.md); every other test reads the tasks from the catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lm_eval_diversity.catalogue.tasks import get_task, task_names


@dataclass(frozen=True)
class Pin:
    dataset: tuple[str | None, str | None, str]  # HF path, config, split
    stops: list[str]
    max_gen_toks: int
    category: str
    doc: dict
    prompt: str
    target: str
    graded: bool = False
    verifiable: bool = False  # the paper's six (div_verifiable)
    also: list[tuple[dict, str]] = field(default_factory=list)  # more (doc, prompt) pairs


_ALPACA_IN = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
)
_ALPACA_NO = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
)
_MATH_DOC = {"problem": "Solve $x+1=3$.", "level": "Level 1", "type": "Algebra", "solution": "$x=\\boxed{2}$."}

PINS = {
    "tldr": Pin(
        dataset=("UCL-DARK/openai-tldr-filtered", None, "test"), stops=["\n\n"], max_gen_toks=32768,
        category="summarization",
        doc={"subreddit": "cooking", "title": "Dense bread", "post": "My loaf is heavy.\nWhy?", "summary": "Dense."},
        prompt="SUBREDDIT: cooking\nTITLE: Dense bread\nPOST: My loaf is heavy.\nWhy?\nTL;DR:", target=" Dense.",
    ),
    "cnn_dailymail": Pin(
        dataset=("abisee/cnn_dailymail", "3.0.0", "test"), stops=["\n\n"], max_gen_toks=32768,
        category="summarization", doc={"article": "A bridge opened.", "highlights": "Bridge opens .", "id": "x"},
        prompt="ARTICLE: A bridge opened.\nTL;DR:", target=" Bridge opens .",
    ),
    "xsum": Pin(
        dataset=("EdinburghNLP/xsum", None, "test"), stops=["\n"], max_gen_toks=32768, category="summarization",
        doc={"document": "Line one.\nLine two.", "summary": "Two lines.", "id": "1"},
        prompt="ARTICLE: Line one.\nLine two.\nTL;DR:", target=" Two lines.",
    ),
    "humaneval": Pin(
        dataset=("openai/openai_humaneval", "openai_humaneval", "test"),
        stops=["\nclass ", "\ndef ", "\n#", "\nif __name__"], max_gen_toks=32768, category="code", graded=True,
        verifiable=True,
        doc={"task_id": "HumanEval/0", "prompt": '\ndef f(x: int) -> int:\n    """ Double x.\n    """\n',
             "canonical_solution": "    return 2 * x\n", "test": "", "entry_point": "f"},
        prompt='\ndef f(x: int) -> int:\n    """ Double x.\n    """\n', target="    return 2 * x\n",
    ),
    "mbpp": Pin(
        dataset=("google-research-datasets/mbpp", "full", "test"), stops=["\nclass ", "\n#", "\nif __name__"],
        max_gen_toks=32768, category="code", graded=True, verifiable=True,
        doc={"task_id": 11, "text": "Write a function to add two numbers.",
             "code": "def add(a, b):\r\n    return a + b", "test_list": ["assert add(1, 2) == 3"],
             "test_setup_code": "", "challenge_test_list": []},
        prompt='"""\nWrite a function to add two numbers.\n"""\n', target="def add(a, b):\r\n    return a + b",
    ),
    "cruxeval": Pin(
        dataset=("cruxeval-org/cruxeval", None, "test"), stops=["\nGiven", "\n\nGiven"], max_gen_toks=2048,
        category="code", graded=True,
        doc={"code": "def f(s):\n    return s[::-1]", "input": "'ab'", "output": "'ba'", "id": "sample_0"},
        prompt="Given the following Python function:\n\n```python\ndef f(s):\n    return s[::-1]\n```\n\n"
        "What is the output of `f('ab')`?\n\nAnswer:",
        target=" 'ba'",
    ),
    "gsm8k": Pin(
        dataset=("openai/gsm8k", "main", "test"), stops=["\nQuestion:", "\n\nQuestion"], max_gen_toks=32768,
        category="reasoning", graded=True, verifiable=True,
        doc={"question": "What is 2 + 3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"},
        prompt="Question: What is 2 + 3?\n\nAnswer:", target=" 2 + 3 = <<2+3=5>>5\n#### 5",
    ),
    "math_algebra": Pin(
        dataset=("EleutherAI/hendrycks_math", "algebra", "test"), stops=["\nProblem:", "\n\nProblem"],
        max_gen_toks=32768, category="reasoning", graded=True, verifiable=True, doc=_MATH_DOC,
        prompt="Problem: Solve $x+1=3$.\n\nSolution:", target=" $x=\\boxed{2}$.",
    ),
    "math_geometry": Pin(
        dataset=("EleutherAI/hendrycks_math", "geometry", "test"), stops=["\nProblem:", "\n\nProblem"],
        max_gen_toks=32768, category="reasoning", graded=True, verifiable=True, doc=_MATH_DOC,
        prompt="Problem: Solve $x+1=3$.\n\nSolution:", target=" $x=\\boxed{2}$.",
    ),
    "truthfulqa": Pin(
        dataset=("truthfulqa/truthful_qa", "generation", "validation"), stops=["\nQ:", "\n\n"], max_gen_toks=512,
        category="reasoning", graded=True, doc={"question": "Do goldfish forget quickly?", "best_answer": "No"},
        prompt="Q: Do goldfish forget quickly?\nA:", target=" No",
    ),
    "alpaca": Pin(
        dataset=("tatsu-lab/alpaca", None, "train"), stops=["\n\n###", "\n\n##"], max_gen_toks=32768,
        category="instruction",
        doc={"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
        prompt=_ALPACA_IN + "### Instruction:\nTranslate to French.\n\n### Input:\nGood morning\n\n### Response:\n",
        target="Bonjour",
        also=[
            ({"instruction": "Name a flightless bird.", "input": "", "output": "Ostrich"},
             _ALPACA_NO + "### Instruction:\nName a flightless bird.\n\n### Response:\n"),
            ({"instruction": " Say hi ", "input": "x\n", "output": ""},  # fields are not stripped
             _ALPACA_IN + "### Instruction:\n Say hi \n\n### Input:\nx\n\n\n### Response:\n"),
        ],
    ),
    "ifeval": Pin(
        dataset=("google/IFEval", None, "train"), stops=[], max_gen_toks=32768, category="instruction", graded=True,
        verifiable=True,
        doc={"key": 1, "prompt": "Write a poem. Do not use commas.\n", "instruction_id_list": [], "kwargs": []},
        prompt="Write a poem. Do not use commas.\n", target="",
    ),
    "writingprompts": Pin(
        dataset=("euclaise/writingprompts", None, "test"), stops=[], max_gen_toks=32768, category="creative",
        doc={"prompt": "  [WP] The sun forgets to rise. \n", "story": "It was dark."},
        prompt="[WP] The sun forgets to rise.\n\n", target="It was dark.",  # stripped, tags kept, blank line
    ),
    "prism": Pin(
        dataset=("HannahRoseKirk/prism-alignment", "conversations", "train"), stops=[], max_gen_toks=32768,
        category="value_pluralism",
        doc={"opening_prompt": "\n  Is lying ever acceptable?  ", "included_in_balanced_subset": True},
        prompt="Is lying ever acceptable?", target="",
    ),
    "wildbench": Pin(
        dataset=("allenai/WildBench", "v2", "test"), stops=[], max_gen_toks=32768, category="value_pluralism",
        doc={"session_id": "s1", "checklist": ["Is it correct?", "Half-open handled?"], "conversation_input": [
            {"role": "user", "content": "  Write merge intervals.\n"},
            {"role": "assistant", "content": "Here it is."},
            {"role": "user", "content": "Now half-open."},
        ]},
        prompt="Write merge intervals.", target="Is it correct?; Half-open handled?",  # first turn only
    ),
}  # fmt: skip


def test_every_catalogued_task_is_pinned_here():
    assert sorted(PINS) == sorted(task_names())


@pytest.mark.parametrize("name", sorted(PINS))
def test_the_record_is_the_pinned_task(name: str):
    pin, record = PINS[name], get_task(name)
    spec = record.dataset
    assert (spec.hf_path, spec.hf_name, spec.split) == pin.dataset
    assert list(record.stops) == pin.stops
    assert record.max_gen_toks == pin.max_gen_toks
    assert record.category.key == pin.category
    assert (record.graded, record.verifiable) == (pin.graded, pin.verifiable)
    assert record.prompt(pin.doc) == pin.prompt
    assert record.target(pin.doc) == pin.target
    for doc, prompt in pin.also:
        assert record.prompt(doc) == prompt
