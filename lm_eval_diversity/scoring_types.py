"""The types scoring shares with its callers and its passes: a prompt's outputs, the loaded metric models, a task's
scores. Light on purpose (no numpy, no model library): the harness glue, the samples reader and the sweep build
prompt groups without loading the scoring code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PromptGroup:
    """One prompt's K raw outputs.

    ``doc_id`` (lm-eval's) matches prompts across runs; ``think_opened``: the rendered prompt ended with ``<think>``
    (a thinking chat template), so the outputs start inside the thought (:mod:`lm_eval_diversity.preprocess`);
    ``rng_key`` seeds the prompt's NLI sentence sampling: the
    doc's original split index when it has one (stable whatever the selection or ``--limit``), else ``doc_id``.
    """

    doc_id: int
    outputs: list[str]
    doc: dict | None = None
    rng_key: int | None = None
    think_opened: bool = False  # the prompt ended with <think>: outputs start inside the thought

    def __post_init__(self) -> None:
        if self.rng_key is None:
            split_index = self.doc.get("split_index") if isinstance(self.doc, dict) else None
            self.rng_key = int(split_index) if split_index is not None else self.doc_id


@dataclass
class MetricModels:
    """Models loaded once per run and passed to scoring (None where a metric is not run).

    One attribute per model setting of the metric catalogue: ``sbert`` for ``sbert_model``, ``nli`` for
    ``nli_model``, ``code`` for ``code_model``, ``quality`` for ``quality_model`` (the reward model).
    """

    sbert: object | None = None
    nli: object | None = None
    code: object | None = None
    quality: object | None = None

    def for_setting(self, model_setting: str) -> object | None:
        return getattr(self, model_setting.removesuffix("_model"), None)


@dataclass
class TaskScores:
    """Scores of one task. ``metrics[m]`` has per_input_mean, per_input_std (and, for metrics with corpus levels,
    across_input, overall)."""

    n_prompts: int
    k: int
    metrics: dict[str, dict[str, float]]
    per_prompt: list[dict]
    diagnostics: dict = field(default_factory=dict)
    verdicts: list = field(default_factory=list)  # graded tasks: per prompt, the Verdict of each output
