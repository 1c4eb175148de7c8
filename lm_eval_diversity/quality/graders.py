"""The graders a task record names (``TaskRecord.grader``), all with one signature.

``grader(task, docs, outputs, options) -> verdicts``: ``task`` is the short task name, ``outputs[i]`` the raw
outputs of ``docs[i]`` (strings), ``options`` a :class:`GradingOptions`; one :class:`Verdict` per output. Each
imports its verifier when called, so that naming a grader costs no import of sympy, lm-eval or the sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lm_eval_diversity.quality.types import GradingOptions, Verdict

Docs = Sequence[dict[str, Any]]
Outputs = Sequence[Sequence[str]]


def math_answer(task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
    """GSM8K / MATH: correct = the final answer is equivalent to the gold one (``math_mode``)."""
    from lm_eval_diversity.quality.math import grade_math_docs

    return grade_math_docs(
        task,
        docs,
        outputs,
        mode=options.math_mode,
        timeout_s=options.math_timeout_s,
        workers=options.workers,  # type: ignore[arg-type]
        compat_path=options.compat_path,
    )


def code_tests(task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
    """HumanEval / MBPP: correct = the task's tests pass in the sandbox (``code_mode``; only with
    ``allow_code_execution``, else ``CodeExecutionNotAllowedError`` before anything runs)."""
    from lm_eval_diversity.quality.code import grade_code_task

    return grade_code_task(
        task,
        list(docs),
        [list(o) for o in outputs],
        timeout_s=options.code_timeout_s,
        workers=options.workers,
        allow_execution=options.allow_code_execution,
        mode=options.code_mode,
        behaviour=options.code_behaviour,
        compat_path=options.compat_path,
    )


def ifeval_instructions(task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
    """IFEval: correct = every instruction followed, strict prompt level (``ifeval_mode``)."""
    from lm_eval_diversity.quality.ifeval import grade_ifeval

    return [grade_ifeval(d, o, mode=options.ifeval_mode) for d, o in zip(docs, outputs, strict=True)]  # type: ignore[arg-type]


def truthfulqa_reference(task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
    """TruthfulQA: correct = a reference answer matches; ``math_mode="compat"`` switches to the reference's rules
    (its accuracy script or its QFD script, ``compat_path``), since it grades TruthfulQA in its math script."""
    from lm_eval_diversity.quality.truthfulqa import grade_truthfulqa

    mode = "official"
    if options.math_mode == "compat":
        mode = "compat_accuracy" if options.compat_path == "accuracy" else "compat"
    return [grade_truthfulqa(d, list(o), mode) for d, o in zip(docs, outputs, strict=True)]


def cruxeval_output(task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
    """CRUXEval: correct = the predicted output equals the gold one (no code runs)."""
    from lm_eval_diversity.quality.code import grade_cruxeval

    return [grade_cruxeval(d, list(o)) for d, o in zip(docs, outputs, strict=True)]
