"""One settings object for every number the package produces; it is written into every result.

A setting is one field of :class:`DiversitySettings`: its type annotation (a ``Literal`` of choices from
:mod:`lm_eval_diversity.modes`, ``int``, ``str | None``, ...), its default and its help line (field metadata). From
the field derive, with no further wiring, the flag ``--<name>`` of ``lm-eval-diversity run`` (and of ``score`` for the
settings that change a score), the ``--metadata`` key, the environment variable ``LM_EVAL_DIVERSITY_<NAME>``, parsing
and validation with errors that name what the user typed, the recorded value in every result, and the table of
``docs/settings.md``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lm_eval_diversity import __version__
from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.modes import (
    SAMPLING_PRESETS,
    CodeMode,
    IFEvalMode,
    LexicalMode,
    MathMode,
    MetricBackend,
    MetricDtype,
    PromptFormat,
    SamplingPreset,
    SemanticRule,
    StopSequences,
)
from lm_eval_diversity.selection import MAX_DOCS

__all__ = [
    "COMMAND_DEFAULTS",
    "DIVERSITY_METRICS",
    "SAMPLING_PRESETS",
    "DiversitySettings",
    "resolve_settings",
    "setting",
]

DIVERSITY_METRICS = catalogue.default_metrics()  # the metrics run by default (the catalogue's default-on records)

DEFAULT_SBERT_MODEL = "sentence-transformers/all-mpnet-base-v2"
DEFAULT_NLI_MODEL = "FacebookAI/roberta-large-mnli"
DEFAULT_CODE_MODEL = "microsoft/unixcoder-base"  # the paper's code-embedding model (docs/metrics.md)
DEFAULT_VOCAB_SIZE = 50257  # GPT-2 size: what the reference uses in practice (docs/metrics.md, EAD)
DEFAULT_SEED = 1234
CORPUS_SAMPLE_SIZE = 500  # across-input / overall subset size (docs/metrics.md, Levels)

ENV_PREFIX = "LM_EVAL_DIVERSITY_"


def setting(default: Any, help: str, *, minimum: int | None = None, score: bool = True, run_only: bool = False):
    """A settings field: its default and help line; ``minimum`` for a bounded number; ``score``: also a flag of
    ``score``; ``run_only``: a setting of the lm-eval run itself (generation, the prompt set), which lm-eval records in
    the task config, not among the settings of a score."""
    return dataclasses.field(
        default=default, metadata={"help": help, "minimum": minimum, "score": score and not run_only, "run": run_only}
    )


@dataclass(frozen=True)
class DiversitySettings:
    """Everything that changes a diversity or quality number.

    ``metrics`` chooses which diversity metrics run; ``corpus_metrics`` which of them are also computed at the
    across-input and overall levels (NLI there costs about 4x the per-input work, so it is off by default in the
    harness). ``batch_size`` is the number of texts (SBERT) or sentence pairs (NLI) per forward pass. The last
    fields are settings of the lm-eval run (``run_only``): K, the no-CoT pre-fill, the data and the prompt set.
    """

    metrics: tuple[str, ...] = setting(
        DIVERSITY_METRICS,
        f"diversity metrics to compute, comma list of {','.join(catalogue.selectable_metrics())}",
    )
    corpus_metrics: tuple[str, ...] = setting(
        catalogue.corpus_metrics(),
        "metrics also computed at the across-input and overall levels (nli there costs ~4x per-input)",
    )
    sbert_model: str = setting(
        DEFAULT_SBERT_MODEL, "sentence-transformers model (name or local path) for sbert and vendi"
    )
    nli_model: str = setting(DEFAULT_NLI_MODEL, "NLI sequence-classification model (name or local path)")
    device: str | None = setting(
        None, "device of the metric models: cpu, cuda, cuda:0 ... (default: cuda when available)"
    )
    dtype: MetricDtype = setting(
        "float32",
        "precision of the SBERT/NLI models: float32, bfloat16 or float16 (bf16/fp16 on GPU; docs/performance.md)",
    )
    backend: MetricBackend = setting(
        "torch",
        "runtime of the metric models: torch, onnx, openvino (float32) or onnx-int8, openvino-int8 (opt-in, "
        "measured error in docs/performance.md; extras [onnx], [openvino]); exports are cached on disk",
    )
    batch_size: int = setting(64, "texts (sbert) or sentence pairs (nli) per forward pass of a metric model", minimum=1)
    vocab_size: int = setting(DEFAULT_VOCAB_SIZE, "EAD vocabulary size V (default GPT-2's)", minimum=2)
    seed: int = setting(DEFAULT_SEED, "seed of the corpus subsets and of NLI sentence sampling")
    corpus_sample_size: int = setting(
        CORPUS_SAMPLE_SIZE, "prompts sampled for the across-input and overall levels", minimum=2
    )
    nli_max_sentences: int = setting(3, "sentences per response compared by NLI", minimum=1)
    nli_max_length: int = setting(512, "maximum tokens of one NLI sentence pair", minimum=1)
    math_mode: MathMode = setting("math", "math grader: math (math-verify) or compat (as the paper's code)")
    ifeval_mode: IFEvalMode = setting(
        "official", "IFEval grader: official (lm-eval's checkers) or compat (as the paper's code)"
    )
    code_mode: CodeMode = setting(
        "official", "code grader: official (sandboxed, positive evidence) or compat (as the paper's code)"
    )
    code_timeout_s: float = setting(10.0, "seconds per program when grading code tasks")
    stop_sequences: StopSequences = setting(
        "auto", "task stop strings: auto (dropped under a chat template, as the paper), task or none"
    )
    prompt_format: PromptFormat = setting(
        "lighteval",
        "request text: lighteval (as the paper: query stripped, a blank line before it without a chat template) or "
        "plain (the task template as is)",
    )
    sampling: SamplingPreset | None = setting(
        None, "sampling preset: paper (T 0.6, top_p 0.95) or hf_patch (T 1.0, top_p 1.0); default: the task's"
    )
    # the split against a baseline in `score` is `compare --baseline`
    baseline: str | None = setting(
        None, "base model's run (lm-eval output dir or score JSON): adds the QC/residual split", score=False
    )
    lexical_mode: LexicalMode = setting(
        "default", "lexical measures: default (corrected) or compat (as the PyPI package diversity 0.3.x)"
    )
    code_model: str = setting(
        DEFAULT_CODE_MODEL, "sentence-transformers model (name or local path) for code_sbert and code_vendi"
    )
    semantic_rule: SemanticRule = setting(
        "greedy", "semantic clusters: greedy (against representatives, as semantic entropy) or closure (transitive)"
    )
    # reward-model quality on every task (docs/quality.md, "Reward model")
    quality_model: str | None = setting(
        None,
        "reward model (name or local path; sequence classification with a chat template): quality, utility and "
        "quality-filtered diversity on every task",
    )
    quality_reference: str | None = setting(
        None,
        "score JSON of the reference (baseline) run: its recorded reward calibration defines the 1-10 ratings and "
        "the acceptable threshold (default: this run's own rewards)",
    )
    quality_quantile: float = setting(
        0.5, "acceptable output: reward at least this quantile of the reference run's rewards on the task"
    )
    quality_threshold: float | None = setting(
        None, "acceptable output: reward at least this absolute value (instead of quality_quantile)"
    )
    quality_max_length: int = setting(
        4096, "tokens of one [prompt, output] conversation given to the reward model (longer: its start)", minimum=8
    )
    # --- the lm-eval run's own settings (run_only): K, the no-CoT pre-fill, the data, the prompt set ---
    repeats: int | None = setting(None, "K, samples per prompt (default: the task's)", minimum=1, run_only=True)
    no_cot: bool | str = setting(
        False,
        "true: pre-fill an empty think block (with --apply_chat_template); a string: that pre-fill",
        run_only=True,
    )
    data_dir: str | None = setting(
        None, "directories with local JSON-lines copies of the datasets (os.pathsep-separated)", run_only=True
    )
    all_metrics: bool = setting(
        False, "true: report every metric of the task, also those undefined for this run (NaN/null)", run_only=True
    )
    max_docs: int = setting(MAX_DOCS, "prompts per task: the first N of the seeded shuffle", minimum=1, run_only=True)

    def __post_init__(self) -> None:
        valid = list(catalogue.selectable_metrics())
        if not self.metrics:
            raise ValueError(f"metrics: no metric given; choose from {valid}")
        unknown = sorted(set(self.metrics) - set(valid))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown} in metrics; choose from {valid}")
        repeated = sorted({m for m in self.metrics if self.metrics.count(m) > 1})
        if repeated:
            raise ValueError(f"metrics: {', '.join(repeated)} given more than once")
        unknown = sorted(set(self.corpus_metrics) - set(catalogue.corpus_metrics()))
        if unknown:
            valid = list(catalogue.corpus_metrics())
            raise ValueError(f"unknown metric(s) {unknown} in corpus_metrics; choose from {valid}")
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        if not (isinstance(self.code_timeout_s, (int, float)) and 0 < self.code_timeout_s < math.inf):
            raise ValueError(f"code_timeout_s must be a positive, finite number of seconds, got {self.code_timeout_s}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {self.seed!r}")
        if self.backend != "torch" and self.dtype != "float32":
            raise ValueError(
                f"backend {self.backend!r} runs exported float32 (or int8) models; dtype {self.dtype!r} is for "
                "the torch backend"
            )
        self._check_quality()

    def _check_quality(self) -> None:
        """Reward-model settings: the reward metrics run exactly when ``quality_model`` is set (they are added to
        ``metrics`` then, ``qvendi`` when ``vendi`` runs; naming one without a model is an error)."""
        chosen = [m for m in self.metrics if m in catalogue.QUALITY_MODEL_METRICS]
        if self.quality_model and not chosen:  # quality-weighted Vendi only beside Vendi (it needs the embeddings)
            added = [m for m in catalogue.QUALITY_MODEL_METRICS if m != "qvendi" or "vendi" in self.metrics]
            object.__setattr__(self, "metrics", (*self.metrics, *added))
        elif chosen and not self.quality_model:
            raise ValueError(f"metric(s) {chosen} need a reward model: set quality_model")
        if not 0.0 <= self.quality_quantile <= 1.0:
            raise ValueError(f"quality_quantile must be in [0, 1], got {self.quality_quantile}")
        if self.quality_threshold is not None and self.quality_threshold != self.quality_threshold:
            raise ValueError("quality_threshold must be a number, got NaN")

    def replace(self, **changes) -> DiversitySettings:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain-JSON form recorded in results, with the package version (the run's own settings, K and the
        prompt set, are recorded by lm-eval in the task config)."""
        out = {f: getattr(self, f) for f in settings_fields()}
        out["metrics"] = list(self.metrics)
        out["corpus_metrics"] = list(self.corpus_metrics)
        out["package_version"] = __version__
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DiversitySettings:
        """Inverse of :meth:`to_dict` (extra keys such as ``package_version`` are ignored)."""
        kwargs = {f: _coerce(f, values[f], f) for f in _field_types() if f in values}
        return cls(**kwargs)


