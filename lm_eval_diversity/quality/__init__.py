"""Quality verifiers: what each task record's grader runs (docs/metrics.md, "Graders: default and compat").

:mod:`.graders` holds the graders a task record names (math answers, code tests, IFEval instructions, reference
matching, predicted outputs); they call the verifiers of :mod:`.math`, :mod:`.code` (with the sandbox,
:mod:`.sandbox`), :mod:`.ifeval` and :mod:`.truthfulqa`, imported when grading starts. :mod:`.aggregate` has the
per-prompt quality of K graded outputs (accuracy, pass@k, majority vote). Every grader takes raw outputs (it strips
CoT itself) and returns one :class:`Verdict` per output; bad input (unparseable answers, empty outputs, non-Python
code) gives failed verdicts, never an exception. Grading a task by name is the catalogue's
(:func:`lm_eval_diversity.catalogue.tasks.grade_task`).
"""

from __future__ import annotations

from lm_eval_diversity.quality.types import GradingOptions, Verdict

__all__ = ["GradingOptions", "Verdict"]
