"""Math verifiers: compat (the reference grader) and math-verify modes, gold checks on the real test sets."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from helpers import gold_format

from lm_eval_diversity.catalogue.tasks import grade_task
from lm_eval_diversity.quality import math as qm
from lm_eval_diversity.quality.math import (
    compat_equal,
    compat_extract,
    compat_normalize,
    gold_answer,
    grade_math,
    grade_math_docs,
    last_boxed,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
GSM_DOC = {"question": "q", "answer": "Some work <<2+3=5>>5\n#### 1,234"}
MATH_DOC = {"problem": "p", "solution": "So $x = \\boxed{\\frac{1}{2}}$."}


def _load(rel: str) -> list[dict]:
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"shared data absent: {path}")
    return [json.loads(line) for line in path.open(encoding="utf-8")]


# ------------------------------------------------------------------ compat rules
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("blah 3 4\n#### 42 apples\nmore", "42 apples"),  # rule 1 first
        ("x \\boxed{7} and \\boxed{8}. The answer is 9", "7"),  # rule 2: first boxed
        ("\\boxed{\\frac{1}{2}}", "\\frac{1"),  # nested braces are cut at the first }
        ("The answer is -1,200.50 dollars, not 3", "-1,200.50"),  # rule 3
        # rule 3 takes one of "-" or "$" before the digits: "$-" does not match it
        # (math_answer_extraction.py:123-127 of the reference), so rule 4 takes the last number
        ("The answer is $-1,200.50 dollars, not 3", "3"),
        ("Answer: 17. Then 18", "17."),  # the reference's "\.?\d*" keeps the full stop; normalised to "17"
        ("we get 3 then 4.5 and x2 then -8 end", "-8"),  # rule 4: last standalone number
        ("no numbers at all, v2", None),  # rule 5
    ],
)
def test_compat_extract(text: str, expected: str | None) -> None:
    assert compat_extract(text) == expected


def test_compat_normalize_and_equal() -> None:
    assert compat_normalize(" $1,234.00 ") == "1234"
    assert compat_normalize("50%") == "50"
    assert compat_normalize("1234.567") == "1234.57"  # 'g' keeps 6 significant digits
    assert compat_normalize("\\frac{1") == "\\frac{1"
    assert compat_normalize(None) is None
    assert compat_equal("0.5", "0.5000001")
    assert not compat_equal("0.5", "0.6")
    assert not compat_equal(None, None)
    assert compat_equal("\\frac{1", "\\frac{1")  # the documented false positive of the reference


def test_compat_grading() -> None:
    assert gold_answer(gold_format("gsm8k"), GSM_DOC, "compat") == "1234"
    v = grade_math(
        gold_format("gsm8k"), GSM_DOC, ["<think>5</think>The answer is 1234.", "#### 1235", "", "none"], "compat"
    )
    assert [x.correct for x in v] == [True, False, False, False]
    assert v[1].answer == "1235" and v[2].reason == "unparseable" and v[3].answer is None
    # reference false positive: 1/3 == 1/2 because both are cut to "\frac{1"
    assert grade_math(gold_format("math_algebra"), MATH_DOC, ["\\boxed{\\frac{1}{3}}"], "compat")[0].correct


# ------------------------------------------------------------------ math-verify mode
def test_last_boxed_balanced() -> None:
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{a}{b^{2}}}") == "\\frac{a}{b^{2}}"
    assert last_boxed("\\fbox{3}") == "3"
    assert last_boxed("\\boxed 5$.") == "5"
    assert last_boxed("no box") is None
    assert gold_answer(gold_format("math_geometry"), MATH_DOC) == "\\frac{1}{2}"
    assert gold_answer(gold_format("diversity_gsm8k"), GSM_DOC) == "1234"


def test_math_mode_equivalences() -> None:
    outs = [
        "So the result is $\\boxed{\\dfrac{1}{2}}$",
        "The final answer is $0.5$.",
        "\\boxed{\\frac{2}{4}}",
        "\\boxed{\\frac{1}{3}}",
        "I don't know",
        "",
        "<think>\\boxed{1/2}</think>nothing here",
    ]
    v = grade_math(gold_format("math_algebra"), MATH_DOC, outs)
    assert [x.correct for x in v] == [True, True, True, False, False, False, False]
    assert v[0].answer == "1/2" and v[3].reason == "wrong"
    assert v[4].reason == "unparseable" and v[4].answer is None
    assert v[5].reason == "unparseable"
    g = grade_math(gold_format("gsm8k"), GSM_DOC, ["#### 1234", "The answer is 1,234.", "\\boxed{1234.0}", "#### 1235"])
    assert [x.correct for x in g] == [True, True, True, False]
    assert g[0].answer == "1234"


def test_unknown_mode_and_a_doc_without_its_gold_answer() -> None:
    with pytest.raises(ValueError, match="mode"):
        grade_math(gold_format("gsm8k"), GSM_DOC, ["1"], "fancy")  # type: ignore[arg-type]
    # the gold format names the doc key: a MATH-style grader on a GSM8K doc finds no "solution"
    with pytest.raises(ValueError, match="math_algebra doc: key 'solution' has no gold answer"):
        grade_math(gold_format("math_algebra"), GSM_DOC, ["1"], label="math_algebra")


PATHOLOGICAL = "The answer is $\\boxed{9^{9^{9^{9}}}}$"


def test_pathological_latex_times_out() -> None:
    v = grade_math(gold_format("math_algebra"), {"solution": "\\boxed{2}"}, [PATHOLOGICAL], timeout_s=3)
    assert v == [qm.Verdict(False, None, "timeout")]  # the limit ended it (the expression itself never finishes)
    # the pool recovers: the next grading works
    assert grade_math(gold_format("math_algebra"), {"solution": "\\boxed{2}"}, ["\\boxed{2}"])[0].correct


def test_timeout_from_a_thread() -> None:
    res: list = []
    th = threading.Thread(
        target=lambda: res.append(
            grade_math(
                gold_format("math_algebra"), {"solution": "\\boxed{2}"}, [PATHOLOGICAL, "\\boxed{2}"], timeout_s=3
            )
        )
    )
    th.start()
    th.join(60)
    assert not th.is_alive()
    assert [v.reason for v in res[0]] == ["timeout", ""]


def test_hard_kill_of_a_stuck_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    def stuck(*args: object) -> qm.Verdict:  # e.g. a C-level loop the signal alarm cannot interrupt
        while True:
            time.sleep(1)

    monkeypatch.setattr(qm, "_grade_one_inprocess", stuck)
    workers: list[qm._Worker] = []

    class Recorded(qm._Worker):
        def __init__(self) -> None:
            super().__init__()
            workers.append(self)

    monkeypatch.setattr(qm, "_Worker", Recorded)
    pool = qm._WorkerPool()  # fresh workers are forked with the patched function
    assert pool.grade("final_line", "1", "#### 1", hard_timeout=1.0) == qm.Verdict(False, None, "timeout")
    assert len(workers) == 1 and not workers[0].alive()  # the stuck worker was killed, not left running
    assert workers[0].proc.exitcode == -9  # by SIGKILL: no signal handler inside it could have ended it


def test_dispatch_bad_input() -> None:
    res = grade_task("diversity_gsm8k", [GSM_DOC], [["", "#### abc"]])
    assert [[v.correct for v in r] for r in res] == [[False, False]]
    assert res[0][0].reason == "unparseable"
    with pytest.raises(ValueError, match="gsm8k doc 1: key 'answer' has no gold answer"):  # refused, never scored 0
        grade_task("diversity_gsm8k", [GSM_DOC, {"answer": "no gold line"}], [["#### 1"], ["#### 3"]])
    res = grade_task("math_geometry", [MATH_DOC], [["#### 0.5", "}}}{{{\\frac"]], math_mode="compat")
    assert [v.correct for v in res[0]] == [False, False]


# ------------------------------------------------------------------ gold checks on real data
@pytest.mark.slow  # math-verify on every GSM8K gold answer
def test_gsm8k_gold_solutions_both_modes() -> None:
    docs = _load("gsm8k/test.jsonl")
    assert len(docs) == 1319
    outs = [[d["answer"]] for d in docs]
    counts = {}
    for mode in ("compat", "math"):
        res = grade_math_docs(gold_format("gsm8k"), docs, outs, mode, workers=2)
        counts[mode] = sum(r[0].correct for r in res)
        assert counts[mode] == 1319, mode
        # gold + 1 is wrong
        wrong = [[f"#### {int(gold_answer(gold_format('gsm8k'), d, 'compat')) + 1}"] for d in docs[:200]]
        assert not any(r[0].correct for r in grade_math_docs(gold_format("gsm8k"), docs[:200], wrong, mode, workers=2))
    print(f"\nGSM8K gold solutions correct: compat {counts['compat']}/1319, math {counts['math']}/1319")


@pytest.mark.slow  # a whole MATH subset through math-verify
@pytest.mark.parametrize("task", ["math_algebra", "math_geometry"])
def test_math_gold_solutions(task: str) -> None:
    docs = _load(f"math/{task.split('_')[1]}/test.jsonl")
    outs = [[d["solution"]] for d in docs]
    counts = {}
    for mode in ("compat", "math"):
        res = grade_math_docs(gold_format(task), docs, outs, mode, workers=2)
        counts[mode] = sum(r[0].correct for r in res)
    n = len(docs)
    print(f"\n{task} gold solutions correct: compat {counts['compat']}/{n}, math {counts['math']}/{n}")
    assert counts["math"] >= 0.99 * len(docs)
    # an obviously wrong answer: the gold plus one, boxed
    wrong = [[f"The answer is $\\boxed{{{gold_answer(gold_format(task), d)} + 1}}$"] for d in docs[:150]]
    res = grade_math_docs(gold_format(task), docs[:150], wrong, "math", workers=2)
    assert sum(r[0].correct for r in res) <= 2  # only degenerate golds (e.g. "\infty") may survive


def test_workers_exit_quietly_under_a_cli_sigterm_handler() -> None:
    """The score CLI turns SIGTERM into an exception; the forked grading workers must not inherit it, or every
    worker prints a traceback when the interpreter stops its daemon children at exit."""
    import subprocess
    import sys

    code = (
        "import signal\n"
        "def boom(signum, frame):\n"
        "    raise RuntimeError('inherited handler')\n"
        "signal.signal(signal.SIGTERM, boom)\n"
        "from lm_eval_diversity.quality.math import grade_math\n"
        "from lm_eval_diversity.quality.types import GoldFormat\n"
        "gold = GoldFormat('answer', 'final_line')\n"
        "v = grade_math(gold, {'answer': 'x\\n#### 4'}, ['#### 4', '#### 5'], 'math', workers=2)\n"
        "print([x.correct for x in v])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[True, False]"
    assert "Traceback" not in proc.stderr and "inherited handler" not in proc.stderr, proc.stderr
