"""Reward-model quality of one task: every output's reward, and the calibration that turns rewards into ratings
and acceptable flags (docs/quality.md, "Reward model").

The calibration comes from a reference run: by default this run itself, or the ``score`` JSON named by
``quality_reference`` (the baseline), which records each task's calibration in ``diagnostics.reward``. A split
between two runs is only meaningful when both use the same calibration, so the baseline is scored first and the
other runs read its calibration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.metrics.reward import (
    NOVELTYBENCH_PATIENCE,
    NOVELTYBENCH_ROUGE1_THRESHOLD,
    acceptable_threshold,
    rating_cutoffs,
    ratings,
)
from lm_eval_diversity.settings import DiversitySettings

THIS_RUN = "this run"


@dataclass(frozen=True)
class Calibration:
    """The scale of one task's rewards: the 9 rating cut-offs, the acceptable threshold and how it was set."""

    model: str
    cutoffs: tuple[float, ...]
    threshold: float
    rule: str  # "quantile" (of the reference rewards) or "absolute"
    quantile: float | None
    source: str  # THIS_RUN or the reference score JSON
    n_reference_outputs: int

    def to_dict(self) -> dict:
        out = asdict(self)
        out["cutoffs"] = list(self.cutoffs)
        return out


class QualityReferenceError(ValueError):
    """The reference score JSON cannot calibrate this run; the message names the file and the task."""


@lru_cache(maxsize=4)
def _reference_json(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise QualityReferenceError(f"quality_reference {path}: cannot read the score JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise QualityReferenceError(f"quality_reference {path}: not a `lm-eval-diversity score` JSON (no 'tasks')")
    return data


def reference_calibration(path: str, task: str, settings: DiversitySettings) -> Calibration:
    """The calibration a reference score JSON recorded for ``task``, checked against these settings (same reward
    model; the same quantile when the threshold is a quantile)."""
    data = _reference_json(path)
    entry = next((e for t, e in data["tasks"].items() if short_name(t) == short_name(task)), None)
    recorded = ((entry or {}).get("diagnostics") or {}).get("reward") if isinstance(entry, dict) else None
    if not isinstance(recorded, dict) or "calibration" not in recorded:
        raise QualityReferenceError(
            f"quality_reference {path}: no reward calibration for {task} (score that run with --quality_model first)"
        )
    cal = recorded["calibration"]
    if cal.get("model") != settings.quality_model:
        raise QualityReferenceError(
            f"quality_reference {path}: {task} was scored with reward model {cal.get('model')!r}, this run uses "
            f"{settings.quality_model!r}; ratings of different reward models are not comparable"
        )
    if settings.quality_threshold is None and cal.get("quantile") != settings.quality_quantile:
        raise QualityReferenceError(
            f"quality_reference {path}: {task} has its threshold at quantile {cal.get('quantile')}, this run asks "
            f"quality_quantile={settings.quality_quantile}"
        )
    return Calibration(
        model=cal["model"],
        cutoffs=tuple(float(c) for c in cal["cutoffs"]),
        threshold=float(settings.quality_threshold if settings.quality_threshold is not None else cal["threshold"]),
        rule="absolute" if settings.quality_threshold is not None else "quantile",
        quantile=None if settings.quality_threshold is not None else cal.get("quantile"),
        source=str(path),
        n_reference_outputs=int(cal.get("n_reference_outputs", 0)),
    )


def calibrate(task: str, rewards: Sequence[float], settings: DiversitySettings) -> Calibration:
    """This task's calibration: the reference JSON's (``quality_reference``), else this run's own rewards."""
    if settings.quality_reference:
        return reference_calibration(settings.quality_reference, task, settings)
    absolute = settings.quality_threshold is not None
    threshold = settings.quality_threshold if absolute else acceptable_threshold(rewards, settings.quality_quantile)
    return Calibration(
        model=str(settings.quality_model),
        cutoffs=tuple(rating_cutoffs(rewards)),
        threshold=float(threshold),
        rule="absolute" if absolute else "quantile",
        quantile=None if absolute else settings.quality_quantile,
        source=THIS_RUN,
        n_reference_outputs=len(rewards),
    )


@dataclass
class TaskRewards:
    """Per flat output (the task's outputs, prompt after prompt): reward, rating 1-10, acceptable flag."""

    rewards: np.ndarray
    ratings: np.ndarray
    acceptable: np.ndarray
    calibration: Calibration
    diagnostics: dict


def prompt_texts(task: str, groups: Sequence) -> list[str]:
    """The user turn of each prompt: the task's prompt (lm-eval's ``doc_to_text``) of the logged doc."""
    from lm_eval_diversity.catalogue.tasks import find_task

    record = find_task(task)
    if record is None:
        raise ValueError(f"{task}: not a diversity task; the reward model needs its prompts (doc_to_text)")
    missing = [g.doc_id for g in groups if not isinstance(g.doc, dict)]
    if missing:
        raise ValueError(f"{task}: docs {missing[:5]} are missing from the samples; the reward model needs prompts")
    return [record.prompt(g.doc) for g in groups]


def task_rewards(
    task: str, groups: Sequence, stripped: Sequence[Sequence[str]], model, settings: DiversitySettings, progress: bool
) -> TaskRewards:
    """Score every output of a task with the reward model (each distinct (prompt, output) once, batched by token
    count) and calibrate: ratings against the reference deciles, acceptable against the threshold."""
    prompts = prompt_texts(task, groups)
    pairs = [(p, t) for p, texts in zip(prompts, stripped) for t in texts]
    if not pairs:
        raise ValueError(f"{task}: no outputs to score with the reward model")
    before = getattr(model, "n_truncated", 0)
    rewards = model.rewards(pairs, batch_size=settings.batch_size, progress=progress)
    cal = calibrate(task, rewards, settings)
    item_ratings = ratings(rewards, cal.cutoffs)
    diagnostics = {
        "calibration": cal.to_dict(),
        "n_outputs": len(pairs),
        "n_distinct": len(set(pairs)),
        "n_truncated": getattr(model, "n_truncated", 0) - before,
        "max_length": settings.quality_max_length,
        "patience": NOVELTYBENCH_PATIENCE,
        "equivalence": f"ROUGE-1 F1 > {NOVELTYBENCH_ROUGE1_THRESHOLD} (NoveltyBench unigram) or identical text",
        "rating": "1 + number of reference deciles below the reward",
    }
    return TaskRewards(rewards, item_ratings, rewards >= cal.threshold, cal, diagnostics)
