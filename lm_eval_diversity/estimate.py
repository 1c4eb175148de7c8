"""The metric work of a run before paying for it: unique texts, NLI pairs per level, and a calibrated time.

Two sources of counts:

* :func:`measured_work` from generated outputs (``score --estimate``): exact, with the same CoT stripping,
  corpus subsets and sentence sampling as scoring;
* :func:`planned_work` before generation (the harness log): upper bounds from N prompts and K samples, taking
  every output as unique and every output pair as having ``nli_max_sentences`` aligned sentences.

Times come from :func:`calibrate`, a few seconds of the loaded models on a sample of the run's own texts and
sentence pairs on the current device, extrapolated linearly (texts/s, pairs/s). Nothing here changes a number.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.metrics.nli import split_sentences
from lm_eval_diversity.settings import DiversitySettings

NLI_LEVELS = ("per_input", "across_input", "overall")


@dataclass
class Work:
    """Model work of one task. ``nli_pairs[level]``: unique directional sentence pairs (forward passes)."""

    task: str
    n_prompts: int
    k: int
    n_outputs: int
    unique_texts: int
    nli_pairs: dict[str, int] = field(default_factory=dict)
    cluster_pairs: int = 0  # unique directional whole-output pairs of the semantic clusters (per prompt)
    exact: bool = True  # False: upper bounds before generation
    sample_texts: list[str] = field(default_factory=list, repr=False)
    sample_pairs: list[tuple[str, str]] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class Rates:
    """Throughput measured on the current device (None: that model was not calibrated)."""

    device: str
    texts_per_s: float | None = None
    pairs_per_s: float | None = None


def _pairs_bound(m: int, max_sentences: int) -> int:
    return m * (m - 1) // 2 * max_sentences * 2


def planned_work(task: str, n_prompts: int, k: int, settings: DiversitySettings) -> Work:
    """Upper bounds before generation: N*K unique texts; every output pair aligned on ``nli_max_sentences``."""
    n_outputs = n_prompts * k
    size = settings.corpus_sample_size
    pairs = {
        "per_input": n_prompts * _pairs_bound(k, settings.nli_max_sentences),
        "across_input": _pairs_bound(min(n_prompts, size), settings.nli_max_sentences),
        "overall": _pairs_bound(min(n_outputs, size), settings.nli_max_sentences),
    }
    return Work(task, n_prompts, k, n_outputs, n_outputs, pairs, n_prompts * k * (k - 1), exact=False)


def measured_work(task: str, groups: Sequence, settings: DiversitySettings, sample_size: int = 256) -> Work:
    """Exact work of a task's outputs (prompt groups), with a random sample of its texts and pairs to calibrate."""
    from lm_eval_diversity.metrics.semantic import cluster_pairs
    from lm_eval_diversity.passes import aligned_pairs_of, directional_pairs, nli_sets_of
    from lm_eval_diversity.preprocess import strip_cot

    stripped = [[strip_cot(o) for o in g.outputs] for g in groups]
    unique = list(dict.fromkeys(t for texts in stripped for t in texts))
    sets = nli_sets_of(groups, stripped, settings, corpus=True)
    aligned = aligned_pairs_of(sets, settings)
    n = len(groups)
    pairs = {
        "per_input": len(directional_pairs(aligned[:n])),
        "across_input": len(directional_pairs(aligned[n : n + 1])),
        "overall": len(directional_pairs(aligned[n + 1 :])),
    }
    rng = random.Random(0)
    all_pairs = list(directional_pairs(aligned[:n]))
    return Work(
        task,
        n,
        max((len(t) for t in stripped), default=0),
        sum(len(t) for t in stripped),
        len(unique),
        pairs,
        len(cluster_pairs([texts for texts in stripped if len(texts) >= 2])),
        exact=True,
        sample_texts=rng.sample(unique, min(sample_size, len(unique))),
        sample_pairs=rng.sample(all_pairs, min(sample_size, len(all_pairs))),
    )


def stand_in_samples(prompts: Sequence[str], sample_size: int = 64) -> tuple[list[str], list[tuple[str, str]]]:
    """Calibration inputs before generation, from a task's prompts: long texts (several prompts joined, so the
    embedding model's length cap is reached, an upper bound) and pairs of consecutive prompt sentences."""
    sentences = [s for p in prompts for s in split_sentences(p)] or ["An answer."]
    texts = [" ".join(sentences[i : i + 16]) for i in range(0, max(1, len(sentences)), 16)][:sample_size]
    pairs = [(sentences[i], sentences[(i + 1) % len(sentences)]) for i in range(min(sample_size, len(sentences)))]
    return texts, pairs


def calibrate(
    models, texts: Sequence[str], pairs: Sequence[tuple[str, str]], settings: DiversitySettings, budget_s: float = 3.0
) -> Rates:
    """Texts/s and pairs/s of the loaded models on samples, each within about ``budget_s`` seconds.

    One batch is run first as a warm-up (not timed); then batches are timed until the budget or the sample runs
    out.
    """
    from lm_eval_diversity.models import embed_texts, resolve_device

    def rate(run, items: Sequence) -> float | None:
        items = list(items)
        if not items:
            return None
        bs = settings.batch_size
        run(items[: min(bs, 8)])
        done, spent = 0, 0.0
        rest = items[bs:] or items[:bs]
        for start in range(0, len(rest), bs):
            batch = rest[start : start + bs]
            t0 = time.perf_counter()
            run(batch)
            spent += time.perf_counter() - t0
            done += len(batch)
            if spent >= budget_s:
                break
        return done / spent if spent > 0 else None

    texts_per_s = pairs_per_s = None
    if getattr(models, "sbert", None) is not None:
        texts_per_s = rate(lambda b: embed_texts(models.sbert, b, settings.batch_size), texts)
    if getattr(models, "nli", None) is not None:
        pairs_per_s = rate(lambda b: models.nli.entail_minus_contradict(b, settings.batch_size), pairs)
    return Rates(resolve_device(settings.device), texts_per_s, pairs_per_s)


