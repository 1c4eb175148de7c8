"""The only module that touches lm-eval internals: task class, filter, process_results, aggregations, CLI hook.

Data path inside lm-eval: every doc's K responses (``repeats``) reach the ``diversity_metrics`` filter together
(one call per task), which scores the whole task in batched passes through :func:`score_groups` and returns one
small dict per doc; ``process_results`` turns it into per-doc metrics, aggregated by ``mean`` (per-input levels,
with stderr) or :func:`corpus_value` (across-input / overall levels, the same value carried by every doc).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Iterable
from functools import lru_cache

from lm_eval.api.filter import Filter
from lm_eval.api.registry import register_filter
from lm_eval.api.task import ConfigurableTask

from lm_eval_diversity import TASK_DIR
from lm_eval_diversity.quality import VERIFIABLE_TASKS
from lm_eval_diversity.scoring import QFD_METRICS, QUALITY_METRICS, MetricModels, PromptGroup, score_task
from lm_eval_diversity.settings import ENV_PREFIX, DiversitySettings
from lm_eval_diversity.tasks import DATA_DIR_ENV, max_docs

log = logging.getLogger(__name__)


class _DropCustomDatasetHint(logging.Filter):
    """lm-eval logs a generic ``--metadata`` hint for every task with a ``custom_dataset`` loader; ours need none."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("diversity_") and "Custom kwargs can be passed to `--metadata`" in message)


logging.getLogger("lm_eval.api.task").addFilter(_DropCustomDatasetHint())

FILTER_NAME = "diversity_metrics"
CORPUS_LEVELS = ("across_input", "overall")
# The harness computes the across-input/overall levels of NLI only on request: they cost ~4x per-input NLI.
HARNESS_CORPUS_METRICS = ("ead", "sbert", "vendi")
NO_COT_PREFIX = "<think>\n\n</think>\n\n"


def harness_settings(environ=None) -> DiversitySettings:
    """Settings for runs inside lm-eval: defaults, then ``LM_EVAL_DIVERSITY_*`` environment variables."""
    return DiversitySettings.from_env(DiversitySettings(corpus_metrics=HARNESS_CORPUS_METRICS), environ)


@lru_cache(maxsize=4)
def _models(
    sbert_model: str, nli_model: str, device: str | None, metrics: tuple[str, ...], nli_max_length: int, dtype: str
):
    """Load metric models once per process (shared by every task of a run)."""
    from lm_eval_diversity.scoring import load_models

    return load_models(
        DiversitySettings(
            metrics=metrics,
            sbert_model=sbert_model,
            nli_model=nli_model,
            device=device,
            nli_max_length=nli_max_length,
            dtype=dtype,
        )
    )


def check_models_available(settings: DiversitySettings) -> None:
    """Resolve the metric models' locations (no loading); raises ``ModelUnavailableError`` naming the setting."""
    if {"sbert", "vendi"} & set(settings.metrics):
        _resolve(settings.sbert_model, ENV_PREFIX + "SBERT_MODEL")
    if "nli" in settings.metrics:
        _resolve(settings.nli_model, ENV_PREFIX + "NLI_MODEL")


@lru_cache(maxsize=8)
def _resolve(name: str, setting: str) -> str:
    from lm_eval_diversity.models import resolve_model_path

    return resolve_model_path(name, setting)


def models_for(settings: DiversitySettings) -> MetricModels:
    return _models(
        settings.sbert_model,
        settings.nli_model,
        settings.device,
        settings.metrics,
        settings.nli_max_length,
        settings.dtype,
    )


class SamplingConfigError(ValueError):
    """Generation settings that would make the K samples identical or stale."""


