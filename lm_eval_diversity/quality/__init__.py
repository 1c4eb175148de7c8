"""Quality verifiers: one dispatcher over the per-task graders (reference_spec §5, §6).

``grade_task`` maps a short task name (a ``diversity_`` prefix is accepted) to its grader:

* gsm8k, math_algebra, math_geometry: :mod:`.math` (``math_mode``: "math" = math-verify, "compat" = §5.1);
  correct = answer equivalent to the gold answer;
* humaneval, mbpp: :mod:`.code` ``grade_code_task`` (runs code only with ``allow_code_execution=True``;
  ``code_mode``: "official" or "compat" = the reference's program and exit-status rule); correct = the tests pass;
* ifeval: :mod:`.ifeval` (``ifeval_mode``: "official" = lm-eval checkers, "compat" = §5.3); correct = strict
  prompt-level pass;
* truthfulqa: :mod:`.truthfulqa` (§5.4 substring rule; ``math_mode="compat"`` also switches it to the QFD
  script's rule, since the reference grades it next to math); correct = a reference answer matches;
* cruxeval: :mod:`.code` ``grade_cruxeval``; correct = the predicted output equals the gold one.

Every grader takes raw outputs (it strips CoT itself) and returns one :class:`Verdict` per output; bad input
(unparseable answers, empty outputs, non-Python code) gives failed verdicts, never an exception. Graders are
imported lazily so that importing this package pulls in neither sympy nor lm-eval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lm_eval_diversity.quality.types import Verdict

VERIFIABLE_TASKS: tuple[str, ...] = ("gsm8k", "math_algebra", "math_geometry", "humaneval", "mbpp", "ifeval")
GRADED_TASKS: tuple[str, ...] = VERIFIABLE_TASKS + ("truthfulqa", "cruxeval")

__all__ = ["GRADED_TASKS", "VERIFIABLE_TASKS", "Verdict", "grade_task", "short_task_name"]


def short_task_name(task: str) -> str:
    """``"diversity_gsm8k"`` → ``"gsm8k"``; raises ValueError naming the task if it has no grader."""
    short = task.removeprefix("diversity_")
    if short not in GRADED_TASKS:
        raise ValueError(f"no quality grader for task {task!r}; graded tasks: {', '.join(GRADED_TASKS)}")
    return short


def grade_task(
    task: str,
    docs: Sequence[dict[str, Any]],
    outputs: Sequence[Sequence[str]],
    *,
    math_mode: str = "math",
    ifeval_mode: str = "official",
    code_mode: str = "official",
    allow_code_execution: bool = False,
    code_timeout_s: float = 10.0,
    math_timeout_s: float = 10.0,
    workers: int = 1,
    code_behaviour: bool = False,
) -> list[list[Verdict]]:
    """Grade ``outputs[i]`` (the raw outputs of ``docs[i]``) for one task; see the module table for the rules.

    With ``allow_code_execution=False`` the code grader raises ``CodeExecutionNotAllowedError`` before running
    anything (opt-in, as lm-eval's ``--confirm_run_unsafe_code``). ``workers`` parallelises math (sympy
    subprocesses) and code grading. ``code_behaviour=True`` adds the behaviour signatures of HumanEval / MBPP
    programs (``Verdict.behaviour``, for functional classes; official code mode only).
    """
    short = short_task_name(task)
    if len(docs) != len(outputs):
        raise ValueError(f"{task}: {len(docs)} docs but {len(outputs)} output groups")
    outs = [[o if isinstance(o, str) else "" for o in group] for group in outputs]
    if short in ("gsm8k", "math_algebra", "math_geometry"):
        from lm_eval_diversity.quality.math import grade_math_docs

        return grade_math_docs(
            short,
            docs,
            outs,
            mode=math_mode,  # type: ignore[arg-type]
            timeout_s=math_timeout_s,
            workers=workers,
        )
    if short == "ifeval":
        from lm_eval_diversity.quality.ifeval import grade_ifeval

        mode = ifeval_mode  # validated by grade_ifeval
        return [grade_ifeval(d, o, mode=mode) for d, o in zip(docs, outs, strict=True)]  # type: ignore[arg-type]
    if short == "truthfulqa":
        from lm_eval_diversity.quality.truthfulqa import grade_truthfulqa

        mode = "compat" if math_mode == "compat" else "official"  # the reference grades it in its math script
        return [grade_truthfulqa(d, o, mode) for d, o in zip(docs, outs, strict=True)]
    if short == "cruxeval":
        from lm_eval_diversity.quality.code import grade_cruxeval

        return [grade_cruxeval(d, o) for d, o in zip(docs, outs, strict=True)]
    from lm_eval_diversity.quality.code import grade_code_task  # humaneval, mbpp

    return grade_code_task(
        short,
        list(docs),
        outs,
        timeout_s=code_timeout_s,
        workers=workers,
        allow_execution=allow_code_execution,
        mode=code_mode,
        behaviour=code_behaviour,
    )