def _check_field(f: dataclasses.Field, value: Any) -> None:
    """A value outside the field's ``Literal`` choices, or below its ``minimum``, is refused, naming the field."""
    allowed = field_choices(f.name)
    if allowed and value is not None and value not in allowed:
        raise ValueError(f"{f.name} must be one of {list(allowed)}, got {value!r}")
    minimum = f.metadata.get("minimum")
    if minimum is not None and value is not None and value < minimum:
        raise ValueError(f"{f.name} must be >= {minimum}, got {value}")


# --- one derivation for every channel (flags, --metadata keys, environment variables) ---------------------------
#
# Every field of DiversitySettings is a setting. Its public name (the flag ``--<name>`` and the ``--metadata`` key)
# is the field name, except where lm-eval model arguments use the same word: lm-eval merges ``--model_args`` into
# the task metadata, so a bare ``device`` there may be the model's device. Those get a prefix.
_PREFIXED = {
    "device": "metric_device",
    "batch_size": "metric_batch_size",
    "dtype": "metric_dtype",
    "backend": "metric_backend",
    "seed": "diversity_seed",
    "metrics": "diversity_metrics",
    "baseline": "diversity_baseline",
}
# bare names that lm-eval model arguments also use: never read as a diversity setting from --metadata
MODEL_ARG_NAMES = frozenset({"device", "batch_size", "dtype", "seed", "backend"})