def check_generation_kwargs(task: str, gen_kwargs: dict, repeats: int) -> list[str]:
    """Refuse settings that make the K samples identical; return warnings for the doubtful ones.

    Greedy decoding (``do_sample`` false, or temperature missing/0) gives K copies of one output; a per-request
    ``seed`` makes vLLM draw the K clones identically; ``n`` makes vLLM generate n sequences and keep one.
    """
    do_sample = gen_kwargs.get("do_sample")
    temperature = gen_kwargs.get("temperature")
    if not do_sample or temperature is None or float(temperature) <= 0:
        raise SamplingConfigError(
            f"{task}: generation_kwargs do_sample={do_sample!r}, temperature={temperature!r} decode greedily, so "
            f"the {repeats} samples per prompt would be identical; use --gen_kwargs do_sample=True,temperature=0.6"
        )
    for key, why in (
        ("seed", "a per-request seed makes every repeat of a prompt draw the same sample (vLLM)"),
        ("n", "vLLM would generate n sequences and the harness keeps only the first"),
    ):
        if key in gen_kwargs:
            raise SamplingConfigError(
                f"{task}: generation_kwargs contains {key!r}: {why}; remove it (vLLM engine seed: --model_args seed=N)"
            )
    warnings = []
    if repeats < 2:
        warnings.append(
            f"{task}: repeats={repeats}: diversity needs K >= 2 samples per prompt; diversity metrics will be NaN "
            "(undefined), not 0"
        )
    return warnings


class DiversityTask(ConfigurableTask):
    """A ``generate_until`` task with K samples per prompt and the diversity filter wired to its own name.

    Overrides taken from ``--metadata`` (JSON): ``repeats`` (K); ``no_cot`` (true: pre-fill an empty think block
    as the start of the answer, with ``--apply_chat_template``; a string: that pre-fill). Metric settings come
    from the ``LM_EVAL_DIVERSITY_*`` environment variables, recorded in ``config.metadata["diversity_settings"]``.
    """

    def __init__(self, config: dict | None = None, **kwargs) -> None:
        config = dict(config or {})
        config.pop("class", None)
        metadata = dict(config.get("metadata") or {})
        if "repeats" in metadata:
            config["repeats"] = _positive_int(metadata["repeats"], "--metadata repeats")
        elif os.environ.get(ENV_PREFIX + "REPEATS"):
            config["repeats"] = _positive_int(os.environ[ENV_PREFIX + "REPEATS"], ENV_PREFIX + "REPEATS")
        no_cot = metadata.get("no_cot", os.environ.get(ENV_PREFIX + "NO_COT"))
        if no_cot not in (None, "", False, "0", "false"):
            # pre-fill an empty thought so a reasoning model answers directly (the paper's no-CoT condition);
            # a string value is used as the pre-fill itself (e.g. "\n</think>\n" after a template's <think>)
            config["gen_prefix"] = NO_COT_PREFIX if no_cot in (True, "1", "true") else str(no_cot)
        settings = harness_settings()
        metadata["diversity_settings"] = settings.to_dict()
        # the prompt set: N (reference 500) and where the docs came from (None: the HF Hub)
        metadata["max_docs"] = max_docs()
        metadata["data_dir"] = os.environ.get(DATA_DIR_ENV) or None
        config["metadata"] = metadata
        config["filter_list"] = _wire_filters(config.get("filter_list"), config["task"], int(config.get("repeats", 1)))
        super().__init__(config=config, **kwargs)

    _predict_only = False

    def override_metric(self, metric_name: str) -> None:
        """``--predict_only`` (metric ``bypass``): log the K raw responses, compute nothing, load no model."""
        from lm_eval.filters import build_filter_ensemble

        super().override_metric(metric_name)
        self._predict_only = True
        self._filters = [build_filter_ensemble("div", [["take_first_k", {"k": self.config.repeats}]])]

    def build_all_requests(self, **kwargs) -> None:
        # --gen_kwargs from the CLI are merged into the config after construction, so check them here
        for warning in check_generation_kwargs(
            self.config.task, self.config.generation_kwargs or {}, self.config.repeats
        ):
            log.warning(warning)
        if not self._predict_only:
            check_models_available(harness_settings())  # fail before generation, not after it
        if kwargs.get("cache_requests") and not kwargs.get("rewrite_requests_cache"):
            log.warning(
                "%s: --cache_requests reuses requests built earlier, whose cache key ignores repeats and "
                "generation_kwargs; after changing K or sampling settings use --cache_requests refresh",
                self.config.task,
            )
        super().build_all_requests(**kwargs)


def _positive_int(value, setting: str) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{setting}={value!r}: expected a positive integer") from None
    if k < 1:
        raise ValueError(f"{setting}={value!r}: expected a positive integer")
    return k


