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
import re
import sys
from collections.abc import Iterable
from functools import lru_cache

from lm_eval.api.filter import Filter
from lm_eval.api.registry import register_filter
from lm_eval.api.task import ConfigurableTask

from lm_eval_diversity import TASK_DIR, TASKS_DISCOVERED
from lm_eval_diversity.quality import VERIFIABLE_TASKS
from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_task
from lm_eval_diversity.settings import (
    COMMAND_DEFAULTS,
    DIVERSITY_METRICS,
    ENV_PREFIX,
    DiversitySettings,
    field_help,
    metadata_keys,
    parse_bool,
    public_name,
    resolve_settings,
    settings_fields,
)
from lm_eval_diversity.tasks import max_docs

log = logging.getLogger(__name__)


class _DropCustomDatasetHint(logging.Filter):
    """lm-eval logs a generic ``--metadata`` hint for every task with a ``custom_dataset`` loader; ours need none."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("diversity_") and "Custom kwargs can be passed to `--metadata`" in message)


logging.getLogger("lm_eval.api.task").addFilter(_DropCustomDatasetHint())

FILTER_NAME = "diversity_metrics"
CORPUS_LEVELS = ("across_input", "overall")
NO_COT_PREFIX = "<think>\n\n</think>\n\n"

# settings of a run that are not metric settings: --metadata key -> what it does (docs/settings.md)
TASK_KEYS = {
    "repeats": "K, samples per prompt",
    "no_cot": "true: pre-fill an empty think block (with --apply_chat_template); a string: that pre-fill",
    "data_dir": "directories with local JSON-lines copies of the datasets (os.pathsep-separated)",
    "all_metrics": "true: report every metric of the task, also those undefined for this run (NaN/null)",
}
# keys lm-eval itself puts into a task's metadata
_LM_EVAL_KEYS = frozenset({"version", "config_source", "_metadata", "config"})
# keys this module records into the metadata (read back when a config is re-loaded)
_RECORDED_KEYS = frozenset({"diversity_settings", "max_docs", "metrics_shown"})


class SettingsError(ValueError):
    """A diversity setting given through --metadata or the environment is invalid or unknown."""


def check_metadata_keys(metadata: dict, *, exact: bool = False) -> None:
    """Refuse ``--metadata`` keys meant for this package that it does not know.

    lm-eval merges ``--model_args`` into the task metadata, so inside a task a key may be a model argument: there
    a key is refused only when it looks like one of ours (our prefixes, or a near-miss of a known key; the cutoff
    lets common model arguments such as ``max_length`` through). With
    ``exact`` (the ``--metadata`` JSON itself, seen by ``lm-eval-diversity run``) every unknown key is refused.
    """
    import difflib

    known = set(metadata_keys()) | set(TASK_KEYS)
    for key in metadata:
        if key in known or key in _LM_EVAL_KEYS or key in _RECORDED_KEYS:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.85)
        ours = key.startswith(("diversity_", "metric_", "corpus_", "sbert_", "nli_"))
        if exact or close or ours:
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SettingsError(
                f"unknown --metadata key {key!r}{hint} (diversity settings: {', '.join(sorted(known))}; "
                "see docs/settings.md)"
            )


def harness_settings(metadata: dict | None = None, environ=None) -> DiversitySettings:
    """Settings for runs inside lm-eval: ``--metadata`` keys, then ``LM_EVAL_DIVERSITY_*`` variables, then defaults."""
    return resolve_settings(metadata or {}, COMMAND_DEFAULTS, environ)[0]


def _task_setting(metadata: dict, key: str, environ=None):
    """A run setting that is not a metric setting: ``--metadata`` key first, then its environment variable."""
    env = os.environ if environ is None else environ
    if key in metadata:
        return metadata[key], f"--metadata {key}"
    raw = env.get(ENV_PREFIX + key.upper())
    return (raw, ENV_PREFIX + key.upper()) if raw not in (None, "") else (None, None)


@lru_cache(maxsize=4)
def _models(sbert_model: str, nli_model: str, device: str | None, metrics: tuple[str, ...], nli_max_length: int):
    """Load metric models once per process (shared by every task of a run)."""
    from lm_eval_diversity.scoring import load_models

    return load_models(
        DiversitySettings(
            metrics=metrics, sbert_model=sbert_model, nli_model=nli_model, device=device, nli_max_length=nli_max_length
        )
    )


def check_models_available(settings: DiversitySettings, sources: dict[str, str] | None = None) -> None:
    """Resolve the metric models' locations (no loading); raises ``ModelUnavailableError`` naming the setting
    the user gave (``--metadata sbert_model``, ``LM_EVAL_DIVERSITY_SBERT_MODEL``) or, for a default, the key."""
    sources = sources or {}
    if {"sbert", "vendi"} & set(settings.metrics):
        _resolve(settings.sbert_model, sources.get("sbert_model", "--sbert_model / --metadata sbert_model"))
    if "nli" in settings.metrics:
        _resolve(settings.nli_model, sources.get("nli_model", "--nli_model / --metadata nli_model"))


@lru_cache(maxsize=8)
def _resolve(name: str, setting: str) -> str:
    from lm_eval_diversity.models import resolve_model_path

    return resolve_model_path(name, setting)


def models_for(settings: DiversitySettings) -> MetricModels:
    return _models(settings.sbert_model, settings.nli_model, settings.device, settings.metrics, settings.nli_max_length)


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

    Every setting comes from ``--metadata`` (JSON) first, then from its ``LM_EVAL_DIVERSITY_*`` environment
    variable, then from the defaults: the metric settings (:class:`DiversitySettings` fields, docs/settings.md)
    and ``repeats``, ``no_cot``, ``data_dir``, ``all_metrics`` (:data:`TASK_KEYS`). The values used are recorded
    in ``config.metadata`` (``diversity_settings``, ``max_docs``, ``data_dir``).
    """

    def __init__(self, config: dict | None = None, **kwargs) -> None:
        config = dict(config or {})
        config.pop("class", None)
        metadata = dict(config.get("metadata") or {})
        check_metadata_keys(metadata)
        self._settings, self._sources = resolve_settings(metadata, COMMAND_DEFAULTS)
        repeats, source = _task_setting(metadata, "repeats")
        if repeats is not None:
            config["repeats"] = _positive_int(repeats, source)
        no_cot, source = _task_setting(metadata, "no_cot")
        if no_cot not in (None, "", False, "0", "false"):
            # pre-fill an empty thought so a reasoning model answers directly (the paper's no-CoT condition);
            # a string value is used as the pre-fill itself (e.g. "\n</think>\n" after a template's <think>)
            config["gen_prefix"] = NO_COT_PREFIX if no_cot in (True, "1", "true") else str(no_cot)
        data_dir, _ = _task_setting(metadata, "data_dir")
        if _points_at_local_data(config):
            # an include:-ing YAML that sets dataset_path/dataset_kwargs (lm-eval's way to use local files): load
            # that data the standard way instead of the shipped loader
            config.pop("custom_dataset", None)
        all_metrics, source = _task_setting(metadata, "all_metrics")
        show_all = bool(all_metrics) and parse_bool(all_metrics, source)
        metadata["diversity_settings"] = self._settings.to_dict()
        # the prompt set: N (reference 500) and where the docs came from (None: the HF Hub)
        metadata["max_docs"] = max_docs()
        metadata["data_dir"] = data_dir or None  # also handed to the dataset loader (custom_dataset)
        config["metadata"] = metadata
        repeats_k = int(config.get("repeats", 1))
        config["metric_list"] = _with_pass_at_k(config.get("metric_list") or [], repeats_k)
        if not show_all:
            config["metric_list"] = shown_metrics(
                config.get("metric_list") or [], self._settings, repeats_k, config["task"]
            )
        metadata["metrics_shown"] = "all" if show_all else "defined"
        config["filter_list"] = _wire_filters(config.get("filter_list"), config["task"], repeats_k, self._settings)
        self._metric_names = tuple(m["metric"] for m in config.get("metric_list") or [])
        # per-doc values come from this class's process_results; naming it here tells lm-eval not to look the
        # metric names up as registered metric functions
        config["process_results"] = f"{type(self).__name__}.process_results"
        super().__init__(config=config, **kwargs)

    _predict_only = False

    def override_metric(self, metric_name: str) -> None:
        """``--predict_only`` (metric ``bypass``): log the K raw responses, compute nothing, load no model."""
        from lm_eval.filters import build_filter_ensemble

        super().override_metric(metric_name)
        self._predict_only = True
        self._filters = [build_filter_ensemble("div", [["take_first_k", {"k": self.config.repeats}]])]

    def process_results(self, doc: dict, results: list) -> dict:
        if self._predict_only:
            return super().process_results(doc, results)
        return _per_doc_values(results, self._metric_names)

    def build_all_requests(self, **kwargs) -> None:
        if self.config.num_fewshot:
            raise SettingsError(
                f"{self.config.task}: --num_fewshot {self.config.num_fewshot} is not supported: the protocol is "
                "zero-shot, and few-shot examples would be drawn from the evaluated split; drop --num_fewshot"
            )
        # --gen_kwargs from the CLI are merged into the config after construction, so check them here
        for warning in check_generation_kwargs(
            self.config.task, self.config.generation_kwargs or {}, self.config.repeats
        ):
            log.warning(warning)
        if not self._predict_only:
            check_models_available(self._settings, self._sources)  # fail before generation, not after it
        if kwargs.get("cache_requests") and not kwargs.get("rewrite_requests_cache"):
            log.warning(
                "%s: --cache_requests reuses requests built earlier, whose cache key ignores repeats and "
                "generation_kwargs; after changing K or sampling settings use --cache_requests refresh",
                self.config.task,
            )
        super().build_all_requests(**kwargs)


