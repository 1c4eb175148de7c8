"""The task class, the diversity filter, ``process_results`` and the aggregations that lm-eval loads from our YAMLs.

Data path inside lm-eval: every doc's K responses (``repeats``) reach the ``diversity_metrics`` filter together
(one call per task), which scores the whole task in batched passes through :func:`score_groups` and returns one
small dict per doc; ``process_results`` turns it into per-doc metrics, aggregated by ``mean`` (per-input levels,
with stderr) or :func:`corpus_value` (across-input / overall levels, the same value carried by every doc).

The checks before generation live in :mod:`lm_eval_diversity.preflight`, the generation protocol in
:mod:`lm_eval_diversity.generation`, the wrapper command in :mod:`lm_eval_diversity.lm_eval_cli` (which also lists
where this module reaches past lm-eval's public API: the ``download`` and ``apply_filters`` overrides).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable

from lm_eval.api.filter import Filter
from lm_eval.api.registry import register_filter
from lm_eval.api.task import ConfigurableTask

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue import views
from lm_eval_diversity.catalogue.tasks import is_graded
from lm_eval_diversity.command import SettingsError, check_metadata_keys
from lm_eval_diversity.generating_model import (
    drive_vllm_in_one_call,
    fit_to_model,
    generating_model,
    requests_cache_key,
)
from lm_eval_diversity.generation import (
    check_generation_kwargs,
    check_sampling_preset,
    no_cot_prefill,
    plain_prefix,
    request_text,
    uses_task_stops,
)
from lm_eval_diversity.lm_eval_cli import install_one_line_errors
from lm_eval_diversity.preflight import baseline_run, check_before_generation, models_for
from lm_eval_diversity.preprocess import prompt_opens_think
from lm_eval_diversity.responses import (
    DocPayload,
    ScoringAfterGenerationError,
    replace_lone_surrogates,
    response_records,
    save_unscored,
)
from lm_eval_diversity.scoring import score_task
from lm_eval_diversity.scoring_types import PromptGroup
from lm_eval_diversity.selection import docs_per_task
from lm_eval_diversity.settings import COMMAND_DEFAULTS, SAMPLING_PRESETS, DiversitySettings, resolve_settings

log = logging.getLogger(__name__)
install_one_line_errors()  # plain lm_eval: our errors end in one line, not a traceback


FILTER_NAME = "diversity_metrics"
CORPUS_LEVELS = catalogue.CORPUS_LEVELS


class DiversityTask(ConfigurableTask):
    """A ``generate_until`` task with K samples per prompt and the diversity filter wired to its own name.

    Every setting (a :class:`DiversitySettings` field, docs/settings.md) comes from ``--metadata`` (JSON) first,
    then from its ``LM_EVAL_DIVERSITY_*`` environment variable, then from the defaults. ``no_cot`` true pre-fills an
    empty thought after the rendered prompt (see :func:`no_cot_prefill`); a string is used as that pre-fill. The
    values used are recorded in ``config.metadata`` (``diversity_settings``, ``max_docs``, ``data_dir``); what
    generation actually used (chat template or not, the stop strings, the pre-fill, whether prompts open a thought)
    is recorded in ``config.metadata["generation_protocol"]`` once the requests are built.
    """

    def __init__(self, config: dict | None = None, **kwargs) -> None:
        config = dict(config or {})
        config.pop("class", None)
        metadata = dict(config.get("metadata") or {})
        try:  # a bad value is a SettingsError: one line, no traceback, also in plain lm_eval
            check_metadata_keys(metadata)
            self._settings, self._sources = resolve_settings(metadata, COMMAND_DEFAULTS)
        except SettingsError:
            raise
        except ValueError as exc:
            raise SettingsError(f"{config.get('task', 'task')}: {exc}") from None
        settings = self._settings
        if settings.repeats is not None:
            config["repeats"] = settings.repeats
        if settings.sampling is not None:
            preset = SAMPLING_PRESETS[settings.sampling]
            config["generation_kwargs"] = {**(config.get("generation_kwargs") or {}), "do_sample": True, **preset}
        if _points_at_local_data(config):
            # an include:-ing YAML that sets dataset_path/dataset_kwargs (lm-eval's way to use local files): load
            # that data the standard way instead of the shipped loader
            config.pop("custom_dataset", None)
        show_all = settings.all_metrics
        metadata["diversity_settings"] = settings.to_dict()
        # the prompt set: N (reference 500) and where the docs came from (None: the HF Hub)
        metadata["max_docs"] = settings.max_docs
        metadata["data_dir"] = settings.data_dir  # also handed to the dataset loader (custom_dataset)
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
    _think_opened: tuple[bool, ...] = ()

    def download(self, dataset_kwargs: dict | None = None, **kwargs) -> None:
        """Load the task's documents. The shipped loader (``custom_dataset``) is called as lm-eval calls it, minus
        lm-eval's generic hint that such loaders take ``--metadata`` keys (every setting here already is one)."""
        loader = self.config.custom_dataset
        if not callable(loader):
            super().download(dataset_kwargs, **kwargs)
            return
        self.dataset = loader(**(self.config.metadata or {}), **(self.config.dataset_kwargs or {}))

    def test_docs(self):
        """The evaluated docs: the YAML's ``process_docs`` keeps the run's ``max_docs`` of them."""
        with docs_per_task(self._settings.max_docs):
            return super().test_docs()

    def override_metric(self, metric_name: str) -> None:
        """``--predict_only`` (metric ``bypass``): log the K raw responses, compute nothing, load no model."""
        super().override_metric(metric_name)
        self._predict_only = True

    def apply_filters(self) -> None:
        """Run the task's filter pipelines over its instances, built from ``filter_list`` here rather than at
        construction: the diversity filter also gets which prompts opened a thought (known once the requests are
        built), and ``--predict_only`` keeps the K raw responses where lm-eval's default would keep the first."""
        from lm_eval.filters import build_filter_ensemble

        if self._predict_only:
            pipelines = [("div", [["take_first_k", {"k": self.config.repeats}]])]
        else:
            pipelines = [
                (p["name"], [[step["function"], self._filter_kwargs(step)] for step in p["filter"]])
                for p in self.config.filter_list or []
            ]
        if not pipelines:
            super().apply_filters()
            return
        for name, steps in pipelines:
            build_filter_ensemble(name, steps).apply(self.instances)

    def _filter_kwargs(self, step: dict) -> dict:
        """A filter step's arguments, as lm-eval passes them (every key but ``function``)."""
        kwargs = {key: value for key, value in step.items() if key != "function"}
        if step["function"] == FILTER_NAME:
            kwargs["think_opened"] = self._think_opened
        return kwargs

    def process_results(self, doc: dict, results: list) -> dict:
        if self._predict_only:
            return super().process_results(doc, results)
        return _per_doc_values(results, self._metric_names)

    def doc_to_text(self, doc, doc_to_text=None):
        """The task template's text; with ``prompt_format`` lighteval stripped, as lighteval sends the query."""
        text = super().doc_to_text(doc, doc_to_text)
        return request_text(text, self._settings.prompt_format) if isinstance(text, str) else text

    def fewshot_context(self, doc, num_fewshot, **kwargs):
        # the no-CoT pre-fill is appended to the rendered prompt, not passed as lm-eval's gen_prefix: a gen_prefix
        # switches off add_generation_prompt, which would drop a thinking template's <think>
        ctx = super().fewshot_context(doc, num_fewshot, **kwargs)
        chat = bool(kwargs.get("apply_chat_template")) and kwargs.get("chat_template") is not None
        if isinstance(ctx, str) and not chat:
            ctx = plain_prefix(self._settings.prompt_format) + ctx
        if self._settings.no_cot is not False and isinstance(ctx, str):
            self._prefill_used = no_cot_prefill(self._settings.no_cot, ctx)
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
            check_sampling_preset(self.config.task, settings.sampling, gen)
        if gen.get("until") and gen["until"] != self._task_until:
            self._task_until = gen["until"]  # --gen_kwargs until=... replaced the task's list
        gen["until"] = self._task_until if uses_task_stops(settings.stop_sequences, chat) and self._task_until else []
        for warning in check_generation_kwargs(self.config.task, gen, self.config.repeats):
            log.warning(warning)
        if not self._predict_only:
            check_before_generation(self.config.task, self._settings, self._sources)  # fail before, not after it
        if kwargs.get("cache_requests"):  # lm-eval's key ignores K and sampling: key on the whole task config
            kwargs["tokenizer_name"] = requests_cache_key(kwargs.get("tokenizer_name") or "", self._config_for_key())
        super().build_all_requests(**kwargs)
        lm = generating_model(kwargs)
        fitted = {}
        if lm is not None:  # settled before anything is generated
            fitted = {**fit_to_model(self.config.task, self.instances, gen, lm),
                      **drive_vllm_in_one_call(self.config.task, lm)}  # fmt: skip
        contexts = [inst.args[0] if isinstance(inst.args[0], str) else "" for inst in self.instances]
        opened = [prompt_opens_think(c) for c in contexts]
        self._think_opened = tuple(opened)  # per request, in the order the diversity filter sees them
        self.config.metadata["generation_protocol"] = {
            "chat_template": chat,
            "stop_sequences": settings.stop_sequences,
            "prompt_format": settings.prompt_format,
            "until": gen["until"],
            "task_until": self._task_until,
            "sampling": settings.sampling,
            "no_cot_prefill": self._prefill_used,
            "prompts_open_think": sum(opened) / len(opened) if opened else 0.0,
            **fitted,
        }
        log.info(
            "%s: chat template %s, stop sequences %r (%s), %d of %d prompts open a thought",
            self.config.task, "applied" if chat else "not applied", gen["until"], settings.stop_sequences,
            sum(opened), len(opened),
        )  # fmt: skip
        if not self._predict_only:
            log_work_estimate(self)

    def _config_for_key(self) -> dict:
        """The task config as the request-cache key sees it (what a previous build recorded left out)."""
        config = self.config.to_dict()
        config["metadata"] = {k: v for k, v in (config.get("metadata") or {}).items() if k != "generation_protocol"}
        return config


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
    each metric is the catalogue's (:func:`lm_eval_diversity.catalogue.views.shown`)."""
    run = set(settings.metrics)
    corpus = set(settings.corpus_metrics)
    verifiable = is_graded(task)
    return [
        entry
        for entry in metric_list
        if views.shown(
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
    entries = views.harness_entries(extra, graded, task)
    return [*metric_list, *(e for e in entries if e["metric"] not in listed)]


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
                self.task, groups, settings, models_for(settings),
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


def baseline_split(task: str, model_rows: list[dict], baseline: str) -> dict[str, float]:
    """``loss_/residual_/qc_`` for sbert and vendi of this run against the baseline's per-prompt values.

    Prompts are matched on lm-eval's ``doc_id``; ids present in one run only are reported in a warning.
    """
    from lm_eval_diversity.analysis import split_from_prompts

    parts = catalogue.SPLIT_PARTS
    nan = {f"{part}_{m}": math.nan for m in catalogue.split_metrics() for part in parts}
    td = baseline_run(baseline).tasks.get(task)
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
    mean_aggregated = views.mean_aggregated(names)
    for r in catalogue.records():  # a share of n items: one value per item, pooled over prompts by lm-eval
        if r.weight is not None and r.weight in values and r.name in values:
            n = int(values[r.weight])
            k = round(values[r.name] * n) if n else 0
            values[r.name] = [1.0] * k + [0.0] * (n - k)
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
