"""The only module that touches lm-eval internals: task class, filter, process_results, aggregations, CLI hook.

Data path inside lm-eval: every doc's K responses (``repeats``) reach the ``diversity_metrics`` filter together
(one call per task), which scores the whole task in batched passes through :func:`score_groups` and returns one
small dict per doc; ``process_results`` turns it into per-doc metrics, aggregated by ``mean`` (per-input levels,
with stderr) or :func:`corpus_value` (across-input / overall levels, the same value carried by every doc).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from lm_eval.api.filter import Filter
from lm_eval.api.registry import register_filter
from lm_eval.api.task import ConfigurableTask

from lm_eval_diversity import TASK_DIR, TASKS_DISCOVERED
from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue.tasks import CODE_TASKS, graded_task_names, is_graded, short_name
from lm_eval_diversity.command import (
    DataParallelError,
    SettingsError,
    _flag_value,
    build_cli,
    check_data_parallel,
    check_metadata_keys,
    merge_metadata,
    split_own_flags,
)
from lm_eval_diversity.preprocess import prompt_opens_think
from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_task
from lm_eval_diversity.settings import (
    COMMAND_DEFAULTS,
    ENV_PREFIX,
    SAMPLING_PRESETS,
    DiversitySettings,
    parse_bool,
    resolve_settings,
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
CORPUS_LEVELS = catalogue.CORPUS_LEVELS
NO_COT_PREFIX = "<think>\n\n</think>\n\n"  # an empty thought, for templates that do not open one
NO_COT_CLOSE = "\n</think>\n\n"  # closes the thought a thinking template opened with <think>

def _task_setting(metadata: dict, key: str, environ=None):
    """A run setting that is not a metric setting: ``--metadata`` key first, then its environment variable."""
    env = os.environ if environ is None else environ
    if key in metadata:
        return metadata[key], f"--metadata {key}"
    raw = env.get(ENV_PREFIX + key.upper())
    return (raw, ENV_PREFIX + key.upper()) if raw not in (None, "") else (None, None)


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
    """Everything that could fail once the responses exist, checked before generation starts: model locations,
    the metric device, the NLI model's kind and labels, the baseline run, and code-execution isolation.
    Errors name the setting as the user gave it (``sources``, from :func:`resolve_settings`)."""
    from lm_eval_diversity.models import check_device, check_nli_config

    sources = sources or {}
    check_models_available(settings, sources)
    if catalogue.models_needed(settings.metrics):
        check_device(settings.device, sources.get("device", "--metric_device / --metadata metric_device"))
    if "nli_model" in catalogue.models_needed(settings.metrics):
        nli_source = sources.get("nli_model", "--nli_model / --metadata nli_model")
        check_nli_config(_resolve(settings.nli_model, nli_source), nli_source)
    if settings.baseline and is_graded(task):
        _baseline_run(settings.baseline)
    if short_name(task) in CODE_TASKS:
        from lm_eval_diversity.quality.sandbox import isolation_mode

        isolation_mode()  # raises SandboxUnavailableError, saying what to install or enable


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


def uses_task_stops(mode: str, chat_template_applied: bool) -> bool:
    """Whether generation stops at the task's ``until`` strings (``stop_sequences`` setting, docs/tasks.md).

    ``auto`` follows the reference protocol: stop strings only for plain-text prompts; with a chat template the
    output ends at EOS or ``max_gen_toks``. ``task`` always keeps them, ``none`` never uses them.
    """
    return mode == "task" or (mode == "auto" and not chat_template_applied)


def no_cot_prefill(no_cot: bool | str | None, prompt: str) -> str:
    """The text appended to a rendered prompt for the no-CoT condition ("" when it is off).

    ``True``: an empty thought; when the prompt already opened one (a thinking template ends it with ``<think>``)
    only its closing part. A string is used verbatim.
    """
    if no_cot is None or no_cot is False:
        return ""
    if isinstance(no_cot, str):
        return no_cot
    return NO_COT_CLOSE if prompt_opens_think(prompt) else NO_COT_PREFIX


def _no_cot_value(raw) -> bool | str | None:
    if raw in (None, "", False, "0", "false", "False"):
        return None
    if raw in (True, "1", "true", "True"):
        return True
    return str(raw)


class DiversityTask(ConfigurableTask):
    """A ``generate_until`` task with K samples per prompt and the diversity filter wired to its own name.

    Every setting comes from ``--metadata`` (JSON) first, then from its ``LM_EVAL_DIVERSITY_*`` environment
    variable, then from the defaults: the metric settings (:class:`DiversitySettings` fields, docs/settings.md)
    and ``repeats``, ``no_cot``, ``data_dir``, ``all_metrics`` (:data:`TASK_KEYS`). ``no_cot`` true pre-fills an
    empty thought after the rendered prompt (see :func:`no_cot_prefill`); a string is used as that pre-fill. The
    values used are recorded in ``config.metadata`` (``diversity_settings``, ``max_docs``, ``data_dir``); what
    generation actually used (chat template or not, the stop strings, the pre-fill, whether prompts open a thought)
    is recorded in ``config.metadata["generation_protocol"]`` once the requests are built.
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
        # the no-CoT pre-fill is appended to the rendered prompt (fewshot_context), not passed as lm-eval's
        # gen_prefix: a gen_prefix switches off add_generation_prompt, which would drop a thinking template's <think>
        self._no_cot = _no_cot_value(_task_setting(metadata, "no_cot")[0])
        if self._settings.sampling is not None:
            preset = SAMPLING_PRESETS[self._settings.sampling]
            config["generation_kwargs"] = {**(config.get("generation_kwargs") or {}), "do_sample": True, **preset}
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
        metric_list = with_registered_metrics(config.get("metric_list") or [], config["task"])
        config["metric_list"] = _with_pass_at_k(metric_list, repeats_k)
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
        self._task_until = (self.config.generation_kwargs or {}).get("until")

    _predict_only = False
    _prefill_used = ""

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

    def fewshot_context(self, doc, num_fewshot, **kwargs):
        ctx = super().fewshot_context(doc, num_fewshot, **kwargs)
        if self._no_cot is not None and isinstance(ctx, str):
            self._prefill_used = no_cot_prefill(self._no_cot, ctx)
            ctx += self._prefill_used
        return ctx

    def build_all_requests(self, **kwargs) -> None:
        if self.config.num_fewshot:
            raise SettingsError(
                f"{self.config.task}: --num_fewshot {self.config.num_fewshot} is not supported: the protocol is "
                "zero-shot, and few-shot examples would be drawn from the evaluated split; drop --num_fewshot"
            )
        settings = self._settings
        gen = self.config.generation_kwargs
        if gen is None:
            gen = self.config.generation_kwargs = {}
        chat = bool(kwargs.get("apply_chat_template")) and kwargs.get("chat_template") is not None
        # --gen_kwargs from the CLI are merged into the config after construction, so check them here
        if settings.sampling is not None:
            _check_preset(self.config.task, settings.sampling, gen)
        if gen.get("until") and gen["until"] != self._task_until:
            self._task_until = gen["until"]  # --gen_kwargs until=... replaced the task's list
        gen["until"] = self._task_until if uses_task_stops(settings.stop_sequences, chat) and self._task_until else []
        for warning in check_generation_kwargs(self.config.task, gen, self.config.repeats):
            log.warning(warning)
        if not self._predict_only:
            check_before_generation(self.config.task, self._settings, self._sources)  # fail before, not after it
        if kwargs.get("cache_requests") and not kwargs.get("rewrite_requests_cache"):
            log.warning(
                "%s: --cache_requests reuses requests built earlier, whose cache key ignores repeats and "
                "generation_kwargs; after changing K or sampling settings use --cache_requests refresh",
                self.config.task,
            )
        super().build_all_requests(**kwargs)
        contexts = [inst.args[0] if isinstance(inst.args[0], str) else "" for inst in self._instances]
        opened = [prompt_opens_think(c) for c in contexts]
        self._wire_think_opened(opened)
        self.config.metadata["generation_protocol"] = {
            "chat_template": chat,
            "stop_sequences": settings.stop_sequences,
            "until": gen["until"],
            "task_until": self._task_until,
            "sampling": settings.sampling,
            "no_cot_prefill": self._prefill_used,
            "prompts_open_think": sum(opened) / len(opened) if opened else 0.0,
        }
        log.info(
            "%s: chat template %s, stop sequences %r (%s), %d of %d prompts open a thought",
            self.config.task, "applied" if chat else "not applied", gen["until"], settings.stop_sequences,
            sum(opened), len(opened),
        )  # fmt: skip
        if not self._predict_only:
            log_work_estimate(self)

    def _wire_think_opened(self, opened: list[bool]) -> None:
        """Tell the diversity filter, per request in the order it will see them, which prompts opened a thought."""
        from functools import partial

        for ensemble in self._filters:
            for i, step in enumerate(ensemble.filters):
                if isinstance(step, partial) and step.func is DiversityMetricsFilter:
                    ensemble.filters[i] = partial(step, think_opened=tuple(opened))


