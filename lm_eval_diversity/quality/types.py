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
    # math mode only: the answer as math-verify extracted it from the output (re-parses to the same value); used to
    # compare two outputs' answers with the grader's own equality
    answer_text: str | None = None
    # HumanEval / MBPP graded with ``behaviour=True``: the judge's behaviour signature (docs/sandbox.md), None when
    # the program did not load or the run was killed; programs with equal signatures are one functional class
    behaviour: str | None = None
