"""Checks a run makes before generation starts, and the metric models it shares between tasks.

Everything that could fail once the responses exist (model locations, the metric device, the NLI model's kind and
labels, the baseline run, the graders' libraries, code-execution isolation) is checked before the first request
reaches the model, so a bad setting or a missing dependency costs no generation. The metric models are loaded once
per process and shared by every task of a run.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue.tasks import find_task
from lm_eval_diversity.scoring_types import MetricModels
from lm_eval_diversity.settings import ENV_PREFIX, DiversitySettings

_MODEL_FIELDS = (
    "metrics", "sbert_model", "nli_model", "code_model", "device", "nli_max_length", "dtype", "backend",
    "quality_model", "quality_max_length",
)  # fmt: skip


@lru_cache(maxsize=4)
def _models(**fields):
    """Load metric models once per process (shared by every task of a run); ``fields``: :data:`_MODEL_FIELDS`."""
    from lm_eval_diversity.scoring import load_models

    return load_models(DiversitySettings(**fields))


def check_models_available(settings: DiversitySettings, sources: dict[str, str] | None = None) -> None:
    """Resolve the metric models' locations (no loading); raises ``ModelUnavailableError`` naming the setting
    the user gave (``--metadata sbert_model``, ``LM_EVAL_DIVERSITY_SBERT_MODEL``) or, for a default, the key."""
    sources = sources or {}
    for setting in catalogue.models_needed(settings.metrics):
        _resolve(getattr(settings, setting), sources.get(setting, f"--{setting} / --metadata {setting}"))


@lru_cache(maxsize=8)
def _resolve(name: str, setting: str) -> str:
    from lm_eval_diversity.models import resolve_model_path

    return resolve_model_path(name, setting)


def check_before_generation(task: str, settings: DiversitySettings, sources: dict[str, str] | None = None) -> None:
    """:func:`check_tasks_before_generation` for one task (lm-eval builds each task's requests in turn, all before
    the first request reaches the model)."""
    check_tasks_before_generation([task], settings, sources)


def check_tasks_before_generation(
    tasks: Iterable[str],
    settings: DiversitySettings,
    sources: dict[str, str] | None = None,
    *,
    code_execution: bool = True,
) -> None:
    """Everything that could fail once the responses exist, checked for every task of a run before generation
    starts: model locations, the metric device and backend, the NLI model's kind and labels, the reward model and
    its calibration, the baseline run, each grader's libraries (math-verify, lm-eval's IFEval checkers) and, for
    code tasks with ``code_execution``, a working sandbox. Errors name the setting as the user gave it (``sources``,
    from :func:`resolve_settings`).

    Plain ``lm_eval`` and ``run`` call it per task while lm-eval builds the requests; ``score`` for the tasks it
    read (``code_execution``: ``--confirm_run_unsafe_code``); a driver of several runs once, before any of them."""
    from lm_eval_diversity.models import check_backend, check_device, check_nli_config
    from lm_eval_diversity.quality.types import GradingOptions

    sources = sources or {}
    check_models_available(settings, sources)
    check_device(settings.device, sources.get("device", "--metric_device / --metadata metric_device"))
    if catalogue.models_needed(settings.metrics):  # its runtime's packages matter only where a model runs
        check_backend(settings.backend, settings.device, sources.get("backend", "--metric_backend"))
    if "nli_model" in catalogue.models_needed(settings.metrics):
        nli_source = sources.get("nli_model", "--nli_model / --metadata nli_model")
        check_nli_config(_resolve(settings.nli_model, nli_source), nli_source)
    for task in dict.fromkeys(tasks):
        if "quality_model" in catalogue.models_needed(settings.metrics):
            check_quality_model(task, settings, sources)
        record = find_task(task)
        if record is None or record.grader is None:
            continue
        if settings.baseline:
            baseline_run(settings.baseline)
        options = GradingOptions(
            math_mode=settings.math_mode,
            ifeval_mode=settings.ifeval_mode,
            code_mode=settings.code_mode,
            allow_code_execution=code_execution and record.runs_code,
        )
        record.grader.ready(task, options)


def check_quality_model(task: str, settings: DiversitySettings, sources: dict[str, str] | None = None) -> None:
    """The reward model is a one-output sequence classifier with a chat template, and the reference run (if any)
    recorded a calibration of this task with the same model (docs/quality.md)."""
    from lm_eval_diversity.models import check_reward_config
    from lm_eval_diversity.quality.reward import reference_calibration

    sources = sources or {}
    source = sources.get("quality_model", "--quality_model / --metadata quality_model")
    check_reward_config(_resolve(settings.quality_model, source), source)
    if settings.quality_reference:
        reference_calibration(settings.quality_reference, task, settings)


def models_for(settings: DiversitySettings) -> MetricModels:
    """The metric models these settings use, loaded on first use and shared by every task of the process."""
    return _models(**{f: getattr(settings, f) for f in _MODEL_FIELDS})


@lru_cache(maxsize=2)
def baseline_run(path: str):
    """The baseline model's run (``diversity_baseline``), loaded once per process; one model's output expected."""
    from lm_eval_diversity.runs import load_runs

    runs = load_runs(path)
    if len(runs) != 1:
        raise ValueError(
            f"{ENV_PREFIX}BASELINE={path!r}: expected the output of one model run, found {len(runs)} "
            f"({', '.join(r.label for r in runs)}); point it at one model's directory or score JSON"
        )
    return runs[0]