_FIELD_TYPES: dict[str, Any] = {}


def field_doc(field: str) -> str:
    """The help line of a settings field (its field metadata)."""
    return _field(field).metadata["help"]


def field_default_text(field: str) -> str:
    """The default of a settings field as typed on a command line ("" when it has none)."""
    default = _field(field).default
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)


def field_help(field: str, *, env: bool = True) -> str:
    """Help line of a settings field, with its default (when it has one) and (``env``: where the command reads it)
    its environment variable."""
    default = field_default_text(field)
    notes = [f"default: {default}"] if default else []
    notes += [f"env {env_name(field)}"] if env else []
    return f"{field_doc(field)} ({'; '.join(notes)})" if notes else field_doc(field)


def field_choices(field: str) -> tuple[Any, ...]:
    """The values a ``Literal``-typed field accepts (empty for any other type)."""
    kind = _field_types()[field]
    args = (
        [a for a in typing.get_args(kind) if a is not type(None)] if typing.get_origin(kind) is not Literal else [kind]
    )
    literal = args[0] if len(args) == 1 and typing.get_origin(args[0]) is Literal else None
    return typing.get_args(literal) if literal is not None else ()


def _field(name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(DiversitySettings) if f.name == name)


def settings_fields() -> tuple[str, ...]:
    """The settings recorded with every result (``diversity_settings``, a score JSON's ``settings``), in declaration
    order: every field but the run's own (:func:`run_fields`)."""
    return tuple(f.name for f in dataclasses.fields(DiversitySettings) if not f.metadata["run"])


