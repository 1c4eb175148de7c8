"""The one scoring path: prompt groups of K raw outputs -> per-prompt and task-level numbers.

The harness glue (a filter that sees a whole task) and the ``score`` command (samples files) both call
:func:`score_task`; they only adapt inputs and outputs. :func:`score_task` grades the outputs with the task record's
grader; :func:`score_groups` strips CoT, runs every chosen metric (the quality ones included) through the one pass
runner (:func:`lm_eval_diversity.passes.run_passes`; the metrics and their kinds come from the catalogue,
:mod:`lm_eval_diversity.catalogue.metrics`), then lays out the prompt rows and the summary. Model work is batched over
the whole task: every unique text is embedded once, every unique NLI sentence pair is scored once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections import Counter
from collections.abc import Sequence

import numpy as np

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue.tasks import find_task
from lm_eval_diversity.modes import COMPAT_PATHS
from lm_eval_diversity.passes import PassResults, TaskInput, run_passes
from lm_eval_diversity.preprocess import strip_cot_with_diagnostics
from lm_eval_diversity.quality.aggregate import QualityRule
from lm_eval_diversity.quality.graders import Grader
from lm_eval_diversity.quality.types import GradingOptions
from lm_eval_diversity.scoring_types import MetricModels, PromptGroup, TaskScores
from lm_eval_diversity.settings import DiversitySettings

log = logging.getLogger(__name__)

NAN = float("nan")
CODE_MAX_SEQ_LENGTH = 512  # the paper's code-diversity script sets it on the code model (docs/metrics.md)

__all__ = ["MetricModels", "PromptGroup", "TaskScores", "load_models", "score_groups", "score_task"]


def _model_loaders(settings: DiversitySettings) -> dict:
    from lm_eval_diversity.models import load_nli_model, load_reward_model, load_sentence_model

    return {
        "sbert_model": lambda: load_sentence_model(
            settings.sbert_model, settings.device, dtype=settings.dtype, backend=settings.backend
        ),
        "nli_model": lambda: load_nli_model(
            settings.nli_model, settings.device, max_length=settings.nli_max_length, dtype=settings.dtype,
            backend=settings.backend,
        ),
        "code_model": lambda: load_sentence_model(
            settings.code_model,
            settings.device,
            setting="--code_model",
            dtype=settings.dtype,
            max_seq_length=CODE_MAX_SEQ_LENGTH,
            backend=settings.backend,
        ),
        "quality_model": lambda: load_reward_model(
            settings.quality_model, settings.device, max_length=settings.quality_max_length, dtype=settings.dtype,
            backend=settings.backend,
        ),
    }


def load_models(settings: DiversitySettings) -> MetricModels:
    """Load the models the chosen metrics need (the catalogue's model settings), once."""
    loaders = _model_loaders(settings)
    return MetricModels(
        **{name.removesuffix("_model"): loaders[name]() for name in catalogue.models_needed(settings.metrics)}
    )


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return NAN, NAN
    arr = np.asarray(finite, dtype=np.float64)
    return float(arr.mean()), float(arr.std()) if len(arr) > 1 else 0.0


def _check_models(recs: Sequence[catalogue.MetricRecord], models: MetricModels) -> None:
    for setting in dict.fromkeys(r.model_setting for r in recs if r.model_setting):
        if models.for_setting(setting) is None:
            names = "/".join(r.name for r in recs if r.model_setting == setting)
            attr = setting.removesuffix("_model")
            raise ValueError(f"{names} requested but no {setting} model was passed (MetricModels.{attr})")


def _warn_short(groups: Sequence[PromptGroup], stripped: list[list[str]], k: int) -> int:
    n = len(groups)
    n_short = sum(len(t) < k for t in stripped)
    if n_short:
        log.warning("%d of %d prompts have fewer than K=%d outputs; they are scored on what they have", n_short, n, k)
    if k < 2 and n:
        log.warning("K=%d output(s) per prompt: diversity is undefined; per-input metrics are reported as NaN", k)
    return n_short


def _defined(r: catalogue.MetricRecord, settings: DiversitySettings, task: str | None, verdicts) -> bool:
    """Whether a chosen metric is defined for this task: on its record's tasks (``on``); answer and functional
    classes only with the grader's verdicts, functional classes only in official code mode (behaviour signatures)."""
    if not catalogue.on_task(r, task):
        return False
    if r.kind in catalogue.VERDICT_KINDS and verdicts is None:
        return False
    return r.kind != "behaviours" or settings.code_mode == "official"


def graded_records(task: str | None, metrics: Sequence[str]) -> tuple[catalogue.MetricRecord, ...]:
    """What a graded task reports besides the chosen metrics, in catalogue order: its quality (``verdicts`` kind)
    and the quality-filtered variants of the chosen ``metrics`` defined on it, with ``computable``."""
    sources = (None, *metrics)
    return tuple(
        r
        for r in catalogue.records()
        if r.graded and r.kind != "baseline" and catalogue.on_task(r, task)
        and (r.kind == "verdicts" or r.requires in sources)
    )  # fmt: skip


def _with_run_k(recs: Sequence[catalogue.MetricRecord], k: int) -> list[catalogue.MetricRecord]:
    """The prompt rows' records: the pass@k family for the protocol's k and the run's own K
    (:func:`catalogue.quality_ks`) in place of the catalogue's pass@k records."""
    out: list[catalogue.MetricRecord] = []
    for r in recs:
        if not r.name.startswith("pass@"):
            out.append(r)
        elif not any(o.name.startswith("pass@") for o in out):
            out += [catalogue.record(f"pass@{q}") for q in catalogue.quality_ks(k)]
    return out


def score_groups(
    groups: Sequence[PromptGroup],
    settings: DiversitySettings,
    models: MetricModels | None = None,
    *,
    correct: Sequence[Sequence[bool]] | None = None,
    progress: bool = False,
    verdicts: Sequence[Sequence[object]] | None = None,
    task_name: str | None = None,
    accuracy_verdicts: Sequence[Sequence[object]] | None = None,
    quality_rule: QualityRule | None = None,
) -> TaskScores:
    """Score a whole task.

    Per prompt: every chosen metric on its CoT-stripped outputs, plus the exact-duplicate, empty and
    unclosed-think rates. A prompt with fewer than 2 outputs has undefined diversity (NaN, counted in
    ``diagnostics["n_undefined"]``), not 0. With correctness flags (``correct``, one bool per output, or from
    ``verdicts``), also the correct-subset variants of the kinds that ran (SBERT over all outputs, SBERT/Vendi over
    the correct outputs of prompts with >= 2 correct, NaN otherwise). With the grader's ``verdicts``, also the
    task's quality (acc, pass@k, maj@K, ...). A chosen metric runs only where it is defined: on its record's tasks
    (``task_name``), and for the kinds read from the grader's verdicts (answer and functional classes) only with
    ``verdicts``. Every metric runs through :func:`lm_eval_diversity.passes.run_passes`, one batched pass per kind.
    ``accuracy_verdicts`` (default ``verdicts``) are what the accuracy metrics read where the reference's two grading
    paths differ (compat modes); ``quality_rule`` how the verdicts are read (maj@K, IFEval's levels).
    """
    models = models or MetricModels()
    metrics = tuple(m for m in settings.metrics if _defined(catalogue.record(m), settings, task_name, verdicts))
    chosen = [catalogue.record(m) for m in metrics]
    _check_models(chosen, models)
    if verdicts is not None and correct is None:
        correct = [[v.correct for v in vs] for vs in verdicts]  # type: ignore[attr-defined]

    diagnostics = [[strip_cot_with_diagnostics(o, g.think_opened) for o in g.outputs] for g in groups]
    stripped = [[d.text for d in diag] for diag in diagnostics]
    k = max((len(t) for t in stripped), default=0)
    n_short = _warn_short(groups, stripped, k)
    task = TaskInput(
        groups, stripped, diagnostics, settings, models,
        frozenset(m for m in settings.corpus_metrics if m in metrics), correct, progress, verdicts, task_name,
        accuracy_verdicts=accuracy_verdicts, quality_rule=quality_rule or QualityRule(),
    )  # fmt: skip
    stripped_records = [r for r in catalogue.records() if r.kind == "stripped"]
    graded = graded_records(task_name, settings.metrics) if verdicts is not None else ()
    row_records = _with_run_k(graded, k)
    results = run_passes(task, [*stripped_records, *chosen, *(r for r in row_records if r.kind == "verdicts")])
    per_prompt = _prompt_rows(task, results, stripped_records, metrics, row_records)
    summary = _summary(metrics, results, per_prompt, task.corpus_sets)
    summary.update(_graded_summary(row_records, per_prompt, task.quality_rule))
    if task.acceptable is not None:  # quality-filtered diversity over the reward-acceptable outputs, every task
        for name in catalogue.acceptable_metrics():
            if any(name in row for row in per_prompt):
                mean, std = _mean_std([row.get(name, NAN) for row in per_prompt])
                summary[name] = {"per_input_mean": mean, "per_input_std": std}
    prompt_sets = task.prompt_sets()
    diag = {
        "n_short": n_short,
        "short_doc_ids": [g.doc_id for g, t in zip(groups, stripped) if len(t) < k],
        "n_undefined": sum(not s for s in prompt_sets),
        "n_unclosed_think": sum(round(r["unclosed_think_rate"] * r["n_outputs"]) for r in per_prompt if r["n_outputs"]),
        "n_outputs": len(task.flat),
        "n_unique_outputs": len(set(task.flat)),
        "corpus_sample": {lvl: len(pos) for lvl, pos in task.corpus_sets.items()},
    }
    if task.reward_diagnostics is not None:
        diag["reward"] = task.reward_diagnostics
    verdict_lists = [list(vs) for vs in verdicts] if verdicts is not None else []
    return TaskScores(n_prompts=len(groups), k=k, metrics=summary, per_prompt=per_prompt, diagnostics=diag,
                      verdicts=verdict_lists)  # fmt: skip


def _prompt_rows(
    task: TaskInput,
    results: PassResults,
    stripped_records: Sequence[catalogue.MetricRecord],
    metrics: Sequence[str],
    graded: Sequence[catalogue.MetricRecord],
) -> list[dict]:
    """One row per prompt: its size and what stripping found, the correct-subset columns, the chosen metrics, then
    the graded records (quality, with the pass@k of the run's own K; a quality-filtered variant no pass computed is
    NaN) and the counts that shares are pooled by."""
    rows = []
    for i, g in enumerate(task.groups):
        row: dict = {"doc_id": g.doc_id, "n_outputs": len(task.stripped[i])}
        row.update({r.name: results.values[r.name][i] for r in stripped_records})
        row.update(results.subsets[i])
        row.update({m: results.values[m][i] for m in metrics})
        weights: dict = {}
        for r in graded:
            if r.name not in results.values:
                row.setdefault(r.name, NAN)
            elif r.weight is None:
                row[r.name] = results.values[r.name][i]
            else:
                row[r.name], weights[r.weight] = results.values[r.name][i]
        rows.append({**row, **weights})
    return rows


def _summary(
    metrics: Sequence[str], results: PassResults, rows: list[dict], corpus_sets: dict[str, list[int]]
) -> dict[str, dict[str, float]]:
    """Per chosen metric: mean and population std over prompts with a defined value, then the corpus levels (NaN
    where not computed, and where the corpus sample holds no text at all: undefined, never 0)."""
    summary: dict[str, dict[str, float]] = {}
    for m in metrics:
        mean, std = _mean_std([row[m] for row in rows])
        corpus = {lvl: results.corpus.get(m, {}).get(lvl, NAN) if pos else NAN for lvl, pos in corpus_sets.items()}
        summary[m] = {"per_input_mean": mean, "per_input_std": std, **corpus}
    return summary


def _graded_summary(
    graded: Sequence[catalogue.MetricRecord], rows: list[dict], rule: QualityRule | None
) -> dict[str, dict[str, float]]:
    """Per graded record: mean and population std over prompts; a share with a ``weight`` is pooled over every item
    of every prompt (as lm-eval aggregates IFEval's instruction levels), without a std, unless the task's rule reads
    each prompt's share (the reference's IFEval levels: averaged over prompts)."""
    summary: dict[str, dict[str, float]] = {}
    for r in graded:
        if r.weight is None or (rule is not None and rule.instruction_shares):
            mean, std = _mean_std([row[r.name] for row in rows])
        else:
            total = sum(row[r.weight] for row in rows)
            followed = sum(row[r.name] * row[r.weight] for row in rows if row[r.weight])
            mean, std = (followed / total if total else NAN), NAN
        summary[r.name] = {"per_input_mean": mean, "per_input_std": std}
    return summary


def _json_number(v):
    """NaN (undefined) becomes null in JSON; numpy scalars become Python numbers."""
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return None if math.isnan(v) else v
    if isinstance(v, np.integer):
        return int(v)
    return v


def task_scores_to_json(scores: TaskScores) -> dict:
    """The ``tasks.<task>`` entry of the score JSON (NaN -> null)."""
    return {
        "n_prompts": scores.n_prompts,
        "k": scores.k,
        "metrics": {m: {lvl: _json_number(v) for lvl, v in levels.items()} for m, levels in scores.metrics.items()},
        "per_prompt": [{key: _json_number(v) for key, v in row.items()} for row in scores.per_prompt],
        "diagnostics": scores.diagnostics,
    }


def _skip_reason(task: str, groups: Sequence[PromptGroup], allow_code_execution: bool) -> str | None:
    """Why a task's outputs are not graded (None: they are)."""
    record = find_task(task)
    if record is None or not record.graded:
        return "not a graded task"
    if record.runs_code and not allow_code_execution:
        return "code execution not confirmed (--confirm_run_unsafe_code)"
    if any(g.doc is None for g in groups):
        return "docs missing from the samples (gold answers unknown)"
    return None


def score_task(
    task: str,
    groups: Sequence[PromptGroup],
    settings: DiversitySettings,
    models: MetricModels | None = None,
    *,
    allow_code_execution: bool = False,
    progress: bool = False,
) -> TaskScores:
    """Diversity of any task; on graded tasks also quality and quality-filtered diversity (docs/metrics.md).

    The outputs are graded by the task record's grader, then scored by :func:`score_groups` with the verdicts:
    quality per prompt (``acc``, ``pass@k``, ``maj@K``, ``k_correct``, ``extraction_rate``, a task's own quality
    metrics) and the correct-subset variants of the chosen metrics. Code tasks are graded only with
    ``allow_code_execution``; otherwise their quality is reported as not computed (``diagnostics``), never 0.
    """
    record = find_task(task)
    skip_reason = _skip_reason(task, groups, allow_code_execution)
    if skip_reason is not None:
        scores = score_groups(groups, settings, models, progress=progress, task_name=task)
        if record is not None and record.graded:
            log.warning("%s: quality not computed: %s", task, skip_reason)
            scores.diagnostics["quality"] = f"not computed: {skip_reason}"
        return scores
    assert record is not None  # a graded task (no skip reason)
    behaviours = set(catalogue.metric_names("behaviours")) & set(settings.metrics)
    if behaviours and record.runs_code and settings.code_mode != "official":
        log.warning("%s: functional classes need code_mode official (behaviour signatures); not computed", task)
    options = GradingOptions(
        math_mode=settings.math_mode, ifeval_mode=settings.ifeval_mode, code_mode=settings.code_mode,
        allow_code_execution=allow_code_execution, code_timeout_s=settings.code_timeout_s,
        workers=max(1, os.cpu_count() or 1), code_behaviour=bool(behaviours) and settings.code_mode == "official",
    )  # fmt: skip
    grader = record.grader
    assert grader is not None

    def graded_with(options: GradingOptions) -> list:
        def grade(part: Sequence[PromptGroup]) -> list:
            return record.grade([g.doc for g in part], [g.outputs for g in part], options)  # type: ignore[misc]

        return _grade_with_progress(task, grade, groups) if progress else grade(groups)

    verdicts = graded_with(options)  # the correct subsets: the reference's QFD path in compat modes
    accuracy_verdicts = verdicts
    if grader.compat_paths(options):  # compat: the accuracy metrics follow the reference's accuracy scripts
        accuracy_verdicts = graded_with(dataclasses.replace(options, compat_path="accuracy"))
    rule = QualityRule(grader.majority, grader.instruction_levels and grader.mode(options) == "compat")
    scores = score_groups(
        groups, settings, models, progress=progress, verdicts=verdicts, task_name=task,
        accuracy_verdicts=accuracy_verdicts, quality_rule=rule,
    )  # fmt: skip
    scores.diagnostics["quality"] = {
        "math_mode": settings.math_mode,
        "ifeval_mode": settings.ifeval_mode,
        "code_mode": settings.code_mode,
        "rules": quality_rules(grader, options),
        "n_computable": int(sum(row["computable"] == 1.0 for row in scores.per_prompt)),
        "fail_reasons": dict(
            Counter(v.reason or "failed" for vs in verdicts for v in vs if not v.correct).most_common()
        ),
    }
    return scores


def quality_rules(grader: Grader, options: GradingOptions) -> dict[str, str]:
    """Which rule produced which quality metric of a task graded by ``grader`` (recorded in the results,
    ``diagnostics.quality``)."""
    majority = "majority vote of the answers" if grader.majority == "vote" else "more than half of the outputs correct"
    if grader.mode(options) != "compat":
        return {
            "acc, pass@k, maj@K, IFEval levels": "the default grader (docs/metrics.md, Graders)",
            "k_correct, correct subsets, computable": "the default grader (the same verdicts)",
            "maj@K": majority,
        }
    return {
        "acc, pass@k, maj@K, IFEval levels": COMPAT_PATHS["accuracy"],
        "k_correct, correct subsets, computable": COMPAT_PATHS["subsets"],
        "maj@K": majority,
    }


def _grade_with_progress(task: str, grade, groups: Sequence[PromptGroup], updates: int = 20) -> list:
    """Grade in about ``updates`` slices of prompts behind a progress bar (outputs graded, rate)."""
    from tqdm.auto import tqdm

    step = max(1, -(-len(groups) // updates))
    verdicts: list = []
    with tqdm(total=sum(len(g.outputs) for g in groups), desc=f"grading {task}", unit="output") as bar:
        for i in range(0, len(groups), step):
            part = groups[i : i + step]
            verdicts.extend(grade(part))
            bar.update(sum(len(g.outputs) for g in part))
    return verdicts