def _with_pass_at_k(metric_list: list[dict], repeats: int) -> list[dict]:
    """Add ``pass@K`` for the run's own K next to the protocol's pass@{1,5,10,16} (tasks that report pass@k)."""
    passes = [m for m in metric_list if m["metric"].startswith("pass@")]
    if not passes or repeats < 1 or any(m["metric"] == f"pass@{repeats}" for m in passes):
        return metric_list
    at = metric_list.index(passes[-1]) + 1
    return [*metric_list[:at], {**passes[-1], "metric": f"pass@{repeats}"}, *metric_list[at:]]


_FILE_BUILDERS = ("json", "csv", "parquet", "text", "arrow")


def _points_at_local_data(config: dict) -> bool:
    """True when the task config names its own data: ``dataset_kwargs.data_files``/``data_dir``, a file-format
    builder as ``dataset_path`` (``json``...), or a local directory."""
    kwargs = config.get("dataset_kwargs") or {}
    path = str(config.get("dataset_path") or "")
    return bool(
        "data_files" in kwargs or "data_dir" in kwargs or path in _FILE_BUILDERS or (path and os.path.isdir(path))
    )


def shown_metrics(metric_list: list[dict], settings: DiversitySettings, repeats: int, task: str) -> list[dict]:
    """The metrics defined for this run (the results table shows no row that is NaN by construction).

    Diversity metrics only when run (corpus levels only when requested); ``pass@k`` only for k <= K;
    quality-filtered diversity only with the embedding metric it uses; the QC/residual split only with a baseline.
    """
    run = set(settings.metrics)
    verifiable = task.removeprefix("diversity_") in VERIFIABLE_TASKS
    per_prompt = repeats >= 2  # diversity among one prompt's outputs needs K >= 2
    kept = []
    for entry in metric_list:
        name = entry["metric"]
        base, _, level = name.partition("_")
        if name in DIVERSITY_METRICS:
            ok = name in run and per_prompt
        elif level in CORPUS_LEVELS:
            ok = base in run and base in settings.corpus_metrics
        elif name.startswith("pass@"):
            ok = verifiable and int(name[5:]) <= repeats
        elif name.startswith(("loss_", "residual_", "qc_")):
            ok = verifiable and bool(settings.baseline) and name.rpartition("_")[2] in run
        elif name in ("sbert_all", "sbert_correct"):
            ok = verifiable and per_prompt and "sbert" in run
        elif name == "vendi_correct":
            ok = verifiable and per_prompt and "vendi" in run
        elif name == "computable":
            ok = verifiable and per_prompt and bool({"sbert", "vendi"} & run)
        else:
            ok = True
        if ok:
            kept.append(entry)
    return kept


