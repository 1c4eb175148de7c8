"""The one scoring path: prompt groups of K raw outputs -> per-prompt and task-level numbers.

The harness glue (a filter that sees a whole task) and the ``score`` command (samples files) both call
:func:`score_groups`; they only adapt inputs and outputs. Model work is batched over the whole task: every unique
text is embedded once, every unique NLI sentence pair is scored once.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.metrics.nli import aligned_sentence_pairs, prompt_rng
from lm_eval_diversity.preprocess import strip_cot_with_diagnostics
from lm_eval_diversity.settings import DiversitySettings

log = logging.getLogger(__name__)

NAN = float("nan")


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
    ``nli_model``.
    """

    sbert: object | None = None
    nli: object | None = None

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
    from lm_eval_diversity.models import load_nli_model, load_sentence_model

    return {
        "sbert_model": lambda: load_sentence_model(settings.sbert_model, settings.device, dtype=settings.dtype),
        "nli_model": lambda: load_nli_model(
            settings.nli_model, settings.device, max_length=settings.nli_max_length, dtype=settings.dtype
        ),
    }


def load_models(settings: DiversitySettings) -> MetricModels:
    """Load the models the chosen metrics need (the catalogue's model settings), once."""
    loaders = _model_loaders(settings)
    return MetricModels(
        **{name.removesuffix("_model"): loaders[name]() for name in catalogue.models_needed(settings.metrics)}
    )


def corpus_positions(n_prompts: int, n_outputs: int, seed: int, size: int) -> tuple[list[int], list[int]]:
    """Subsets for the across-input and overall levels, drawn as the reference's offline path does.

    With ``RandomState(seed)``: first, if ``n_outputs >= size``, ``size`` of all outputs; then, if
    ``n_prompts >= size``, ``size`` of the first outputs; each drawn without replacement and sorted. Smaller sets
    are used whole. Returns (first-output prompt positions, flat output positions).
    """
    rs = np.random.RandomState(seed)
    overall = sorted(rs.choice(n_outputs, size, replace=False).tolist()) if n_outputs >= size else None
    first = sorted(rs.choice(n_prompts, size, replace=False).tolist()) if n_prompts >= size else None
    return (
        first if first is not None else list(range(n_prompts)),
        overall if overall is not None else list(range(n_outputs)),
    )


def corpus_sets_of(stripped: Sequence[Sequence[str]], settings: DiversitySettings) -> dict[str, list[int]]:
    """Flat output positions of the across-input set (first outputs) and the overall set of a task."""
    n_outputs = sum(len(t) for t in stripped)
    first_pos, overall_pos = corpus_positions(
        sum(bool(t) for t in stripped), n_outputs, settings.seed, settings.corpus_sample_size
    )
    offsets = np.cumsum([0] + [len(t) for t in stripped])
    has_first = [i for i, t in enumerate(stripped) if t]
    return {"across_input": [int(offsets[has_first[p]]) for p in first_pos], "overall": overall_pos}


def nli_sets_of(
    groups: Sequence[PromptGroup], stripped: Sequence[list[str]], settings: DiversitySettings, corpus: bool
) -> list[tuple[list[str], object]]:
    """The output sets NLI scores, each with its sentence-sampling key: one per prompt (empty when it has fewer
    than 2 outputs), then, with ``corpus``, the across-input and overall sets."""
    sets: list[tuple[list[str], object]] = [
        (list(texts) if len(texts) >= 2 else [], g.rng_key) for texts, g in zip(stripped, groups)
    ]
    if corpus:
        flat = [t for texts in stripped for t in texts]
        sets += [([flat[p] for p in pos], lvl) for lvl, pos in corpus_sets_of(stripped, settings).items()]
    return sets


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return NAN, NAN
    arr = np.asarray(finite, dtype=np.float64)
    return float(arr.mean()), float(arr.std()) if len(arr) > 1 else 0.0