def _check_preset(task: str, name: str, gen: dict) -> None:
    """``--sampling NAME`` and ``--gen_kwargs`` must not disagree on temperature / top_p."""
    for key, value in SAMPLING_PRESETS[name].items():
        if key in gen and gen[key] is not None and float(gen[key]) != value:
            raise SamplingConfigError(
                f"{task}: --sampling {name} sets {key}={value} but generation_kwargs has {key}={gen[key]!r} "
                f"(from --gen_kwargs?); drop one of the two"
            )


def log_work_estimate(task: DiversityTask) -> None:
    """Before generation: log the metric work this task will cost and the calibrated time it will take."""
    from lm_eval_diversity.estimate import harness_estimate

    prompts = {inst.doc_id: str(inst.arguments[0]) for inst in task.instances}
    line = harness_estimate(
        task.config.task, list(prompts.values()), task.config.repeats, task._settings, models_for
    )
    # lm-eval's CLI shows INFO records of its own ``lm_eval`` logger tree only: log there, next to its progress lines
    logging.getLogger("lm_eval.diversity").info("%s", line)


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
    """The metrics defined for this run (the results table shows no row that is NaN by construction); the rule of
    each metric is the catalogue's (:func:`lm_eval_diversity.catalogue.metrics.shown`)."""
    run = set(settings.metrics)
    corpus = set(settings.corpus_metrics)
    verifiable = is_graded(task)
    return [
        entry
        for entry in metric_list
        if catalogue.shown(
            entry["metric"], run, corpus, verifiable=verifiable, repeats=repeats, baseline=bool(settings.baseline)
        )
    ]