def _duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "time unknown"
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"~{hours:.1f} h" if hours < 100 else f"~{hours:,.0f} h"


def _secs(count: int, per_s: float | None) -> float | None:
    return count / per_s if per_s else None


def format_work(works: Sequence[Work], settings: DiversitySettings, rates: Rates | None = None) -> str:
    """Human-readable lines: per task, then the total by phase; NLI corpus levels as a multiple of per-input."""
    rates = rates or Rates(device="?")
    bound = "" if all(w.exact for w in works) else "at most "
    lines = []
    needed = catalogue.models_needed(settings.metrics)
    embed = "sbert_model" in needed
    kinds = {catalogue.record(m).kind for m in settings.metrics}
    nli = "nli_pairs" in kinds
    clusters = "nli_matrix" in kinds
    nli_corpus = nli and bool(set(catalogue.metrics_using("nli_model")) & set(settings.corpus_metrics))
    for w in works:
        parts = [f"{w.task}: {w.n_prompts} prompts x K={w.k}"]
        if embed:
            parts.append(f"{bound}{w.unique_texts:,} unique texts to embed")
        if nli:
            parts.append(
                "NLI pairs " + ", ".join(f"{lvl} {bound}{w.nli_pairs[lvl]:,}" for lvl in NLI_LEVELS)
                + ("" if nli_corpus else " (corpus levels not requested)")
            )  # fmt: skip
        if clusters:
            parts.append(f"semantic-cluster pairs {bound}{w.cluster_pairs:,}")
        lines.append("; ".join(parts))
    total_texts = sum(w.unique_texts for w in works)
    per_input = sum(w.nli_pairs.get("per_input", 0) for w in works)
    corpus = sum(w.nli_pairs.get("across_input", 0) + w.nli_pairs.get("overall", 0) for w in works)
    phases = []
    total_s = 0.0
    if embed:
        s = _secs(total_texts, rates.texts_per_s)
        rate = f"{rates.texts_per_s:.3g} texts/s" if rates.texts_per_s else "not calibrated"
        phases.append(f"embedding {bound}{total_texts:,} texts: {_duration(s)} ({rate})")
        total_s += s or 0.0
    if nli:
        s = _secs(per_input, rates.pairs_per_s)
        rate = f"{rates.pairs_per_s:.3g} pairs/s" if rates.pairs_per_s else "not calibrated"
        phases.append(f"NLI per-input {bound}{per_input:,} pairs: {_duration(s)} ({rate})")
        total_s += s or 0.0
        ratio = f"{corpus / per_input:.1f}x" if per_input else "n/a"
        cs = _secs(corpus, rates.pairs_per_s)
        label = "NLI corpus levels" if nli_corpus else "NLI corpus levels (not requested; --corpus_metrics nli)"
        phases.append(f"{label} {bound}{corpus:,} pairs: {ratio} the per-input work, {_duration(cs)}")
        if nli_corpus:
            total_s += cs or 0.0
    if clusters:
        n_clusters = sum(w.cluster_pairs for w in works)
        s = _secs(n_clusters, rates.pairs_per_s)
        phases.append(
            f"NLI semantic clusters {bound}{n_clusters:,} whole-output pairs: {_duration(s)} at the sentence-pair "
            "rate (whole outputs are longer: a lower bound)"
        )
        total_s += s or 0.0
    uncalibrated = (embed and not rates.texts_per_s) or ((nli or clusters) and not rates.pairs_per_s)
    head = f"metric work, {len(works)} task(s), device {rates.device}"
    total = "time unknown (not calibrated)" if uncalibrated else _duration(total_s)
    return "\n".join([f"{head}: {total} in all", *(f"  {p}" for p in phases), *(f"  {line}" for line in lines)])


def estimate_samples(groups_by_task: dict[str, Sequence], settings: DiversitySettings, models) -> str:
    """``score --estimate``: exact work of logged outputs and a calibrated time, without scoring."""
    works = [measured_work(task, groups, settings) for task, groups in groups_by_task.items()]
    rng = random.Random(0)
    texts = [t for w in works for t in w.sample_texts]
    pairs = [p for w in works for p in w.sample_pairs]
    texts = rng.sample(texts, min(256, len(texts)))
    pairs = rng.sample(pairs, min(256, len(pairs)))
    return format_work(works, settings, calibrate(models, texts, pairs, settings))


_RATES: dict[tuple, Rates] = {}


def harness_estimate(task: str, prompts: Sequence[str], k: int, settings: DiversitySettings, load_models) -> str:
    """The pre-generation log line of one task: upper bounds, timed with rates calibrated once per process (on
    stand-ins built from the first task's prompts, ``load_models(settings)`` giving the run's loaded models)."""
    key = (settings.sbert_model, settings.nli_model, settings.device, settings.dtype, settings.backend,
           settings.metrics, settings.batch_size)  # fmt: skip
    if key not in _RATES:
        texts, pairs = stand_in_samples(prompts)
        _RATES[key] = calibrate(load_models(settings), texts, pairs, settings, budget_s=1.5)
    return format_work([planned_work(task, len(prompts), k, settings)], settings, _RATES[key])