def run_fields() -> tuple[str, ...]:
    """The settings of the lm-eval run itself (K, the no-CoT pre-fill, the data, the prompt set): flags of ``run``,
    ``--metadata`` keys and environment variables like the others, recorded by lm-eval in the task config."""
    return tuple(f.name for f in dataclasses.fields(DiversitySettings) if f.metadata["run"])


def score_fields() -> tuple[str, ...]:
    """The settings ``lm-eval-diversity score`` takes as flags."""
    return tuple(f.name for f in dataclasses.fields(DiversitySettings) if f.metadata["score"])


def _field_types() -> dict[str, Any]:
    if not _FIELD_TYPES:
        hints = typing.get_type_hints(DiversitySettings)
        _FIELD_TYPES.update({f.name: hints[f.name] for f in dataclasses.fields(DiversitySettings)})
    return _FIELD_TYPES


def public_name(field: str) -> str:
    """The flag / ``--metadata`` name of a settings field (``device`` -> ``metric_device``)."""
    return _PREFIXED.get(field, field)


def env_name(field: str) -> str:
    """The environment variable of a settings field (``device`` -> ``LM_EVAL_DIVERSITY_DEVICE``)."""
    return ENV_PREFIX + field.upper()


def metadata_keys() -> dict[str, str]:
    """``--metadata`` key -> settings field: every public name, plus bare field names that clash with nothing."""
    keys = {public_name(f): f for f in _field_types()}
    keys.update({f: f for f in _field_types() if f not in MODEL_ARG_NAMES})
    return keys