def with_registered_metrics(metric_list: list[dict], task: str) -> list[dict]:
    """The task's ``metric_list`` plus the entries of metrics added to the catalogue at run time
    (:func:`lm_eval_diversity.catalogue.metrics.register_metric`) that it does not list yet."""
    extra = catalogue.registered_records()
    if not extra:
        return metric_list
    listed = {m["metric"] for m in metric_list}
    graded = is_graded(task)
    entries = catalogue.harness_entries(extra, graded, task)
    return [*metric_list, *(e for e in entries if e["metric"] not in listed)]


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

    def __init__(
        self,
        task: str = "",
        k: int | None = None,
        settings: dict | None = None,
        think_opened: tuple[bool, ...] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.k = k
        self.settings = COMMAND_DEFAULTS if settings is None else DiversitySettings.from_dict(settings)
        self.think_opened = think_opened

    def apply(self, resps: Iterable[list[str]], docs: list[dict]) -> list[DocPayload]:
        resps = [list(r)[: self.k] if self.k else list(r) for r in resps]
        resps, replaced = replace_lone_surrogates(resps)
        if replaced:
            log.warning(
                "%s: %d response(s) held lone surrogates (not valid Unicode); each such character was replaced by "
                "U+FFFD before scoring", self.task, replaced,
            )  # fmt: skip
        settings = self.settings
        opened = self.think_opened if self.think_opened and len(self.think_opened) == len(resps) else None
        groups = [
            PromptGroup(doc_id=i, outputs=outputs, doc=doc, think_opened=bool(opened and opened[i]))
            for i, (outputs, doc) in enumerate(zip(resps, docs))
        ]
        # lm-eval itself refuses unsafe_code tasks (humaneval, mbpp) without --confirm_run_unsafe_code
        try:
            scores = score_task(
                self.task, groups, settings, models_for(settings), graded_tasks=graded_task_names(),
                allow_code_execution=True, progress=True,
            )  # fmt: skip
        except Exception as exc:
            try:
                saved = save_unscored(self.task, resps, docs)
            except OSError as save_exc:
                raise ScoringAfterGenerationError(
                    f"{self.task}: scoring failed after generation ({type(exc).__name__}: {exc}), and saving the "
                    f"responses failed too ({save_exc.filename}: {save_exc.strerror}); rerun with --log_samples "
                    "and --predict_only, then score the samples file with `lm-eval-diversity score`"
                ) from exc
            raise ScoringAfterGenerationError(
                f"{self.task}: scoring failed after generation ({type(exc).__name__}: {exc}). The {len(resps)} "
                f"docs' responses were saved to {saved}; fix the setting, then score them with "
                f"`lm-eval-diversity score {saved} --output_path scores.json`"
            ) from exc
        corpus = {
            f"{m}_{lvl}": levels[lvl]
            for m, levels in scores.metrics.items()
            if m in settings.corpus_metrics
            for lvl in CORPUS_LEVELS
        }
        if settings.baseline and is_graded(self.task):
            corpus.update(baseline_split(self.task, scores.per_prompt, settings.baseline))
        out = []
        for i, (row, outputs) in enumerate(zip(scores.per_prompt, resps)):
            verdicts = scores.verdicts[i] if i < len(scores.verdicts) else None
            payload = DocPayload(response_records(outputs, verdicts))
            payload.values = {**{k: v for k, v in row.items() if k != "doc_id"}, **corpus}
            out.append(payload)
        return out


def replace_lone_surrogates(resps: list[list[str]]) -> tuple[list[list[str]], int]:
    """Responses with every lone surrogate (a code point no encoder accepts) replaced by U+FFFD, and how many
    responses held one; tokenisers and JSON writers would otherwise fail on them after generation."""
    replaced = 0
    out = []
    for group in resps:
        fixed = []
        for text in group:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # UTF-16 keeps a lone surrogate as one unpaired unit, which "replace" swaps
                text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
                replaced += 1
            fixed.append(text)
        out.append(fixed)
    return out, replaced


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


class ScoringAfterGenerationError(RuntimeError):
    """Scoring failed after the responses were generated; they were saved first (the message says where)."""


def save_unscored(task: str, resps: list[list[str]], docs: list[dict]) -> Path:
    """Write the raw responses as an lm-eval samples file (``doc_id``, ``doc``, ``resps``) that ``score`` reads.

    It goes to ``<--output_path>/unscored/`` (the working directory when the run has no output path).
    """
    from datetime import datetime

    from lm_eval_diversity.atomic import write_atomic

    folder = Path(os.environ.get(ENV_PREFIX + "OUTPUT_PATH") or ".") / "unscored"
    if folder.parent.suffix == ".json":  # lm-eval accepts a results file name as --output_path
        folder = folder.parent.parent / "unscored"
    stamp = datetime.now().isoformat().replace(":", "-")
    path = folder / f"samples_{task}_{stamp}.jsonl"
    lines = [
        json.dumps({"doc_id": i, "doc": doc, "resps": [list(outs)]}, ensure_ascii=True, default=str)
        for i, (outs, doc) in enumerate(zip(resps, docs))
    ]
    write_atomic(path, "\n".join(lines) + "\n")
    return path


@lru_cache(maxsize=2)
def _baseline_run(path: str):
    from lm_eval_diversity.runs import load_runs

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

    parts = catalogue.SPLIT_PARTS
    nan = {f"{part}_{m}": math.nan for m in catalogue.split_metrics() for part in parts}
    td = _baseline_run(baseline).tasks.get(task)
    if td is None or not td.per_prompt:
        log.warning("%s: baseline %s has no per-prompt values for this task; no QC/residual split", task, baseline)
        return nan
    out = {}
    for metric in catalogue.split_metrics():
        split = split_from_prompts(td.per_prompt, model_rows, metric)
        if split["ids_only_base"] or split["ids_only_model"]:
            log.warning(
                "%s: baseline and run differ in prompts: %d doc ids only in the baseline, %d only in this run; "
                "the split uses the %d common prompts",
                task, len(split["ids_only_base"]), len(split["ids_only_model"]), split["n_common"],
            )  # fmt: skip
        out.update({f"{part}_{metric}": split[part] for part in parts})
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
    values = dict(payload)
    mean_aggregated = catalogue.mean_aggregated(names)
    if "n_instructions" in values:  # ifeval: lm-eval's instruction-level accuracies of output #0
        n = int(values["n_instructions"])
        for m in ("inst_level_strict_acc", "inst_level_loose_acc"):
            k = round(values[m] * n) if n else 0
            values[m] = [1.0] * k + [0.0] * (n - k)  # one value per instruction, pooled by inst_level_mean
    out: dict = {}
    for name in names:
        value = values.get(name, math.nan)
        if isinstance(value, list):
            out[name] = value
            continue
        value = float(value)
        out[name] = None if math.isnan(value) and name not in mean_aggregated else value
    return out


def inst_level_mean(items: list[list[float]]) -> float:
    """Share of followed instructions over every instruction of every prompt (lm-eval's ifeval aggregation)."""
    flat = [v for per_doc in items for v in per_doc]
    return sum(flat) / len(flat) if flat else math.nan


TWO_PASS_NOTE = "see two-pass flow: --predict_only, then lm-eval-diversity score (docs/scale.md)"


def corpus_value(items: list[float | None]) -> float | None:
    """Aggregation of a task-level value that every doc carries identically (across-input / overall levels).

    None (JSON null) when it was not computed. In a multi-process run (``WORLD_SIZE`` > 1, or docs that disagree
    because the filter ran per rank on part of the task) no process saw the whole task, so no task-level number
    exists: None (strict JSON has no room for a note in a number's place), with a warning that points at the flow
    that computes it (:data:`TWO_PASS_NOTE`).
    """
    values = [float(v) for v in items if v is not None and not math.isnan(float(v))]
    if not values:
        return None
    first = values[0]
    multi_rank = int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
    if multi_rank or len(values) != len(items) or any(v != first for v in values):
        log.warning("corpus-level value computed per rank (multi-process run?): not a task-level number; %s",
                    TWO_PASS_NOTE)  # fmt: skip
        return None
    return first


def nanmean(items: list[float | None]) -> float | None:
    """Mean over the docs where a value is defined (e.g. diversity among correct outputs needs >= 2 correct);
    None (JSON null) when it is defined for no doc.

    lm-eval's own registered ``nanmean`` aggregation (checked against lm-eval 0.4.13) is not a drop-in: it fails
    on the nulls logged for undefined values, returns NaN (not null) when nothing is defined, and its
    ``np.nanmean`` sums pairwise, which changes the last bits of most means against the sequential sum used here.
    """
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


def run_lm_eval_cli(argv: list[str], own_commands: dict[str, str] | None = None) -> int:
    """Run lm-eval's own CLI (same subcommands and flags) with the diversity tasks and registrations loaded."""
    import lm_eval.tasks
    from lm_eval.utils import setup_logging

    from lm_eval_diversity.models import ModelUnavailableError
    from lm_eval_diversity.quality.sandbox import SandboxUnavailableError

    try:
        argv, from_flags = split_own_flags(argv)
    except ValueError as exc:
        print(f"lm-eval-diversity: error: {exc}", file=sys.stderr)
        return 2
    try:
        check_data_parallel(argv)
    except DataParallelError as exc:
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
        # where a scoring failure after generation saves the responses (save_unscored)
        with _environ({ENV_PREFIX + "OUTPUT_PATH": _flag_value(argv, "--output_path") or ""}):
            setup_logging()
            cli = build_cli(own_commands)
            if not argv:
                cli._parser.print_help()
                return 0
            args = cli.parse_args()
            if getattr(args, "command", None) == "run":
                args.metadata = merge_metadata(args.metadata or {}, from_flags)
            elif from_flags:
                flags = ", ".join("--" + k for k in from_flags)
                raise SettingsError(f"{flags}: diversity settings apply to `run` only")
            cli.execute(args)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except KeyboardInterrupt:
        print("lm-eval-diversity: interrupted", file=sys.stderr)
        return 130
    except (ValueError, ModelUnavailableError, SandboxUnavailableError, ScoringAfterGenerationError) as exc:
        # bad settings, unknown tasks, greedy sampling, a model or sandbox that cannot work...: say what, no traceback
        print(f"lm-eval-diversity: error: {exc}", file=sys.stderr)
        return 2
    finally:
        sys.argv = old_argv
        lm_eval.tasks.TaskManager = base
    return 0


# ---------------------------------------------------------------- generation shards (the sweep)


def task_doc_count(task: str, data_dir: str | None = None) -> int:
    """Number of documents of one of our tasks after its own selection (the reference's N)."""
    from lm_eval.tasks import get_task_dict

    metadata = {"data_dir": data_dir} if data_dir else {}
    task_obj = get_task_dict([task], task_manager(include_defaults=False, metadata=metadata))[task]
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

    metadata = {"repeats": repeats, **({"data_dir": data_dir} if data_dir else {})}
    res = lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=[task],
        task_manager=task_manager(include_defaults=False, metadata=metadata),
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
