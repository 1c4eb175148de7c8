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

from lm_eval_diversity.metrics.embedding import sbert_diversity_from_gram, vendi_from_gram
from lm_eval_diversity.metrics.ngram import ead
from lm_eval_diversity.metrics.nli import aligned_sentence_pairs, nli_diversity, prompt_rng
from lm_eval_diversity.preprocess import strip_cot_with_diagnostics
from lm_eval_diversity.settings import DiversitySettings

log = logging.getLogger(__name__)

EMBEDDING_METRICS = ("sbert", "vendi")
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
    """Models loaded once per run and passed to :func:`score_groups` (None where a metric is not run)."""

    sbert: object | None = None
    nli: object | None = None


@dataclass
class TaskScores:
    """Scores of one task. ``metrics[m]`` has per_input_mean, per_input_std, across_input, overall."""

    n_prompts: int
    k: int
    metrics: dict[str, dict[str, float]]
    per_prompt: list[dict]
    diagnostics: dict = field(default_factory=dict)
    verdicts: list = field(default_factory=list)  # graded tasks: per prompt, the Verdict of each output


def load_models(settings: DiversitySettings) -> MetricModels:
    """Load the models the chosen metrics need, once."""
    from lm_eval_diversity.models import load_nli_model, load_sentence_model

    sbert = nli = None
    if set(settings.metrics) & set(EMBEDDING_METRICS):
        sbert = load_sentence_model(settings.sbert_model, settings.device, dtype=settings.dtype)
    if "nli" in settings.metrics:
        nli = load_nli_model(
            settings.nli_model, settings.device, max_length=settings.nli_max_length, dtype=settings.dtype
        )
    return MetricModels(sbert=sbert, nli=nli)


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


