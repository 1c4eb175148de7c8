"""Quality verifiers: one dispatcher over the graders named by the task records.

``grade_task`` looks the task up in the task catalogue (:mod:`lm_eval_diversity.catalogue.tasks`; a ``diversity_``
prefix is accepted) and calls the grader its record names (:mod:`.graders`):

* gsm8k, math_algebra, math_geometry: :mod:`.math` (``math_mode``: "math" = math-verify, "compat" = the
  reference's rule); correct = answer equivalent to the gold answer;
* humaneval, mbpp: :mod:`.code` ``grade_code_task`` (runs code only with ``allow_code_execution=True``;
  ``code_mode``: "official" or "compat" = the reference's program and exit-status rule); correct = the tests pass;
* ifeval: :mod:`.ifeval` (``ifeval_mode``: "official" = lm-eval checkers, "compat" = the reference's checkers);
  correct = strict prompt-level pass;
* truthfulqa: :mod:`.truthfulqa` (substring rule; ``math_mode="compat"`` also switches it to the reference's
  rule, since the reference grades it next to math); correct = a reference answer matches;
* cruxeval: :mod:`.code` ``grade_cruxeval``; correct = the predicted output equals the gold one.

Every grader takes raw outputs (it strips CoT itself) and returns one :class:`Verdict` per output; bad input
(unparseable answers, empty outputs, non-Python code) gives failed verdicts, never an exception. Graders are
imported lazily so that importing this package pulls in neither sympy nor lm-eval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lm_eval_diversity.catalogue.tasks import graded_task_names, resolve_grader, short_name, task_records
from lm_eval_diversity.quality.types import GradingOptions, Verdict

# the paper's six verifiable tasks (the div_verifiable group)
VERIFIABLE_TASKS: tuple[str, ...] = tuple(r.name for r in task_records() if r.verifiable)
# every task with a grader: the six, truthfulqa and cruxeval
GRADED_TASKS: tuple[str, ...] = graded_task_names()

# the reference's two grading paths, reproduced in compat modes (docs/metrics.md, "Graders: default and compat")
COMPAT_PATHS: dict[str, str] = {
    "accuracy": "the reference's compute_*_quality.py scripts (acc, pass@k, maj@K, IFEval levels)",
    "subsets": "the reference's quality_filtered_diversity.py (k_correct, the correct subsets, computable)",
}

__all__ = [
    "COMPAT_PATHS",
    "GRADED_TASKS",
    "VERIFIABLE_TASKS",
    "GradingOptions",
    "Verdict",
    "grade_task",
    "short_task_name",
]


def short_task_name(task: str) -> str:
    """``"diversity_gsm8k"`` → ``"gsm8k"``; raises ValueError naming the task if it has no grader."""
    short = short_name(task)
    if short not in graded_task_names():
        raise ValueError(f"no quality grader for task {task!r}; graded tasks: {', '.join(graded_task_names())}")
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
    compat_path: str = "subsets",
) -> list[list[Verdict]]:
    """Grade ``outputs[i]`` (the raw outputs of ``docs[i]``) for one task; see the module table for the rules.

    With ``allow_code_execution=False`` the code grader raises ``CodeExecutionNotAllowedError`` before running
    anything (opt-in, as lm-eval's ``--confirm_run_unsafe_code``). ``workers`` parallelises math (sympy
    subprocesses) and code grading. ``code_behaviour=True`` adds the behaviour signatures of HumanEval / MBPP
    programs (``Verdict.behaviour``, for functional classes; official code mode only). ``compat_path``: in compat
    modes, the reference's accuracy scripts ("accuracy") or its QFD script ("subsets"); see :data:`COMPAT_PATHS`.
    """
    if compat_path not in COMPAT_PATHS:
        raise ValueError(f"compat_path={compat_path!r}: expected one of {', '.join(COMPAT_PATHS)}")
    short = short_task_name(task)
    if len(docs) != len(outputs):
        raise ValueError(f"{task}: {len(docs)} docs but {len(outputs)} output groups")
    outs = [[o if isinstance(o, str) else "" for o in group] for group in outputs]
    options = GradingOptions(
        math_mode=math_mode,
        ifeval_mode=ifeval_mode,
        code_mode=code_mode,
        allow_code_execution=allow_code_execution,
        code_timeout_s=code_timeout_s,
        math_timeout_s=math_timeout_s,
        workers=workers,
        code_behaviour=code_behaviour,
        compat_path=compat_path,
    )
    return resolve_grader(short)(short, docs, outs, options)
