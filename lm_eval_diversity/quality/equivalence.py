"""When two outputs of a math task give the same final answer, by the grader's own equality (``docs/metrics.md``,
answer-level diversity). Each grader says how its answers compare (``Grader.answer_equality``,
:mod:`lm_eval_diversity.quality.graders`); this module holds the math one.

``math_mode="math"``: :func:`.math.answers_equal` on the texts math-verify extracted (``Verdict.answer_text``): each
parsed as the grader parses a gold answer, equal when math-verify accepts each against the other. Equal canonical
answers (``Verdict.answer``, sympy's printed form of the value) are one class without a comparison. A verdict without
``answer_text`` (not made by the math-mode grader) is accepted only when its answer is a plain number, which parses
back as itself; otherwise a ValueError says so. ``math_mode="compat"``: the reference's ``compat_equal`` on
``Verdict.answer``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from lm_eval_diversity.quality.types import GoldFormat, Verdict

_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")  # a canonical answer that parses back as itself


def math_answer_equality(
    gold: GoldFormat,
    verdicts: Sequence[Verdict],
    *,
    math_mode: str = "math",
    timeout_s: float = 10.0,
    label: str = "math",
) -> Callable[[str, str], bool]:
    """Equality of two ``Verdict.answer`` strings of one prompt's ``verdicts`` of a task whose gold answers are
    written as ``gold`` (module docstring); ``label`` names the task in errors."""
    if math_mode == "compat":
        from lm_eval_diversity.quality.math import compat_equal

        return compat_equal
    if math_mode != "math":
        raise ValueError(f"unknown math mode {math_mode!r} (expected 'math' or 'compat')")
    from lm_eval_diversity.quality.math import answers_equal

    text: dict[str, str] = {}  # canonical answer -> the first extracted text with that value
    for i, v in enumerate(verdicts):
        if v.answer is None:
            continue
        if v.answer_text is None and not _PLAIN_NUMBER.fullmatch(v.answer):
            raise ValueError(
                f"{label} output {i}: answer {v.answer!r} has no answer_text; math-mode answer classes need the "
                "verdicts of the math grader in math mode (use math_mode='compat' for compat-mode verdicts)"
            )
        text.setdefault(v.answer, v.answer_text if v.answer_text is not None else v.answer)
    return lambda a, b: answers_equal(gold, text.get(a, a), text.get(b, b), timeout_s=timeout_s)
