"""The one scoring path: prompt groups of K raw outputs -> per-prompt and task-level numbers.

The harness glue (a filter that sees a whole task) and the ``score`` command (samples files) both call
:func:`score_task`; they only adapt inputs and outputs. :func:`score_groups` runs in named steps: CoT stripping
with the per-prompt diagnostics, the corpus samples, one batched pass per input kind of the chosen metrics
(:mod:`lm_eval_diversity.passes`; the metrics and their kinds come from the catalogue,
:mod:`lm_eval_diversity.catalogue.metrics`), then the summary. Model work is batched over the whole task: every
unique text is embedded once, every unique NLI sentence pair is scored once.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.catalogue.tasks import CODE_TASKS
from lm_eval_diversity.passes import KIND_PASSES, TaskInput
from lm_eval_diversity.preprocess import strip_cot_with_diagnostics
from lm_eval_diversity.quality.equivalence import ANSWER_TASKS
from lm_eval_diversity.quality.math import MATH_TASKS
from lm_eval_diversity.settings import DiversitySettings

log = logging.getLogger(__name__)

NAN = float("nan")
CODE_MAX_SEQ_LENGTH = 512  # the paper's code-diversity script sets it on the code model (docs/metrics.md)


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
    """Models loaded once per run and passed to :func:`score_groups` (None where a metric is not run).

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
    """Scores of one task. ``metrics[m]`` has per_input_mean, per_input_std, across_input, overall."""

    n_prompts: int
    k: int
    metrics: dict[str, dict[str, float]]
    per_prompt: list[dict]
    diagnostics: dict = field(default_factory=dict)
    verdicts: list = field(default_factory=list)  # graded tasks: per prompt, the Verdict of each output


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


def _strip_outputs(groups: Sequence[PromptGroup]) -> tuple[list[list[str]], list[dict]]:
    """CoT-strip every output; one row per prompt with its size and the ``stripped``-kind diagnostics."""
    diag_records = [r for r in catalogue.records() if r.kind == "stripped"]
    stripped: list[list[str]] = []
    per_prompt: list[dict] = []
    for g in groups:
        diag = [strip_cot_with_diagnostics(o, g.think_opened) for o in g.outputs]
        texts = [d.text for d in diag]
        stripped.append(texts)
        row: dict = {"doc_id": g.doc_id, "n_outputs": len(texts)}
        row.update({r.name: r.fn(texts, diag) for r in diag_records})
        per_prompt.append(row)
    return stripped, per_prompt


def _warn_short(groups: Sequence[PromptGroup], stripped: list[list[str]], k: int) -> int:
    n = len(groups)
    n_short = sum(len(t) < k for t in stripped)
    if n_short:
        log.warning("%d of %d prompts have fewer than K=%d outputs; they are scored on what they have", n_short, n, k)
    if k < 2 and n:
        log.warning("K=%d output(s) per prompt: diversity is undefined; per-input metrics are reported as NaN", k)
    return n_short