def parse_bool(value: Any, source: str) -> bool:
    """``true``/``false`` as JSON or text (``1``/``0``, ``yes``/``no``, ``on``/``off``), naming ``source`` in errors."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{source}={value!r}: expected true or false")


def _coerce(field: str, value: Any, source: str) -> Any:
    """Convert a JSON / string value to the field's type, naming ``source`` in the error."""
    kind = _field_types()[field]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    optional = type(None) in typing.get_args(kind)
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null"))):
        return None
    target = args[0] if optional and len(args) == 1 else kind
    origin = typing.get_origin(target)
    if target is bool:
        return parse_bool(value, source)
    try:
        if set(args) == {bool, str}:  # a flag or a text (no_cot): true/false, else the text itself
            try:
                return parse_bool(value, source)
            except ValueError:
                return str(value)
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise ValueError("expected a list or a comma-separated string")
            return tuple(str(v).strip() for v in items if str(v).strip())
        if target is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected an integer")
            try:
                return int(value)
            except ValueError:
                raise ValueError("expected an integer") from None
        if target is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if target is str or origin is Literal:
            if isinstance(value, (dict, list)):
                raise ValueError("expected a string")
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}={value!r}: {exc}") from None
    return value


def resolve_settings(
    metadata: Mapping[str, Any],
    base: DiversitySettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[DiversitySettings, dict[str, str]]:
    """Settings from ``--metadata`` keys, then ``LM_EVAL_DIVERSITY_*`` variables, then ``base`` (defaults).

    Returns the settings and, per field set by the user, where it came from (``--metadata metric_device``,
    ``LM_EVAL_DIVERSITY_DEVICE``), so that errors name what the user actually typed.
    """
    env = os.environ if environ is None else environ
    base = base or DiversitySettings()
    changes: dict[str, Any] = {}
    sources: dict[str, str] = {}
    keys = metadata_keys()
    for key, field in keys.items():
        if key not in metadata:
            continue
        source = f"--{key} / --metadata {key}"  # the run flag and the --metadata key share the name
        value = _coerce(field, metadata[key], source)
        if field in sources and changes[field] != value:
            raise ValueError(f"{sources[field]} and {source} set the same setting to different values")
        changes[field] = value
        sources.setdefault(field, source)
    for field in _field_types():
        raw = env.get(env_name(field))
        if field in sources or raw is None or raw == "":
            continue
        changes[field] = _coerce(field, raw, env_name(field))
        sources[field] = env_name(field)
    if "corpus_metrics" in sources:  # asked for by name: a corpus metric that does not run would silently be absent
        absent = [m for m in changes["corpus_metrics"] if m not in changes.get("metrics", base.metrics)]
        if absent:
            raise ValueError(
                f"{sources['corpus_metrics']}: {', '.join(absent)} not among the metrics that run; add them to "
                f"{sources.get('metrics', '--diversity_metrics / --metadata diversity_metrics')}"
            )
    try:
        settings = dataclasses.replace(base, **changes) if changes else base
    except ValueError as exc:
        for field, value in changes.items():  # name the setting at fault, as the user gave it
            try:
                dataclasses.replace(base, **{field: value})
            except ValueError as alone:
                raise ValueError(f"{sources[field]}={value!r}: {alone}") from None
        given = ", ".join(sources.values())
        raise ValueError(f"{exc}{f' (settings given: {given})' if given else ''}") from None
    return settings, sources


# Defaults of the commands (`run` inside lm-eval, `score`): the across-input/overall levels of NLI only on request,
# as they cost ~4x the per-input NLI work.
COMMAND_DEFAULTS = DiversitySettings(corpus_metrics=catalogue.corpus_metrics(default_only=True))
