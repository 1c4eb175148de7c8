"""The graders a task record names (``TaskRecord.grader``): how its outputs are graded, what an output is, and when
two outputs give the same answer.

A grader is a small frozen record. ``grade(task, docs, outputs, options)`` returns one :class:`Verdict` per output:
``task`` names the task in errors, ``outputs[i]`` are the raw outputs of ``docs[i]`` (strings), ``options`` a
:class:`GradingOptions`. Every method imports its verifier when called, so that declaring a grader costs no import of
sympy, lm-eval or the sandbox. What is specific to a dataset (where the gold answer is, how a program is built) is
data the task record hands to its grader (:class:`GoldFormat`, :class:`ProgramFormat`).

``output_kind`` says what an output is to the metrics: ``"answer"`` (a final answer with the grader's own equality:
answer classes), ``"program"`` (code: AST profiles and functional classes), ``"text"`` otherwise.
``instruction_levels``: the verdicts carry per-instruction results (instruction-level accuracies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lm_eval_diversity.quality.types import GoldFormat, GradingOptions, ProgramFormat, Verdict

Docs = Sequence[dict[str, Any]]
Outputs = Sequence[Sequence[str]]
OutputKind = Literal["text", "answer", "program"]


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

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        raise NotImplementedError

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

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        from lm_eval_diversity.quality.math import grade_math_docs

        return grade_math_docs(
            self.gold, docs, outputs, options.math_mode, timeout_s=options.math_timeout_s,  # type: ignore[arg-type]
            workers=options.workers, label=task,
        )  # fmt: skip

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

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        from lm_eval_diversity.quality.code import grade_code_task

        return grade_code_task(
            self.programs, list(docs), [list(o) for o in outputs], timeout_s=options.code_timeout_s,
            workers=options.workers, allow_execution=options.allow_code_execution, mode=options.code_mode,
            behaviour=options.code_behaviour, label=task,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class IFEvalInstructions(Grader):
    """Correct = every instruction followed, strict prompt level (``ifeval_mode``); the verdicts carry each
    instruction's strict and loose result."""

    rule: str = "all instructions met"
    instruction_levels: bool = True
    no_answers: str = "it has no answer, only instruction checks"

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        from lm_eval_diversity.quality.ifeval import grade_ifeval

        return [grade_ifeval(d, o, mode=options.ifeval_mode) for d, o in zip(docs, outputs, strict=True)]  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class ReferenceMatch(Grader):
    """Correct = a reference answer matches by substring (TruthfulQA's rule); ``math_mode="compat"`` switches to the
    reference's rule, since the reference grades this task in its math script."""

    rule: str = "a reference answer matches"
    no_answers: str = "its grader extracts no answer (whole outputs are matched to references by substring)"

    def grade(self, task: str, docs: Docs, outputs: Outputs, options: GradingOptions) -> list[list[Verdict]]:
        from lm_eval_diversity.quality.truthfulqa import grade_truthfulqa

        mode = "compat" if options.math_mode == "compat" else "official"
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