def _embedding_scores(sets: list[list[int]], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SBERT diversity and Vendi for many sets of embedding rows, batched by set size."""
    sbert = np.full(len(sets), NAN)
    vendi = np.full(len(sets), NAN)
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, rows in enumerate(sets):
        by_size[len(rows)].append(i)
    emb = embeddings.astype(np.float64)
    for size, members in by_size.items():
        if size == 0:
            continue
        stacked = emb[np.asarray([sets[i] for i in members])]  # (b, m, d)
        g = stacked @ np.swapaxes(stacked, -1, -2)
        sbert[members] = sbert_diversity_from_gram(g)
        vendi[members] = vendi_from_gram(g)
    return sbert, vendi


def score_groups(
    groups: Sequence[PromptGroup],
    settings: DiversitySettings,
    models: MetricModels | None = None,
    *,
    correct: Sequence[Sequence[bool]] | None = None,
    progress: bool = False,
) -> TaskScores:
    """Score a whole task.

    Per prompt: every diversity metric on its CoT-stripped outputs, plus the exact-duplicate, empty and
    unclosed-think rates. A prompt with fewer than 2 outputs has undefined diversity (NaN, counted in
    ``diagnostics["n_undefined"]``), not 0. With ``correct`` (one bool per output), also SBERT over all outputs and
    SBERT/Vendi over the correct outputs of prompts with >= 2 correct (NaN otherwise).
    """
    models = models or MetricModels()
    metrics = tuple(settings.metrics)
    corpus_metrics = tuple(m for m in settings.corpus_metrics if m in metrics)
    if set(metrics) & set(EMBEDDING_METRICS) and models.sbert is None:
        raise ValueError("sbert/vendi requested but no sentence-embedding model was passed (MetricModels.sbert)")
    if "nli" in metrics and models.nli is None:
        raise ValueError("nli requested but no NLI model was passed (MetricModels.nli)")

    n = len(groups)
    stripped: list[list[str]] = []
    per_prompt: list[dict] = []
    for g in groups:
        diag = [strip_cot_with_diagnostics(o, g.think_opened) for o in g.outputs]
        texts = [d.text for d in diag]
        stripped.append(texts)
        size = len(texts)
        per_prompt.append(
            {
                "doc_id": g.doc_id,
                "n_outputs": size,
                "dup_rate": (size - len(set(texts))) / size if size else NAN,
                "empty_rate": sum(t == "" for t in texts) / size if size else NAN,
                "unclosed_think_rate": sum(d.unclosed_think for d in diag) / size if size else NAN,
            }
        )
    k = max((len(t) for t in stripped), default=0)
    defined = [len(t) >= 2 for t in stripped]
    n_short = sum(len(t) < k for t in stripped)
    if n_short:
        log.warning("%d of %d prompts have fewer than K=%d outputs; they are scored on what they have", n_short, n, k)
    if k < 2 and n:
        log.warning("K=%d output(s) per prompt: diversity is undefined; per-input metrics are reported as NaN", k)

    flat = [t for texts in stripped for t in texts]
    offsets = np.cumsum([0] + [len(t) for t in stripped])
    corpus_sets = corpus_sets_of(stripped, settings)
    first_flat, overall_pos = corpus_sets["across_input"], corpus_sets["overall"]

    values: dict[str, list[float]] = {m: [NAN] * n for m in metrics}
    corpus: dict[str, dict[str, float]] = {m: {"across_input": NAN, "overall": NAN} for m in metrics}

    if "ead" in metrics:
        values["ead"] = [ead(t, settings.vocab_size) if ok else NAN for t, ok in zip(stripped, defined)]
        if "ead" in corpus_metrics:
            for level, pos in corpus_sets.items():
                corpus["ead"][level] = ead([flat[p] for p in pos], settings.vocab_size)

    emb_rows: list[list[int]] | None = None
    if set(metrics) & set(EMBEDDING_METRICS):
        from lm_eval_diversity.models import embed_texts, unique_texts

        uniq = unique_texts(flat)
        embeddings = embed_texts(models.sbert, uniq.texts, settings.batch_size, progress=progress)
        flat_rows = [uniq.index[t] for t in flat]
        emb_rows = [flat_rows[offsets[i] : offsets[i + 1]] for i in range(n)]
        sets = [rows if ok else [] for rows, ok in zip(emb_rows, defined)]
        levels = [lvl for lvl in corpus_sets if set(corpus_metrics) & set(EMBEDDING_METRICS)]
        sets += [[flat_rows[p] for p in corpus_sets[lvl]] for lvl in levels]
        sb, vs = _embedding_scores(sets, embeddings)
        for name, arr in (("sbert", sb), ("vendi", vs)):
            if name in metrics:
                values[name] = [float(v) for v in arr[:n]]
                if name in corpus_metrics:
                    for j, lvl in enumerate(levels):
                        corpus[name][lvl] = float(arr[n + j])
        if correct is not None:
            _quality_filtered(per_prompt, emb_rows, embeddings, correct)

    if "nli" in metrics:
        nli_sets = nli_sets_of(groups, stripped, settings, corpus="nli" in corpus_metrics)
        scores = _nli_scores(nli_sets, models.nli, settings, progress)
        values["nli"] = [s if ok else NAN for s, ok in zip(scores[:n], defined)]
        if "nli" in corpus_metrics:
            corpus["nli"]["across_input"], corpus["nli"]["overall"] = scores[n], scores[n + 1]

    for lvl, pos in corpus_sets.items():
        if not pos:  # no text at all in the corpus sample (K = 0): undefined, never 0
            for m in metrics:
                corpus[m][lvl] = NAN
    summary: dict[str, dict[str, float]] = {}
    for m in metrics:
        mean, std = _mean_std(values[m])
        summary[m] = {"per_input_mean": mean, "per_input_std": std, **corpus[m]}
        for row, v in zip(per_prompt, values[m]):
            row[m] = v
    diagnostics = {
        "n_short": n_short,
        "short_doc_ids": [g.doc_id for g, t in zip(groups, stripped) if len(t) < k],
        "n_undefined": sum(not ok for ok in defined),
        "n_unclosed_think": sum(round(r["unclosed_think_rate"] * r["n_outputs"]) for r in per_prompt if r["n_outputs"]),
        "n_outputs": len(flat),
        "n_unique_outputs": len(set(flat)),
        "corpus_sample": {"across_input": len(first_flat), "overall": len(overall_pos)},
    }
    return TaskScores(n_prompts=n, k=k, metrics=summary, per_prompt=per_prompt, diagnostics=diagnostics)


def _quality_filtered(
    per_prompt: list[dict], emb_rows: list[list[int]], embeddings: np.ndarray, correct: Sequence[Sequence[bool]]
) -> None:
    """Add sbert_all, sbert_correct, vendi_correct, k_correct, computable to each prompt row (reference §6.1)."""
    if len(correct) != len(per_prompt):
        raise ValueError(f"correct has {len(correct)} prompts, expected {len(per_prompt)}")
    sets_all = [rows if len(rows) >= 2 else [] for rows in emb_rows]
    sets_corr = []
    for rows, flags, row in zip(emb_rows, correct, per_prompt):
        if len(flags) != len(rows):
            raise ValueError(f"doc_id {row['doc_id']}: {len(flags)} correctness flags for {len(rows)} outputs")
        chosen = [r for r, ok in zip(rows, flags) if ok]
        sets_corr.append(chosen if len(chosen) >= 2 else [])
    sb_all, _ = _embedding_scores(sets_all, embeddings)
    sb_corr, vs_corr = _embedding_scores(sets_corr, embeddings)
    for i, row in enumerate(per_prompt):
        computable = bool(sets_corr[i])
        row["k_correct"] = int(sum(correct[i]))
        row["computable"] = float(computable)
        row["sbert_all"] = float(sb_all[i]) if sets_all[i] else NAN
        row["sbert_correct"] = float(sb_corr[i]) if computable else NAN
        row["vendi_correct"] = float(vs_corr[i]) if computable else NAN


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


def _nli_scores(sets: list[tuple[list[str], object]], nli_model, settings: DiversitySettings, progress: bool):
    """D_NLI for many sets of outputs with one batched pass over the unique directional sentence pairs."""
    aligned = aligned_pairs_of(sets, settings)
    index = directional_pairs(aligned)
    w = nli_model.entail_minus_contradict(list(index), batch_size=settings.batch_size, progress=progress)
    return [float(nli_diversity(pairs, lambda a, b: w[index[(a, b)]])) for pairs in aligned]


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


QUALITY_KS = (1, 5, 10, 16)
CODE_TASKS = ("humaneval", "mbpp")
QUALITY_METRICS = ("acc", *(f"pass@{k}" for k in QUALITY_KS), "maj@K", "k_correct", "extraction_rate")
def quality_ks(k: int) -> tuple[int, ...]:
    """The k of pass@k reported for K samples: the protocol's (1, 5, 10, 16) and K itself."""
    return tuple(sorted({*QUALITY_KS, k})) if k >= 1 else QUALITY_KS


QFD_METRICS = ("sbert_all", "sbert_correct", "vendi_correct", "computable")
# IFEval beside the prompt-level strict accuracy (``acc``), named as lm-eval's ifeval task names them; output #0
IFEVAL_METRICS = ("prompt_level_loose_acc", "inst_level_strict_acc", "inst_level_loose_acc")


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
        if "sbert_all" not in row:  # embedding metrics not run: quality-filtered diversity undefined
            row.update({"sbert_all": NAN, "sbert_correct": NAN, "vendi_correct": NAN, "computable": NAN})
    for m in (*QUALITY_METRICS, *QFD_METRICS):
        mean, std = _mean_std([row[m] for row in scores.per_prompt])
        scores.metrics[m] = {"per_input_mean": mean, "per_input_std": std}
    if short == "ifeval":
        for row, vs in zip(scores.per_prompt, verdicts):
            row.update(ifeval_row_metrics(vs[0]) if vs else {})
        rows = [r for r in scores.per_prompt if "n_instructions" in r]
        mean, std = _mean_std([r["prompt_level_loose_acc"] for r in rows])
        scores.metrics["prompt_level_loose_acc"] = {"per_input_mean": mean, "per_input_std": std}
        total = sum(r["n_instructions"] for r in rows)
        for m in IFEVAL_METRICS[1:]:  # over all instructions of all prompts, as lm-eval aggregates them
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