@dataclass
class _TaskInput:
    """What every pass of one task shares: the stripped outputs, flat, and the sets to score.

    A set is a list of flat output positions; ``prompt_sets[i]`` is empty when prompt i has fewer than 2
    outputs (diversity undefined), ``corpus_sets`` maps each corpus level to its sample.
    """

    groups: Sequence[PromptGroup]
    stripped: list[list[str]]
    settings: DiversitySettings
    models: MetricModels
    corpus_names: frozenset[str]
    correct: Sequence[Sequence[bool]] | None
    progress: bool
    flat: list[str] = field(init=False)
    prompt_sets: list[list[int]] = field(init=False)
    corpus_sets: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.flat = [t for texts in self.stripped for t in texts]
        offsets = np.cumsum([0] + [len(t) for t in self.stripped])
        self.prompt_sets = [
            list(range(int(offsets[i]), int(offsets[i + 1]))) if len(t) >= 2 else []
            for i, t in enumerate(self.stripped)
        ]
        self.corpus_sets = corpus_sets_of(self.stripped, self.settings)

    def levels_for(self, recs: Sequence[catalogue.MetricRecord]) -> list[str]:
        """The corpus levels any of ``recs`` is computed at."""
        return list(self.corpus_sets) if any(r.name in self.corpus_names for r in recs) else []

    def correct_sets(self) -> tuple[list[list[int]], list[list[int]]]:
        """Per prompt, all outputs and the correct outputs (each empty unless it holds >= 2 outputs)."""
        if self.correct is None:
            raise ValueError("correct-subset sets need correctness flags")
        if len(self.correct) != len(self.stripped):
            raise ValueError(f"correct has {len(self.correct)} prompts, expected {len(self.stripped)}")
        all_sets, corr_sets = [], []
        start = 0
        for texts, flags, g in zip(self.stripped, self.correct, self.groups):
            rows = list(range(start, start + len(texts)))
            start += len(texts)
            if len(flags) != len(rows):
                raise ValueError(f"doc_id {g.doc_id}: {len(flags)} correctness flags for {len(rows)} outputs")
            chosen = [r for r, ok in zip(rows, flags) if ok]
            all_sets.append(rows if len(rows) >= 2 else [])
            corr_sets.append(chosen if len(chosen) >= 2 else [])
        return all_sets, corr_sets


# A pass computes its kind's records on many sets at once: ``(task, records, sets) -> {name: values per set}``
# (NaN for an empty set). ``_KIND_INPUTS`` builds a kind's input once per task, shared by all its set families.


def _texts_input(task: _TaskInput, recs) -> None:
    return None


