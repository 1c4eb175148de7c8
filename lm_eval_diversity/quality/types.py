"""The one result type every verifier returns, per output."""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class GradingOptions:
    """The settings a grader may read (each grader reads the ones that concern it).

    ``math_mode``: "math" (math-verify) or "compat" (the reference's rule); ``ifeval_mode`` and ``code_mode``:
    "official" or "compat"; ``allow_code_execution`` mirrors lm-eval's ``--confirm_run_unsafe_code``;
    ``workers`` parallelises math (sympy subprocesses) and code grading.
    """

    math_mode: str = "math"
    ifeval_mode: str = "official"
    code_mode: str = "official"
    allow_code_execution: bool = False
    code_timeout_s: float = 10.0
    math_timeout_s: float = 10.0
    workers: int = 1