def _positive_int(value, setting: str) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{setting}={value!r}: expected a positive integer") from None
    if k < 1:
        raise ValueError(f"{setting}={value!r}: expected a positive integer")
    return k


def _wire_filters(filter_list, task: str, repeats: int, settings: DiversitySettings):
    """Give the diversity filter its task name, K and settings (filters never see the task otherwise)."""
    wired = []
    for pipeline in filter_list or []:
        steps = []
        for step in pipeline["filter"]:
            step = dict(step)
            if step.get("function") == FILTER_NAME:
                step.setdefault("task", task)
                step["k"] = repeats
                step["settings"] = settings.to_dict()
            steps.append(step)
        wired.append({**pipeline, "filter": steps})
    return wired


@register_filter(FILTER_NAME)
class DiversityMetricsFilter(Filter):
    """Score all docs of a task at once; return one dict of per-doc metrics (and corpus values) per doc.

    Only the first ``k`` responses of a doc are used (multi-GPU padding can append extra ones).
    """

    def __init__(self, task: str = "", k: int | None = None, settings: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.k = k
        self.settings = COMMAND_DEFAULTS if settings is None else DiversitySettings.from_dict(settings)

    def apply(self, resps: Iterable[list[str]], docs: list[dict]) -> list[DocPayload]:
        resps = [list(r)[: self.k] if self.k else list(r) for r in resps]
        settings = self.settings
        groups = [PromptGroup(doc_id=i, outputs=outputs, doc=doc) for i, (outputs, doc) in enumerate(zip(resps, docs))]
        # lm-eval itself refuses unsafe_code tasks (humaneval, mbpp) without --confirm_run_unsafe_code
        scores = score_task(
            self.task, groups, settings, models_for(settings), graded_tasks=VERIFIABLE_TASKS,
            allow_code_execution=True, progress=True,
        )  # fmt: skip
        corpus = {
            f"{m}_{lvl}": levels[lvl]
            for m, levels in scores.metrics.items()
            if m in settings.corpus_metrics
            for lvl in CORPUS_LEVELS
        }
        if settings.baseline and self.task.removeprefix("diversity_") in VERIFIABLE_TASKS:
            corpus.update(baseline_split(self.task, scores.per_prompt, settings.baseline))
        out = []
        for i, (row, outputs) in enumerate(zip(scores.per_prompt, resps)):
            verdicts = scores.verdicts[i] if i < len(scores.verdicts) else None
            payload = DocPayload(response_records(outputs, verdicts))
            payload.values = {**{k: v for k, v in row.items() if k != "doc_id"}, **corpus}
            out.append(payload)
        return out


class DocPayload(list):
    """What the diversity filter passes per doc: one JSON record per response (what ``--log_samples`` writes as
    ``filtered_resps``), carrying the doc's metric values in ``values`` for ``process_results``."""

    values: dict


def response_records(outputs: list[str], verdicts=None) -> list[str]:
    """Per response, a JSON object: the CoT-stripped text and, on verifiable tasks, the extracted answer and
    whether it is correct. Strings, because lm-eval turns every logged leaf into a string."""
    import json

    from lm_eval_diversity.preprocess import strip_cot

    records = []
    for j, text in enumerate(outputs):
        record: dict = {"response": strip_cot(text)}
        if verdicts is not None and j < len(verdicts):
            record.update(answer=verdicts[j].answer, correct=verdicts[j].correct)
        records.append(json.dumps(record, ensure_ascii=False))
    return records


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


def _per_doc_values(results: list, names: tuple[str, ...]) -> dict[str, float | None]:
    """Per-doc values of the task's metrics from the filter's payload.

    A value undefined for this doc (e.g. diversity among correct outputs with < 2 correct) is NaN for metrics
    averaged with ``mean`` and null for those aggregated here (:func:`nanmean`, :func:`corpus_value`), so that
    logged samples stay strict JSON where the aggregation allows it.
    """
    payload = getattr(results[0], "values", None)
    if not isinstance(payload, dict):
        raise TypeError(
            f"diversity tasks expect the {FILTER_NAME!r} filter's payload, got {type(results[0]).__name__}; "
            "keep the task's filter_list as shipped"
        )
    out: dict[str, float | None] = {}
    for name in names:
        value = float(payload.get(name, math.nan))
        out[name] = None if math.isnan(value) and name not in _MEAN_AGGREGATED else value
    return out


# metrics aggregated by lm-eval's own ``mean`` (a null would break it): per-input levels and rates
_MEAN_AGGREGATED = frozenset(
    {*DIVERSITY_METRICS, "dup_rate", "empty_rate", "unclosed_think_rate", "acc", "maj@K", "k_correct",
     "sbert_all", "computable"}
)  # fmt: skip


def corpus_value(items: list[float | None]) -> float | None:
    """Aggregation of a task-level value that every doc carries identically (across-input / overall levels).

    None (JSON null) when it was not computed. If docs disagree (the filter ran per rank in a multi-process run),
    the value is not a task-level number: None with a warning pointing at post-hoc scoring.
    """
    values = [float(v) for v in items if v is not None and not math.isnan(float(v))]
    if not values:
        return None
    first = values[0]
    if len(values) != len(items) or any(v != first for v in values):
        log.warning(
            "corpus-level value differs between docs (multi-process run?); reporting null. "
            "Score the logged samples with `lm-eval-diversity score` instead."
        )
        return None
    return first


def nanmean(items: list[float | None]) -> float | None:
    """Mean over the docs where a value is defined (e.g. diversity among correct outputs needs >= 2 correct);
    None (JSON null) when it is defined for no doc."""
    values = [float(v) for v in items if v is not None and not math.isnan(float(v))]
    return sum(values) / len(values) if values else None


# ---------------------------------------------------------------- the lm-eval CLI with our tasks


def task_manager(include_path=None, **kwargs):
    """A ``TaskManager`` that also sees the diversity tasks (use it with ``simple_evaluate(task_manager=...)``)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=_with_task_dir(include_path), **kwargs)


def _with_task_dir(include_path) -> list[str] | None:
    """The include paths lm-eval should scan: the user's, plus our task directory unless lm-eval finds it already.

    A wheel install puts the YAMLs inside lm-eval's own task tree, which lm-eval always scans; adding that
    directory again (or keeping a user's ``--include_path`` to it) would index every task twice.
    """
    paths = (
        []
        if include_path is None
        else [include_path]
        if isinstance(include_path, (str, os.PathLike))
        else list(include_path)
    )
    ours = os.path.realpath(TASK_DIR)
    paths = [str(p) for p in paths if os.path.realpath(str(p)) != ours]
    if not TASKS_DISCOVERED:
        # our directory first, so that a user's --include_path can override our tasks (later roots win)
        paths = [str(TASK_DIR), *paths]
    return paths or None


def run_flags() -> dict[str, tuple[str, str]]:
    """``run`` flag -> (``--metadata`` key, help): one per settings field and per task key, derived, not listed."""
    flags = {f"--{public_name(f)}": (public_name(f), field_help(f)) for f in settings_fields()}
    flags.update({f"--{key}": (key, f"{text} (env {ENV_PREFIX}{key.upper()})") for key, text in TASK_KEYS.items()})
    return flags


def split_own_flags(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Separate our setting flags (returned as ``--metadata`` entries) from lm-eval's own arguments."""
    flags = run_flags()
    rest, meta = [], {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in flags:
            if not eq:
                if i + 1 >= len(argv):
                    raise SettingsError(f"{name} needs a value")
                value = argv[i + 1]
                i += 1
            meta[flags[name][0]] = value
        else:
            rest.append(arg)
        i += 1
    return rest, meta


def merge_metadata(user: dict, from_flags: dict[str, str]) -> dict:
    """Check the user's ``--metadata`` (as lm-eval parsed it; every key must be known) and add our flags' values.

    A setting given both ways must agree. lm-eval passes the result to the tasks as usual (docs/settings.md).
    """
    user = dict(user or {})
    check_metadata_keys(user, exact=True)
    for key, value in from_flags.items():
        if key in user and str(user[key]) != str(value):
            raise SettingsError(f"--{key} {value!r} and --metadata {key}={user[key]!r} disagree; give one of them")
    try:  # fail now, naming the flag as typed, on a bad value
        resolve_settings(from_flags, COMMAND_DEFAULTS)
    except ValueError as exc:
        raise SettingsError(re.sub(r"--(\w+) / --metadata \1", r"--\1", str(exc))) from None
    merged = {**from_flags, **user}
    resolve_settings(merged, COMMAND_DEFAULTS)
    return merged


def build_cli(own_commands: dict[str, str] | None = None):
    """lm-eval's own CLI parser, named ``lm-eval-diversity``, listing our subcommands and, under ``run``, our flags.

    Our flags are taken out of the arguments before lm-eval parses them (:func:`split_own_flags`); here they are
    added for ``--help`` only.
    """
    from lm_eval._cli import HarnessCLI

    cli = HarnessCLI()
    cli._parser.prog = "lm-eval-diversity"
    subparsers = cli._subparsers
    for name, text in (own_commands or {}).items():
        subparsers.add_parser(name, help=text, add_help=False)
    run = subparsers.choices["run"]
    run.prog = "lm-eval-diversity run"
    group = run.add_argument_group(
        "diversity settings",
        "lm-eval-diversity flags; each is also a --metadata key of the same name, for plain lm_eval "
        "(precedence: flag or --metadata, then LM_EVAL_DIVERSITY_* variables, then defaults; docs/settings.md)",
    )
    for flag, (_, text) in run_flags().items():
        group.add_argument(flag, help=text, metavar="VALUE")
    return cli


def run_lm_eval_cli(argv: list[str], own_commands: dict[str, str] | None = None) -> int:
    """Run lm-eval's own CLI (same subcommands and flags) with the diversity tasks and registrations loaded."""
    import lm_eval.tasks
    from lm_eval.utils import setup_logging

    try:
        argv, from_flags = split_own_flags(argv)
    except ValueError as exc:
        print(f"lm-eval-diversity: error: {exc}", file=sys.stderr)
        return 2
    base = lm_eval.tasks.TaskManager

    class DiversityTaskManager(base):
        def __init__(self, *args, include_path=None, **kwargs):
            super().__init__(*args, include_path=_with_task_dir(include_path), **kwargs)

    old_argv = sys.argv
    # lm-eval's run/ls/validate import TaskManager from lm_eval.tasks at call time
    lm_eval.tasks.TaskManager = DiversityTaskManager
    sys.argv = ["lm-eval-diversity", *argv]
    try:
        setup_logging()
        cli = build_cli(own_commands)
        if not argv:
            cli._parser.print_help()
            return 0
        args = cli.parse_args()
        if getattr(args, "command", None) == "run":
            args.metadata = merge_metadata(args.metadata or {}, from_flags)
        elif from_flags:
            raise SettingsError(f"{', '.join('--' + k for k in from_flags)}: diversity settings apply to `run` only")
        cli.execute(args)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except ValueError as exc:  # bad settings, unknown tasks, greedy sampling...: say what, no traceback
        print(f"lm-eval-diversity: error: {exc}", file=sys.stderr)
        return 2
    finally:
        sys.argv = old_argv
        lm_eval.tasks.TaskManager = base
    return 0