def _wire_filters(filter_list, task: str, repeats: int):
    """Give the diversity filter its task name and K (filters never see the task otherwise)."""
    wired = []
    for pipeline in filter_list or []:
        steps = []
        for step in pipeline["filter"]:
            step = dict(step)
            if step.get("function") == FILTER_NAME:
                step.setdefault("task", task)
                step["k"] = repeats
            steps.append(step)
        wired.append({**pipeline, "filter": steps})
    return wired


@register_filter(FILTER_NAME)
class DiversityMetricsFilter(Filter):
    """Score all docs of a task at once; return one dict of per-doc metrics (and corpus values) per doc.

    Only the first ``k`` responses of a doc are used (multi-GPU padding can append extra ones).
    """

    def __init__(self, task: str = "", k: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.k = k

    def apply(self, resps: Iterable[list[str]], docs: list[dict]) -> list[dict]:
        resps = [list(r)[: self.k] if self.k else list(r) for r in resps]
        settings = harness_settings()
        groups = [PromptGroup(doc_id=i, outputs=outputs, doc=doc) for i, (outputs, doc) in enumerate(zip(resps, docs))]
        # lm-eval itself refuses unsafe_code tasks (humaneval, mbpp) without --confirm_run_unsafe_code
        scores = score_task(
            self.task, groups, settings, models_for(settings), graded_tasks=VERIFIABLE_TASKS, allow_code_execution=True
        )
        corpus = {
            f"{m}_{lvl}": levels[lvl]
            for m, levels in scores.metrics.items()
            if m in settings.corpus_metrics
            for lvl in CORPUS_LEVELS
        }
        # the payload is logged with every sample: keep it to per-doc numbers (lm-eval's doc_id is logged anyway)
        if settings.baseline and self.task.removeprefix("diversity_") in VERIFIABLE_TASKS:
            corpus.update(baseline_split(self.task, scores.per_prompt, settings.baseline))
        return [{**{k: v for k, v in row.items() if k != "doc_id"}, **corpus} for row in scores.per_prompt]


@lru_cache(maxsize=2)
def _baseline_run(path: str):
    from lm_eval_diversity.compare import load_runs

    runs = load_runs(path)
    if len(runs) != 1:
        raise ValueError(
            f"{ENV_PREFIX}BASELINE={path!r}: expected the output of one model run, found {len(runs)} "
            f"({', '.join(r.label for r in runs)}); point it at one model's directory or score JSON"
        )
    return runs[0]


def baseline_split(task: str, model_rows: list[dict], baseline: str) -> dict[str, float]:
    """``loss_/residual_/qc_`` for sbert and vendi of this run against the baseline's per-prompt values.

    Prompts are matched on lm-eval's ``doc_id``; ids present in one run only are reported in a warning.
    """
    from lm_eval_diversity.analysis import split_from_prompts

    nan = {f"{part}_{m}": math.nan for m in ("sbert", "vendi") for part in ("loss", "residual", "qc")}
    td = _baseline_run(baseline).tasks.get(task)
    if td is None or not td.per_prompt:
        log.warning("%s: baseline %s has no per-prompt values for this task; no QC/residual split", task, baseline)
        return nan
    out = {}
    for metric in ("sbert", "vendi"):
        split = split_from_prompts(td.per_prompt, model_rows, metric)
        if split["ids_only_base"] or split["ids_only_model"]:
            log.warning(
                "%s: baseline and run differ in prompts: %d doc ids only in the baseline, %d only in this run; "
                "the split uses the %d common prompts",
                task, len(split["ids_only_base"]), len(split["ids_only_model"]), split["n_common"],
            )  # fmt: skip
        out.update({f"{part}_{metric}": split[part] for part in ("loss", "residual", "qc")})
    return out


def process_results(doc: dict, results: list) -> dict[str, float]:
    """Per-doc metric values from the filter's payload; metrics that were not run are NaN (never 0)."""
    payload = results[0]
    if not isinstance(payload, dict):
        raise TypeError(
            f"diversity tasks expect the {FILTER_NAME!r} filter's dict payload, got {type(payload).__name__}; "
            "keep the task's filter_list as shipped"
        )
    names = _METRIC_NAMES + (_QUALITY_NAMES if "acc" in payload else ())
    return {name: float(payload.get(name, math.nan)) for name in names}


_METRIC_NAMES = (
    "ead",
    "sbert",
    "vendi",
    "nli",
    *(f"{m}_{lvl}" for m in ("ead", "sbert", "vendi", "nli") for lvl in CORPUS_LEVELS),
    "dup_rate",
    "empty_rate",
    "unclosed_think_rate",
)
# verifiable tasks: quality, quality-filtered diversity and (with a baseline) the QC/residual split
_QUALITY_NAMES = (
    *(m for m in QUALITY_METRICS if m != "extraction_rate"),
    *QFD_METRICS,
    *(f"{part}_{m}" for m in ("sbert", "vendi") for part in ("loss", "residual", "qc")),
)


TWO_PASS_NOTE = "see two-pass flow: --predict_only, then lm-eval-diversity score (docs/scale.md)"


def corpus_value(items: list[float]) -> float | str:
    """Aggregation of a task-level value that every doc carries identically (across-input / overall levels).

    NaN when it was not computed. In a multi-process run (``WORLD_SIZE`` > 1, or docs that disagree because the
    filter ran per rank on part of the task) no process saw the whole task, so no task-level number exists: the
    result is :data:`TWO_PASS_NOTE`, a pointer to the flow that computes it (groups never average these metrics).
    """
    values = [float(v) for v in items]
    if not values or all(math.isnan(v) for v in values):
        return math.nan
    first = values[0]
    multi_rank = int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
    if multi_rank or any(v != first for v in values):
        log.warning(
            "corpus-level value computed per rank (multi-process run): not a task-level number; "
            "generate with --predict_only and score the logged samples with `lm-eval-diversity score`"
        )
        return TWO_PASS_NOTE
    return first


def nanmean(items: list[float]) -> float:
    """Mean over the docs where a value is defined (e.g. diversity among correct outputs needs >= 2 correct)."""
    values = [float(v) for v in items if not math.isnan(float(v))]
    return sum(values) / len(values) if values else math.nan


# ---------------------------------------------------------------- the lm-eval CLI with our tasks


def task_manager(include_path=None, **kwargs):
    """A ``TaskManager`` that also sees the diversity tasks (use it with ``simple_evaluate(task_manager=...)``)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=_with_task_dir(include_path), **kwargs)


def _with_task_dir(include_path) -> list[str]:
    paths = (
        []
        if include_path is None
        else [include_path]
        if isinstance(include_path, (str, os.PathLike))
        else list(include_path)
    )
    # our directory first, so that a user's --include_path can override our tasks (later roots win)
    return [str(TASK_DIR), *[str(p) for p in paths if str(p) != str(TASK_DIR)]]


_OWN_FLAGS = {
    "--sbert_model": "SBERT_MODEL",
    "--nli_model": "NLI_MODEL",
    "--metric_device": "DEVICE",
    "--metric_dtype": "DTYPE",
    "--metric_batch_size": "BATCH_SIZE",
    "--diversity_metrics": "METRICS",
    "--corpus_metrics": "CORPUS_METRICS",
    "--vocab_size": "VOCAB_SIZE",
    "--diversity_seed": "SEED",
    "--repeats": "REPEATS",
    "--data_dir": "DATA_DIR",
    "--diversity_baseline": "BASELINE",
    "--no_cot": "NO_COT",
}


def split_own_flags(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Separate our metric flags (turned into ``LM_EVAL_DIVERSITY_*`` variables) from lm-eval's own."""
    rest, env = [], {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _OWN_FLAGS:
            if not eq:
                if i + 1 >= len(argv):
                    raise SystemExit(f"lm-eval-diversity: {name} needs a value")
                value = argv[i + 1]
                i += 1
            env[ENV_PREFIX + _OWN_FLAGS[name]] = value
        else:
            rest.append(arg)
        i += 1
    return rest, env


class DataParallelError(ValueError):
    """vLLM data parallelism would repeat samples across replicas."""


def check_data_parallel(argv: list[str]) -> None:
    """Refuse vLLM ``data_parallel_size`` > 1: every replica starts from the same engine seed and lm-eval deals the
    K clones of a prompt across replicas, so replicas can draw identical samples (only K/dp distinct)."""
    model, model_args = None, ""
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in ("--model", "--model_args") and not eq and i + 1 < len(argv):
            value = argv[i + 1]
        if name == "--model":
            model = value
        elif name == "--model_args":
            model_args = value
    if model != "vllm":
        return
    for part in model_args.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "data_parallel_size" and value.strip() not in ("", "1"):
            raise DataParallelError(
                f"--model_args data_parallel_size={value.strip()}: vLLM replicas share one engine seed, so the K "
                "samples of a prompt can repeat across replicas. Use tensor_parallel_size for one model over "
                "several GPUs, or `lm-eval-diversity sweep` to shard prompts over GPUs with a distinct seed each "
                "(docs/scale.md)"
            )


def run_lm_eval_cli(argv: list[str]) -> int:
    """Run lm-eval's own CLI (same subcommands and flags) with the diversity tasks and registrations loaded."""
    import lm_eval.tasks
    from lm_eval.__main__ import cli_evaluate

    argv, env = split_own_flags(argv)
    try:
        check_data_parallel(argv)
    except DataParallelError as exc:
        print(f"lm-eval-diversity: error: {exc}", file=sys.stderr)
        return 2
    base = lm_eval.tasks.TaskManager

    class DiversityTaskManager(base):
        def __init__(self, *args, include_path=None, **kwargs):
            super().__init__(*args, include_path=_with_task_dir(include_path), **kwargs)

    saved_env = {k: os.environ.get(k) for k in env}
    old_argv = sys.argv
    os.environ.update(env)
    # lm-eval's run/ls/validate import TaskManager from lm_eval.tasks at call time
    lm_eval.tasks.TaskManager = DiversityTaskManager
    sys.argv = ["lm-eval-diversity", *argv]
    try:
        harness_settings()  # fail now, naming the variable, on a bad setting
        cli_evaluate()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except ValueError as exc:  # bad settings, unknown tasks, greedy sampling...: say what, no traceback
        print(f"lm-eval-diversity: error: {exc}", file=sys.stderr)
        return 2
    finally:
        sys.argv = old_argv
        lm_eval.tasks.TaskManager = base
        for k, v in saved_env.items():  # leave the caller's environment as it was
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return 0


# ---------------------------------------------------------------- generation shards (the sweep)


def task_doc_count(task: str, data_dir: str | None = None) -> int:
    """Number of documents of one of our tasks after its own selection (the reference's N)."""
    from lm_eval.tasks import get_task_dict

    with _environ({DATA_DIR_ENV: data_dir} if data_dir else {}):
        task_obj = get_task_dict([task], task_manager(include_defaults=False))[task]
        return len(task_obj.eval_docs)


def generate_samples(
    model: str,
    model_args: str,
    task: str,
    doc_ids: list[int],
    *,
    repeats: int,
    seed: int,
    gen_kwargs: dict | None = None,
    batch_size: str | int = 1,
    device: str | None = None,
    apply_chat_template: bool = False,
    data_dir: str | None = None,
) -> list[dict]:
    """K samples for the docs ``doc_ids`` of ``task`` through ``simple_evaluate`` (``samples`` selection,
    ``predict_only``), every seed slot set to ``seed``; returns the logged sample records (JSON-safe).

    lm-eval logs each record under its index in the task (the selection is passed sorted, so the mapping holds).
    """
    import json

    import lm_eval
    from lm_eval.utils import handle_non_serializable

    with _environ({DATA_DIR_ENV: data_dir} if data_dir else {}):
        res = lm_eval.simple_evaluate(
            model=model,
            model_args=model_args,
            tasks=[task],
            task_manager=task_manager(include_defaults=False, metadata={"repeats": repeats}),
            samples={task: sorted(doc_ids)},
            predict_only=True,
            log_samples=True,
            bootstrap_iters=0,
            gen_kwargs=dict(gen_kwargs) if gen_kwargs else None,
            batch_size=batch_size,
            device=device,
            apply_chat_template=apply_chat_template,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
    records = res["samples"][task]
    return json.loads(json.dumps(records, default=handle_non_serializable, ensure_ascii=False))


class _environ:
    """Set environment variables for a block and restore them after."""

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)
        return self

    def __exit__(self, *exc) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
