"""When two outputs give the same final answer, by each task's own grader (``docs/metrics.md``, answer-level
diversity).

* gsm8k, math_algebra, math_geometry, ``math_mode="math"``: :func:`.math.answers_equal` on the texts math-verify
  extracted (``Verdict.answer_text``): each parsed as the grader parses a gold answer, equal when math-verify
  accepts each against the other. Equal canonical answers (``Verdict.answer``, sympy's printed form of the value)
  are one class without a comparison. A verdict without ``answer_text`` (not made by the math-mode grader) is
  accepted only when its answer is a plain number, which parses back as itself; otherwise a ValueError says so.
  ``math_mode="compat"``: the reference's ``compat_equal`` on ``Verdict.answer``.
* cruxeval: ``cruxeval_equal`` on the normalised predictions (``Verdict.answer``), in both directions.
* truthfulqa: undefined. Its grader extracts no answer: it matches the whole output against the reference answers
  by substring, and ``Verdict.answer`` is the matched reference or, for an unmatched output, the output itself, so
  no equality between two outputs exists (two paraphrases of one wrong answer would always differ).
* ifeval: undefined (no answer, only instruction checks). humaneval, mbpp: functional classes instead
  (``Verdict.behaviour`` with :func:`lm_eval_diversity.metrics.answers.functional_diversity`).

Classes follow the greedy rule of :func:`lm_eval_diversity.metrics.answers.answer_classes`; an output without an
extracted answer (``Verdict.answer`` None) has class None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.metrics.answers import answer_classes
from lm_eval_diversity.quality.types import Verdict

_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")  # a canonical answer that parses back as itself
ANSWER_TASKS: tuple[str, ...] = ("gsm8k", "math_algebra", "math_geometry", "cruxeval")
_UNDEFINED = {
    "truthfulqa": "its grader extracts no answer (whole outputs are matched to references by substring)",
    "ifeval": "it has no answer, only instruction checks",
    "humaneval": "code is compared by behaviour: use Verdict.behaviour with functional_diversity",
    "mbpp": "code is compared by behaviour: use Verdict.behaviour with functional_diversity",
}


def answer_equality(
    task: str, verdicts: Sequence[Verdict], *, math_mode: str = "math", timeout_s: float = 10.0
) -> Callable[[str, str], bool]:
    """The task's equality of two ``Verdict.answer`` strings of one prompt's ``verdicts`` (module docstring)."""
    short = short_name(task)
    if short in _UNDEFINED:
        raise ValueError(f"answer-level diversity is undefined for {short}: {_UNDEFINED[short]}")
    if short not in ANSWER_TASKS:
        raise ValueError(f"no answer equality for task {task!r}; defined for: {', '.join(ANSWER_TASKS)}")
    if short == "cruxeval":
        from lm_eval_diversity.quality.code import cruxeval_equal

        return lambda a, b: cruxeval_equal(a, b) and cruxeval_equal(b, a)
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
                f"{short} output {i}: answer {v.answer!r} has no answer_text; math-mode answer classes need the "
                "verdicts of the math grader in math mode (use math_mode='compat' for compat-mode verdicts)"
            )
        text.setdefault(v.answer, v.answer_text if v.answer_text is not None else v.answer)
    return lambda a, b: answers_equal(short, text.get(a, a), text.get(b, b), timeout_s=timeout_s)


def answer_classes_for_task(
    task: str, verdicts: Sequence[Verdict], *, math_mode: str = "math", timeout_s: float = 10.0
) -> list[int | None]:
    """Answer class of each output of one prompt (``verdicts`` from the task's grader, in output order), by the
    task's own equality; None for an output without an extracted answer. ``math_mode`` must be the mode the
    verdicts were graded in; ``timeout_s`` bounds each math-verify comparison. Raises ValueError naming the task
    where answer-level diversity is undefined (module docstring)."""
    equal = answer_equality(task, verdicts, math_mode=math_mode, timeout_s=timeout_s)
    return answer_classes([v.answer for v in verdicts], equal)
