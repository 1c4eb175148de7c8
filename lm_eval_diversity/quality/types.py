"""The one result type every verifier returns, per output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from lm_eval_diversity.modes import CompatPath


@dataclass(frozen=True)
class Verdict:
    """Grade of one output.

    ``answer`` is the normalised extracted answer used for majority voting (None: unparseable / not applicable);
    ``reason`` says briefly why an output failed (``"timeout"``, ``"unparseable"``, ``"assertion"``, ...).
    """

    correct: bool
    answer: str | None = None
    reason: str = ""
    # IFEval only: (strict, loose) result of every instruction, in the doc's order
    instructions: tuple[tuple[bool, ...], tuple[bool, ...]] | None = None
    # math mode only: the answer as math-verify extracted it from the output (re-parses to the same value); used to
    # compare two outputs' answers with the grader's own equality
    answer_text: str | None = None
    # HumanEval / MBPP graded with ``behaviour=True``: the judge's behaviour signature (docs/sandbox.md), None when
    # the program did not load or the run was killed; programs with equal signatures are one functional class
    behaviour: str | None = None


@dataclass(frozen=True)
class GradingOptions:
    """The settings a grader may read (each grader reads the ones that concern it).

    ``math_mode``: "math" (math-verify) or "compat" (the reference's rule); ``ifeval_mode`` and ``code_mode``:
    "official" or "compat"; ``allow_code_execution`` mirrors lm-eval's ``--confirm_run_unsafe_code``;
    ``workers`` parallelises math (sympy subprocesses) and code grading; ``code_behaviour`` asks the code grader for
    behaviour signatures (functional classes, docs/sandbox.md); ``compat_path`` picks the reference's grading path in
    compat modes ("accuracy" or "subsets").
    """

    math_mode: str = "math"
    ifeval_mode: str = "official"
    code_mode: str = "official"
    allow_code_execution: bool = False
    code_timeout_s: float = 10.0
    math_timeout_s: float = 10.0
    workers: int = 1
    code_behaviour: bool = False  # code tasks: the judge also records each program's behaviour signature
    # compat modes only: which of the reference's two grading paths to reproduce (docs/metrics.md, "Graders"):
    # "accuracy" = its compute_*_quality.py scripts (acc, pass@k, maj@K, IFEval levels), "subsets" = its
    # quality_filtered_diversity.py (the correct subsets); the default graders have one rule for both
    compat_path: CompatPath = "subsets"


@dataclass(frozen=True)
class GoldFormat:
    """Where a doc holds its gold answer and how it is written (math grading, ``docs/metrics.md``).

    ``field``: the doc key holding the worked answer; ``style``: ``"final_line"`` (the answer after a ``####`` line,
    GSM8K's format; parsed as a number first) or ``"boxed"`` (the ``\\boxed{...}`` of a worked solution, MATH's
    format; parsed as LaTeX).
    """

    field: str
    style: Literal["final_line", "boxed"]


@dataclass(frozen=True)
class ProgramFormat:
    """How one output of a code task becomes a program with its tests (``docs/sandbox.md``).

    ``build(doc, output) -> Program``: the solution and the trusted tests of the default grading;
    ``build_compat(doc, output) -> str``: the reference's whole program (``code_mode compat``, exit status);
    ``required``: the doc keys a program needs and their types (a ``list`` must hold strings), checked for every doc
    before anything runs.
    """

    build: Callable[..., Any]
    build_compat: Callable[..., Any]
    required: tuple[tuple[str, type], ...]
