"""The judge/candidate channel: what crosses as plain data (types kept), what stays behind a handle, and how a
result that cannot cross fails.  One batch of small programs in the strongest available mode."""

from __future__ import annotations

import pytest

from lm_eval_diversity.quality.sandbox import Program, available_modes, run_programs

MODES = available_modes()

CASES: dict[str, tuple[str, str, bool, str]] = {
    # name: (solution, tests, expected pass, expected reason)
    "types_survive": (
        "def f():\n    return {(1, 'a'): {1, 2}, 'l': [b'\\x00', bytearray(b'z'), 1.5, None, True, 2**100, 1j],"
        " 'fs': frozenset({3})}",
        "r = f()\nassert r == {(1, 'a'): {1, 2}, 'l': [b'\\x00', bytearray(b'z'), 1.5, None, True, 2**100, 1j],"
        " 'fs': frozenset({3})}\nassert type(r[(1, 'a')]) is set and type(r['l'][1]) is bytearray\n"
        "assert type(list(r)[0]) is tuple",
        True,
        "",
    ),
    "nan_and_inf": (
        "def f():\n    return [float('nan'), float('inf'), -float('inf')]",
        "import math\nr = f()\nassert math.isnan(r[0]) and r[1] == math.inf and r[2] == -math.inf",
        True,
        "",
    ),
    "subclasses_become_plain": (
        "import collections\nP = collections.namedtuple('P', 'x y')\n"
        "def f():\n    return P(1, 2), collections.Counter('aab'), True",
        "p, c, b = f()\nassert p == (1, 2) and type(p) is tuple and c == {'a': 2, 'b': 1} and type(c) is dict",
        True,
        "",
    ),
    "objects_stay_behind_handles": (
        "class Node:\n    def __init__(self, v):\n        self.v, self.next = v, None\n"
        "def total(n):\n    return 0 if n is None else n.v + total(n.next)",
        "a = Node(1)\na.next = Node(2)\na.next.next = Node(3)\nassert total(a) == 6\nassert a.next.v == 2\n"
        "assert a == a and a != a.next",
        True,
        "",
    ),
    "exceptions_keep_their_builtin_type": (
        "def f(x):\n    raise ValueError('bad ' + str(x))",
        "try:\n    f(1)\nexcept ValueError as e:\n    assert 'bad 1' in str(e)\nelse:\n    raise AssertionError",
        True,
        "",
    ),
    "prompt_helpers_and_data_globals": (
        "import math\nLIMIT = 7\ndef helper(x):\n    return x * 2\ndef f(x):\n    return helper(x) + LIMIT",
        "assert f(1) == helper(1) + LIMIT == 9\nassert math.isclose(math.pi, 3.14159, rel_tol=1e-3)",
        True,
        "",
    ),
    "generator_cannot_cross": (
        "def f():\n    return (i for i in range(3))",
        "assert f() == [0, 1, 2]",
        False,
        "unencodable-result",
    ),
    "too_large_integer": ("def f():\n    return 10**5000", "assert f() > 0", False, "unencodable-result"),
    "wrong_answer": ("def f(x):\n    return x", "assert f(1) == 2", False, "assertion"),
}


@pytest.fixture(scope="module")
def results():
    if not MODES:
        pytest.skip("no isolating sandbox mode here (test_sandbox_hostile checks that execution is then refused)")
    names = list(CASES)
    res = run_programs([Program(CASES[n][0], CASES[n][1]) for n in names], timeout_s=10, mode=MODES[0])
    return dict(zip(names, res, strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_channel_case(name: str, results) -> None:
    res = results[name]
    _, _, passed, reason = CASES[name]
    assert (res.passed, res.reason) == (passed, reason), res
    if reason == "unencodable-result":
        assert "cannot cross" in res.detail or "too large" in res.detail


def test_exit_status_verdict_runs_tests_in_the_candidate() -> None:
    if not MODES:
        pytest.skip("no isolating sandbox mode here")
    ok, bad, early = run_programs(
        [Program("def f(x):\n    return x + 1", "assert f(1) == 2"),
         Program("def f(x):\n    return x", "assert f(1) == 2"), Program("exit(0)", "assert False")],
        verdict="exit-status", mode=MODES[0],
    )  # fmt: skip
    assert ok.passed and not bad.passed and bad.reason == "assertion"
    assert early.passed  # the reference's rule: exit status 0 passes, whatever ran