def _kind_pass(
    task: TaskInput, kind: str, recs: list[catalogue.MetricRecord], per_prompt: list[dict]
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """One kind's batched pass: per-prompt values, corpus values, and (with correctness flags) the correct-subset
    variants of every record of the kind and model that has them, written into the prompt rows."""
    if kind not in KIND_PASSES:
        names = ", ".join(r.name for r in recs)
        raise ValueError(f"metric(s) {names} of input kind {kind!r} have no scoring pass; they cannot be chosen")
    build, scores = KIND_PASSES[kind]
    prepared = build(task, recs)
    n = len(task.groups)
    levels = task.levels_for(recs)
    out = scores(task, prepared, recs, task.prompt_sets + [task.corpus_sets[lvl] for lvl in levels])
    values = {r.name: out[r.name][:n] for r in recs}
    corpus = {
        r.name: {lvl: out[r.name][n + j] for j, lvl in enumerate(levels)} for r in recs if r.name in task.corpus_names
    }
    model = recs[0].model_setting
    variants = [r for r in catalogue.records() if r.kind == kind and r.correct_variants and r.model_setting == model]
    if task.correct is not None and variants:
        _correct_variants(task, prepared, scores, variants, per_prompt)
    acceptable = [r for r in variants if "correct" in r.correct_variants and r.tasks is None]
    if task.acceptable is not None and acceptable:
        _acceptable_variants(task, prepared, scores, acceptable, per_prompt)
    return values, corpus


def _correct_variants(task: TaskInput, prepared, scores, recs, per_prompt: list[dict]) -> None:
    """``<m>_all``, ``<m>_correct`` per prompt, with ``k_correct`` and ``computable`` (>= 2 correct outputs)."""
    all_sets, corr_sets = task.correct_sets()
    over_all = scores(task, prepared, recs, all_sets)
    over_correct = scores(task, prepared, recs, corr_sets)
    for i, row in enumerate(per_prompt):
        computable = bool(corr_sets[i])
        row.setdefault("k_correct", int(sum(task.correct[i])))
        row.setdefault("computable", float(computable))
        for r in recs:
            for variant in r.correct_variants:
                row[f"{r.name}_{variant}"] = (over_all if variant == "all" else over_correct)[r.name][i]


def _acceptable_variants(task: TaskInput, prepared, scores, recs, per_prompt: list[dict]) -> None:
    """``<m>_acceptable`` per prompt over the reward-acceptable outputs (NaN with fewer than 2), with
    ``acceptable_computable`` (docs/quality.md)."""
    _, sets = task.correct_sets("acceptable")
    over = scores(task, prepared, recs, sets)
    for i, row in enumerate(per_prompt):
        row["acceptable_computable"] = float(bool(sets[i]))
        for r in recs:
            row[f"{r.name}_acceptable"] = over[r.name][i]


def _summary(
    metrics: Sequence[str], values: dict[str, list[float]], corpus: dict[str, dict[str, float]], per_prompt: list[dict]
) -> dict[str, dict[str, float]]:
    """Per metric: mean and population std over prompts with a defined value, then the corpus levels; the
    per-prompt values are added to the prompt rows."""
    summary: dict[str, dict[str, float]] = {}
    for m in metrics:
        mean, std = _mean_std(values[m])
        summary[m] = {"per_input_mean": mean, "per_input_std": std, **corpus[m]}
        for row, v in zip(per_prompt, values[m]):
            row[m] = v
    return summary


def _defined(r: catalogue.MetricRecord, settings: DiversitySettings, task: str | None, verdicts) -> bool:
    """Whether a chosen metric is defined for this task: on its record's ``tasks``; answer and functional classes
    only with the grader's verdicts, functional classes only in official code mode (behaviour signatures)."""
    if not catalogue.on_task(r, task):
        return False
    if r.kind in catalogue.VERDICT_KINDS and verdicts is None:
        return False
    return r.kind != "behaviours" or settings.code_mode == "official"


def score_groups(
    groups: Sequence[PromptGroup],
    settings: DiversitySettings,
    models: MetricModels | None = None,
    *,
    correct: Sequence[Sequence[bool]] | None = None,
    progress: bool = False,
    verdicts: Sequence[Sequence[object]] | None = None,
    task_name: str | None = None,
) -> TaskScores:
    """Score a whole task.

    Per prompt: every chosen metric on its CoT-stripped outputs, plus the exact-duplicate, empty and
    unclosed-think rates. A prompt with fewer than 2 outputs has undefined diversity (NaN, counted in
    ``diagnostics["n_undefined"]``), not 0. With ``correct`` (one bool per output), also the correct-subset variants
    of the kinds that ran (SBERT over all outputs, SBERT/Vendi over the correct outputs of prompts with >= 2
    correct, NaN otherwise). The chosen records run grouped by input kind, one batched pass per kind. A chosen
    metric runs only where it is defined: on its record's ``tasks`` (``task_name``), and for the kinds read from the
    grader's verdicts (answer and functional classes) only with ``verdicts``.
    """
    models = models or MetricModels()
    metrics = tuple(m for m in settings.metrics if _defined(catalogue.record(m), settings, task_name, verdicts))
    chosen = [catalogue.record(m) for m in metrics]
    _check_models(chosen, models)

    stripped, per_prompt = _strip_outputs(groups)
    n = len(groups)
    k = max((len(t) for t in stripped), default=0)
    n_short = _warn_short(groups, stripped, k)
    task = TaskInput(
        groups, stripped, settings, models, frozenset(m for m in settings.corpus_metrics if m in metrics), correct,
        progress, verdicts, task_name,
    )  # fmt: skip

    values: dict[str, list[float]] = {m: [NAN] * n for m in metrics}
    corpus: dict[str, dict[str, float]] = {m: dict.fromkeys(catalogue.CORPUS_LEVELS, NAN) for m in metrics}
    for kind in catalogue.KINDS:
        for setting in dict.fromkeys(r.model_setting for r in chosen if r.kind == kind):
            recs = [r for r in chosen if r.kind == kind and r.model_setting == setting]
            kind_values, kind_corpus = _kind_pass(task, kind, recs, per_prompt)
            values.update(kind_values)
            for name, levels in kind_corpus.items():
                corpus[name].update(levels)
    for lvl, pos in task.corpus_sets.items():
        if not pos:  # no text at all in the corpus sample (K = 0): undefined, never 0
            for m in metrics:
                corpus[m][lvl] = NAN
    summary = _summary(metrics, values, corpus, per_prompt)
    if task.acceptable is not None:  # quality-filtered diversity over the reward-acceptable outputs, every task
        for name in catalogue.acceptable_metrics():
            if any(name in row for row in per_prompt):
                mean, std = _mean_std([row.get(name, NAN) for row in per_prompt])
                summary[name] = {"per_input_mean": mean, "per_input_std": std}
    diagnostics = {
        "n_short": n_short,
        "short_doc_ids": [g.doc_id for g, t in zip(groups, stripped) if len(t) < k],
        "n_undefined": sum(not s for s in task.prompt_sets),
        "n_unclosed_think": sum(round(r["unclosed_think_rate"] * r["n_outputs"]) for r in per_prompt if r["n_outputs"]),
        "n_outputs": len(task.flat),
        "n_unique_outputs": len(set(task.flat)),
        "corpus_sample": {lvl: len(pos) for lvl, pos in task.corpus_sets.items()},
    }
    if task.reward_diagnostics is not None:
        diagnostics["reward"] = task.reward_diagnostics
    return TaskScores(n_prompts=n, k=k, metrics=summary, per_prompt=per_prompt, diagnostics=diagnostics)


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


QUALITY_KS = catalogue.QUALITY_KS


def quality_ks(k: int) -> tuple[int, ...]:
    """The k of pass@k reported for K samples: the protocol's (1, 5, 10, 16) up to K, and K itself (pass@k is
    undefined for k > K, so it is not reported rather than reported null)."""
    return tuple(sorted({*(q for q in QUALITY_KS if q <= k), k})) if k >= 1 else ()


def _quality_summary_names(k: int) -> tuple[str, ...]:
    """The catalogue's quality metrics with its pass@k family replaced by this K's (:func:`quality_ks`)."""
    names: list[str] = []
    for m in catalogue.quality_metrics():
        if not m.startswith("pass@"):
            names.append(m)
        elif not any(n.startswith("pass@") for n in names):
            names.extend(f"pass@{q}" for q in quality_ks(k))
    return tuple(names)


def ifeval_row_metrics(verdict, *, compat: bool = False) -> dict[str, float]:
    """Loose prompt-level pass and the instruction-level shares (strict, loose) of one output, with its count.
    ``compat``: the reference's "loose accuracy", the share of instructions followed, is the loose prompt level."""
    strict, loose = verdict.instructions or ((), ())
    n = len(strict)
    return {
        "prompt_level_loose_acc": (sum(loose) / n if n else NAN) if compat else float(all(loose)),
        "inst_level_strict_acc": sum(strict) / n if n else NAN,
        "inst_level_loose_acc": sum(loose) / n if n else NAN,
        "n_instructions": n,
    }


def compat_paths(task: str, settings: DiversitySettings) -> bool:
    """Whether ``task`` is graded by a compat rule whose two reference paths (its accuracy scripts and its QFD
    script, docs/metrics.md) may give different verdicts: maths and TruthfulQA under ``math_mode`` compat, code
    under ``code_mode`` compat. IFEval's two paths give equal verdicts."""
    short = short_name(task)
    if short in CODE_TASKS:
        return settings.code_mode == "compat"
    return short in (*MATH_TASKS, "truthfulqa") and settings.math_mode == "compat"


def quality_rules(task: str, settings: DiversitySettings) -> dict[str, str]:
    """Which rule produced which quality metric of ``task`` (recorded in the results, ``diagnostics.quality``)."""
    short = short_name(task)
    modes = {"truthfulqa": settings.math_mode, "ifeval": settings.ifeval_mode}
    modes |= dict.fromkeys(MATH_TASKS, settings.math_mode) | dict.fromkeys(CODE_TASKS, settings.code_mode)
    majority = "majority vote of the answers" if short in ANSWER_TASKS else "more than half of the outputs correct"
    if modes.get(short) != "compat":
        return {
            "acc, pass@k, maj@K, IFEval levels": "the default grader (docs/metrics.md, Graders)",
            "k_correct, correct subsets, computable": "the default grader (the same verdicts)",
            "maj@K": majority,
        }
    from lm_eval_diversity.quality import COMPAT_PATHS

    return {
        "acc, pass@k, maj@K, IFEval levels": COMPAT_PATHS["accuracy"],
        "k_correct, correct subsets, computable": COMPAT_PATHS["subsets"],
        "maj@K": majority,
    }


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

    Quality per prompt: ``acc`` (output #0 correct), ``pass@k`` (unbiased; NaN for k > K), ``maj@K``,
    ``k_correct``, ``extraction_rate``; with the embeddings of the same pass, ``sbert_all``, ``sbert_correct`` and
    ``vendi_correct`` (prompts with >= 2 correct outputs), ``computable``. Code tasks are graded only with
    ``allow_code_execution``; otherwise their quality is reported as not computed (``diagnostics``), never 0.
    """
    from lm_eval_diversity.catalogue.tasks import graded_task_names
    from lm_eval_diversity.quality import grade_task
    from lm_eval_diversity.quality.aggregate import prompt_quality

    short = short_name(task)
    graded = graded_task_names()  # read at call time: tasks registered at run time are graded too
    skip_reason = None
    if short not in graded:
        skip_reason = "not a graded task"
    elif short in CODE_TASKS and not allow_code_execution:
        skip_reason = "code execution not confirmed (--confirm_run_unsafe_code)"
    elif any(g.doc is None for g in groups):
        skip_reason = "docs missing from the samples (gold answers unknown)"
    if skip_reason is not None:
        scores = score_groups(groups, settings, models, progress=progress, task_name=task)
        if short in graded:
            log.warning("%s: quality not computed: %s", task, skip_reason)
            scores.diagnostics["quality"] = f"not computed: {skip_reason}"
        return scores

    behaviours = set(catalogue.metric_names("behaviours")) & set(settings.metrics)
    if behaviours and short in CODE_TASKS and settings.code_mode != "official":
        log.warning("%s: functional classes need code_mode official (behaviour signatures); not computed", task)
    grade = functools.partial(
        grade_task,
        short,
        math_mode=settings.math_mode,
        ifeval_mode=settings.ifeval_mode,
        code_mode=settings.code_mode,
        allow_code_execution=allow_code_execution,
        code_timeout_s=settings.code_timeout_s,
        workers=max(1, os.cpu_count() or 1),
        code_behaviour=bool(behaviours) and settings.code_mode == "official",
    )
    verdicts = (
        _grade_with_progress(task, grade, groups)
        if progress
        else grade([g.doc for g in groups], [g.outputs for g in groups])
    )  # the correct subsets: the reference's QFD path in compat modes
    accuracy_verdicts = verdicts
    if compat_paths(short, settings):  # compat: the accuracy metrics follow the reference's accuracy scripts
        accuracy_grade = functools.partial(grade, compat_path="accuracy")
        accuracy_verdicts = (
            _grade_with_progress(task, accuracy_grade, groups)
            if progress
            else accuracy_grade([g.doc for g in groups], [g.outputs for g in groups])
        )
    correct = [[v.correct for v in vs] for vs in verdicts]
    chosen = (None, *settings.metrics)  # the correct-subset variants of the chosen metrics defined here, computable
    quality_filtered = tuple(
        m for m in catalogue.quality_filtered_metrics(short) if catalogue.record(m).requires in chosen
    )
    scores = score_groups(
        groups, settings, models, correct=correct, progress=progress, verdicts=verdicts, task_name=task
    )
    scores.verdicts = verdicts
    majority = "vote" if short in ANSWER_TASKS else "more_than_half"
    task_k = max((len(vs) for vs in verdicts), default=0)
    ks = quality_ks(task_k)
    for row, vs, acc_vs in zip(scores.per_prompt, verdicts, accuracy_verdicts):
        q = prompt_quality(acc_vs, ks, majority=majority)
        row["acc"] = q["acc"]
        for k in ks:
            row[f"pass@{k}"] = q.get(f"pass@{k}", NAN)
        row["maj@K"] = q[f"maj@{len(vs)}"] if vs else NAN
        row["k_correct"] = float(sum(v.correct for v in vs))
        row["extraction_rate"] = q["extraction_rate"]
        for m in quality_filtered:  # no correct-subset pass of its kind ran: undefined
            row.setdefault(m, NAN)
    for m in (*_quality_summary_names(task_k), *quality_filtered):
        mean, std = _mean_std([row[m] for row in scores.per_prompt])
        scores.metrics[m] = {"per_input_mean": mean, "per_input_std": std}
    task_metrics = catalogue.task_quality_metrics(short)
    if task_metrics:  # IFEval: loose prompt level and instruction levels (docs/metrics.md, "Quality")
        compat_ifeval = settings.ifeval_mode == "compat"
        for row, vs in zip(scores.per_prompt, accuracy_verdicts):
            row.update(ifeval_row_metrics(vs[0], compat=compat_ifeval) if vs else {})
        rows = [r for r in scores.per_prompt if "n_instructions" in r]
        mean, std = _mean_std([r["prompt_level_loose_acc"] for r in rows])
        scores.metrics["prompt_level_loose_acc"] = {"per_input_mean": mean, "per_input_std": std}
        total = sum(r["n_instructions"] for r in rows)
        for m in task_metrics[1:]:
            if compat_ifeval:  # the reference: each prompt's share of instructions, averaged over prompts
                mean, std = _mean_std([r[m] for r in rows])
                scores.metrics[m] = {"per_input_mean": mean, "per_input_std": std}
                continue
            followed = sum(r[m] * r["n_instructions"] for r in rows if r["n_instructions"])  # pooled, as lm-eval
            scores.metrics[m] = {"per_input_mean": followed / total if total else NAN, "per_input_std": NAN}
    scores.diagnostics["quality"] = {
        "math_mode": settings.math_mode,
        "ifeval_mode": settings.ifeval_mode,
        "code_mode": settings.code_mode,
        "rules": quality_rules(short, settings),
        "n_computable": int(sum(row["computable"] == 1.0 for row in scores.per_prompt)),
        "fail_reasons": dict(
            Counter(v.reason or "failed" for vs in verdicts for v in vs if not v.correct).most_common()
        ),
    }
    return scores


def _grade_with_progress(task: str, grade, groups: Sequence[PromptGroup], updates: int = 20) -> list:
    """Grade in about ``updates`` slices of prompts behind a progress bar (outputs graded, rate)."""
    from tqdm.auto import tqdm

    step = max(1, -(-len(groups) // updates))
    verdicts: list = []
    with tqdm(total=sum(len(g.outputs) for g in groups), desc=f"grading {task}", unit="output") as bar:
        for i in range(0, len(groups), step):
            part = groups[i : i + step]
            verdicts.extend(grade([g.doc for g in part], [g.outputs for g in part]))
            bar.update(sum(len(g.outputs) for g in part))
    return verdicts