def _texts_scores(task: _TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    out = {}
    for r in recs:
        filled = [i for i, s in enumerate(sets) if s]
        values = r.fn([[task.flat[p] for p in sets[i]] for i in filled], task.settings) if filled else []
        column = [NAN] * len(sets)
        for i, v in zip(filled, values):
            column[i] = float(v)
        out[r.name] = column
    return out


def _embeddings_input(task: _TaskInput, recs):
    """Every unique text of the task embedded once; returns (float64 embeddings, row of each flat output)."""
    from lm_eval_diversity.models import embed_texts, unique_texts

    model = task.models.for_setting(recs[0].model_setting)
    uniq = unique_texts(task.flat)
    embeddings = embed_texts(model, uniq.texts, task.settings.batch_size, progress=task.progress)
    return embeddings.astype(np.float64), [uniq.index[t] for t in task.flat]


def _embeddings_scores(task: _TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """Gram-matrix metrics of many sets, batched by set size (one Gram matrix per set, shared by the records)."""
    emb, rows = prepared
    out = {r.name: np.full(len(sets), NAN) for r in recs}
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, positions in enumerate(sets):
        by_size[len(positions)].append(i)
    for size, members in by_size.items():
        if size == 0:
            continue
        stacked = emb[np.asarray([[rows[p] for p in sets[i]] for i in members])]  # (b, m, d)
        g = stacked @ np.swapaxes(stacked, -1, -2)
        for r in recs:
            out[r.name][members] = r.fn(g)
    return {name: [float(v) for v in arr] for name, arr in out.items()}


def _nli_input(task: _TaskInput, recs) -> None:
    return None


def _nli_scores_of(task: _TaskInput, prepared, recs, sets: list[list[int]], keys: list) -> dict[str, list[float]]:
    model = task.models.for_setting(recs[0].model_setting)
    texts = [([task.flat[p] for p in s], key) for s, key in zip(sets, keys)]
    aligned = aligned_pairs_of(texts, task.settings)
    index = directional_pairs(aligned)
    w = model.entail_minus_contradict(list(index), batch_size=task.settings.batch_size, progress=task.progress)
    return {
        r.name: [float(r.fn(pairs, lambda a, b: w[index[(a, b)]])) if s else NAN for pairs, s in zip(aligned, sets)]
        for r in recs
    }


def _nli_pair_scores(task: _TaskInput, prepared, recs, sets: list[list[int]]) -> dict[str, list[float]]:
    """Sentence sampling is seeded per set: a prompt's ``rng_key``, a corpus sample's level name."""
    n = len(task.groups)
    keys = [g.rng_key for g in task.groups][: len(sets)] + list(task.corpus_sets)[: max(0, len(sets) - n)]
    return _nli_scores_of(task, prepared, recs, sets, keys)


_KIND_PASSES = {
    "texts": (_texts_input, _texts_scores),
    "embeddings": (_embeddings_input, _embeddings_scores),
    "nli_pairs": (_nli_input, _nli_pair_scores),
}


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
    task: _TaskInput, kind: str, recs: list[catalogue.MetricRecord], per_prompt: list[dict]
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """One kind's batched pass: per-prompt values, corpus values, and (with correctness flags) the correct-subset
    variants of every record of the kind and model that has them, written into the prompt rows."""
    build, scores = _KIND_PASSES[kind]
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
    return values, corpus


def _correct_variants(task: _TaskInput, prepared, scores, recs, per_prompt: list[dict]) -> None:
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


def score_groups(
    groups: Sequence[PromptGroup],
    settings: DiversitySettings,
    models: MetricModels | None = None,
    *,
    correct: Sequence[Sequence[bool]] | None = None,
    progress: bool = False,
) -> TaskScores:
    """Score a whole task.

    Per prompt: every chosen metric on its CoT-stripped outputs, plus the exact-duplicate, empty and
    unclosed-think rates. A prompt with fewer than 2 outputs has undefined diversity (NaN, counted in
    ``diagnostics["n_undefined"]``), not 0. With ``correct`` (one bool per output), also the correct-subset variants
    of the kinds that ran (SBERT over all outputs, SBERT/Vendi over the correct outputs of prompts with >= 2
    correct, NaN otherwise). The chosen records run grouped by input kind, one batched pass per kind.
    """
    models = models or MetricModels()
    metrics = tuple(settings.metrics)
    chosen = [catalogue.record(m) for m in metrics]
    _check_models(chosen, models)

    stripped, per_prompt = _strip_outputs(groups)
    n = len(groups)
    k = max((len(t) for t in stripped), default=0)
    n_short = _warn_short(groups, stripped, k)
    task = _TaskInput(
        groups, stripped, settings, models, frozenset(m for m in settings.corpus_metrics if m in metrics), correct,
        progress,
    )  # fmt: skip

    values: dict[str, list[float]] = {m: [NAN] * n for m in metrics}
    corpus: dict[str, dict[str, float]] = {m: {"across_input": NAN, "overall": NAN} for m in metrics}
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
    diagnostics = {
        "n_short": n_short,
        "short_doc_ids": [g.doc_id for g, t in zip(groups, stripped) if len(t) < k],
        "n_undefined": sum(not s for s in task.prompt_sets),
        "n_unclosed_think": sum(round(r["unclosed_think_rate"] * r["n_outputs"]) for r in per_prompt if r["n_outputs"]),
        "n_outputs": len(task.flat),
        "n_unique_outputs": len(set(task.flat)),
        "corpus_sample": {lvl: len(pos) for lvl, pos in task.corpus_sets.items()},
    }
    return TaskScores(n_prompts=n, k=k, metrics=summary, per_prompt=per_prompt, diagnostics=diagnostics)


def aligned_pairs_of(sets: Sequence[tuple[list[str], object]], settings: DiversitySettings) -> list[list]:
    """Aligned sentence pairs of each NLI set, drawn with the set's own RNG."""
    return [
        aligned_sentence_pairs(texts, prompt_rng(settings.seed, key), settings.nli_max_sentences) for texts, key in sets
    ]


def directional_pairs(aligned: Sequence[Sequence[tuple[str, str]]]) -> dict[tuple[str, str], int]:
    """Every unique (premise, hypothesis) pair the sets need, both directions, numbered in first-use order."""
    index: dict[tuple[str, str], int] = {}
    for pairs in aligned:
        for a, b in pairs:
            index.setdefault((a, b), len(index))
            index.setdefault((b, a), len(index))
    return index


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
CODE_TASKS = ("humaneval", "mbpp")


def quality_ks(k: int) -> tuple[int, ...]:
    """The k of pass@k reported for K samples: the protocol's (1, 5, 10, 16) and K itself."""
    return tuple(sorted({*QUALITY_KS, k})) if k >= 1 else QUALITY_KS


def ifeval_row_metrics(verdict) -> dict[str, float]:
    """Loose prompt-level pass and the instruction-level shares (strict, loose) of one output, with its count."""
    strict, loose = verdict.instructions or ((), ())
    n = len(strict)
    return {
        "prompt_level_loose_acc": float(all(loose)),
        "inst_level_strict_acc": sum(strict) / n if n else NAN,
        "inst_level_loose_acc": sum(loose) / n if n else NAN,
        "n_instructions": n,
    }


def score_task(
    task: str,
    groups: Sequence[PromptGroup],
    settings: DiversitySettings,
    models: MetricModels | None = None,
    *,
    graded_tasks: Sequence[str] | None = None,
    allow_code_execution: bool = False,
    progress: bool = False,
) -> TaskScores:
    """Diversity of any task; on graded tasks also quality and quality-filtered diversity (reference §5–6).

    Quality per prompt: ``acc`` (output #0 correct), ``pass@k`` (unbiased; NaN for k > K), ``maj@K``,
    ``k_correct``, ``extraction_rate``; with the embeddings of the same pass, ``sbert_all``, ``sbert_correct`` and
    ``vendi_correct`` (prompts with >= 2 correct outputs), ``computable``. Code tasks are graded only with
    ``allow_code_execution``; otherwise their quality is reported as not computed (``diagnostics``), never 0.
    """
    from lm_eval_diversity.quality import GRADED_TASKS, grade_task
    from lm_eval_diversity.quality.aggregate import prompt_quality

    short = task.removeprefix("diversity_")
    graded = tuple(GRADED_TASKS if graded_tasks is None else graded_tasks)
    skip_reason = None
    if short not in graded:
        skip_reason = "not a graded task"
    elif short in CODE_TASKS and not allow_code_execution:
        skip_reason = "code execution not confirmed (--confirm_run_unsafe_code)"
    elif any(g.doc is None for g in groups):
        skip_reason = "docs missing from the samples (gold answers unknown)"
    if skip_reason is not None:
        scores = score_groups(groups, settings, models, progress=progress)
        if short in graded:
            log.warning("%s: quality not computed: %s", task, skip_reason)
            scores.diagnostics["quality"] = f"not computed: {skip_reason}"
        return scores

    grade = functools.partial(
        grade_task,
        short,
        math_mode=settings.math_mode,
        ifeval_mode=settings.ifeval_mode,
        code_mode=settings.code_mode,
        allow_code_execution=allow_code_execution,
        code_timeout_s=settings.code_timeout_s,
        workers=max(1, os.cpu_count() or 1),
    )
    verdicts = _grade_with_progress(task, grade, groups) if progress else grade(
        [g.doc for g in groups], [g.outputs for g in groups]
    )
    correct = [[v.correct for v in vs] for vs in verdicts]
    quality_filtered = catalogue.quality_filtered_metrics()
    scores = score_groups(groups, settings, models, correct=correct, progress=progress)
    scores.verdicts = verdicts
    for row, vs in zip(scores.per_prompt, verdicts):
        ks = quality_ks(len(vs))
        q = prompt_quality(vs, ks)
        row["acc"] = q["acc"]
        for k in ks:
            row[f"pass@{k}"] = q.get(f"pass@{k}", NAN)
        row["maj@K"] = q[f"maj@{len(vs)}"] if vs else NAN
        row["k_correct"] = q["k_correct"]
        row["extraction_rate"] = q["extraction_rate"]
        if "computable" not in row:  # no correct-subset pass ran: quality-filtered diversity undefined
            row.update({m: NAN for m in quality_filtered})
    for m in (*catalogue.quality_metrics(), *quality_filtered):
        mean, std = _mean_std([row[m] for row in scores.per_prompt])
        scores.metrics[m] = {"per_input_mean": mean, "per_input_std": std}
    task_metrics = catalogue.task_quality_metrics(short)
    if task_metrics:  # IFEval: loose prompt level, and instruction levels pooled over all prompts
        for row, vs in zip(scores.per_prompt, verdicts):
            row.update(ifeval_row_metrics(vs[0]) if vs else {})
        rows = [r for r in scores.per_prompt if "n_instructions" in r]
        mean, std = _mean_std([r["prompt_level_loose_acc"] for r in rows])
        scores.metrics["prompt_level_loose_acc"] = {"per_input_mean": mean, "per_input_std": std}
        total = sum(r["n_instructions"] for r in rows)
        for m in task_metrics[1:]:  # over all instructions of all prompts, as lm-eval aggregates them
            followed = sum(r[m] * r["n_instructions"] for r in rows if r["n_instructions"])
            scores.metrics[m] = {"per_input_mean": followed / total if total else NAN, "per_input_std": NAN}
    scores.diagnostics["quality"] = {
        "math_mode": settings.math_mode,
        "ifeval_mode": settings.ifeval_mode,
        "code_mode": settings.code_mode,
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
