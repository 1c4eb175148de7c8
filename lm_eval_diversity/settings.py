"""One settings object for every number the package produces; it is written into every result."""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lm_eval_diversity import __version__
from lm_eval_diversity.catalogue import metrics as catalogue

DIVERSITY_METRICS = catalogue.default_metrics()  # the metrics run by default (the catalogue's default-on records)

DEFAULT_SBERT_MODEL = "sentence-transformers/all-mpnet-base-v2"
DEFAULT_NLI_MODEL = "FacebookAI/roberta-large-mnli"
DEFAULT_CODE_MODEL = "microsoft/unixcoder-base"  # the paper's code-embedding model (docs/metrics.md)
SEMANTIC_RULES = ("greedy", "closure")  # semantic-cluster rules (lm_eval_diversity.metrics.semantic.RULES)
DEFAULT_VOCAB_SIZE = 50257  # GPT-2 size: what the reference uses in practice (docs/metrics.md, EAD)
DEFAULT_SEED = 1234
CORPUS_SAMPLE_SIZE = 500  # across-input / overall subset size (docs/metrics.md, Levels)

ENV_PREFIX = "LM_EVAL_DIVERSITY_"
METRIC_DTYPES = ("float32", "bfloat16", "float16")  # weights/activations of the SBERT and NLI models
# runtimes of the metric models (docs/performance.md, "Metric backends"): torch, or an exported model run by ONNX
# Runtime / OpenVINO, in float32 or int8 (one value per exported artifact, so int8 cannot be asked of torch)
METRIC_BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")

STOP_SEQUENCE_MODES = ("auto", "task", "none")
# request text (docs/tasks.md, "Prompt format"): "lighteval" = the reference's (the query stripped; without a chat
# template, "\n\n" before it), "plain" = the task template unchanged
PROMPT_FORMATS = ("lighteval", "plain")
CODE_MODES = ("official", "compat")
# Named sampling presets (docs/tasks.md): the experiment config, and what the reference's HF backend patch forces.
SAMPLING_PRESETS: dict[str, dict[str, float]] = {
    "paper": {"temperature": 0.6, "top_p": 0.95},
    "hf_patch": {"temperature": 1.0, "top_p": 1.0},
}


# modes of lm_eval_diversity.metrics.lexical (MODES; not imported here: it needs numpy, and settings start fast)
LEXICAL_MODES = ("default", "compat")


@dataclass(frozen=True)
class DiversitySettings:
    """Everything that changes a diversity or quality number.

    ``metrics`` chooses which diversity metrics run; ``corpus_metrics`` which of them are also computed at the
    across-input and overall levels (NLI there costs about 4x the per-input work, so it is off by default in the
    harness). ``batch_size`` is the number of texts (SBERT) or sentence pairs (NLI) per forward pass.
    """

    metrics: tuple[str, ...] = DIVERSITY_METRICS
    corpus_metrics: tuple[str, ...] = catalogue.corpus_metrics()
    sbert_model: str = DEFAULT_SBERT_MODEL
    nli_model: str = DEFAULT_NLI_MODEL
    device: str | None = None  # None: cuda when available, else cpu
    dtype: str = "float32"  # SBERT/NLI model precision; bf16/fp16 change the numbers slightly (docs/performance.md)
    backend: str = "torch"  # runtime of the metric models (METRIC_BACKENDS; docs/performance.md)
    batch_size: int = 64
    vocab_size: int = DEFAULT_VOCAB_SIZE
    seed: int = DEFAULT_SEED
    corpus_sample_size: int = CORPUS_SAMPLE_SIZE
    nli_max_sentences: int = 3
    nli_max_length: int = 512
    math_mode: str = "math"  # "math" (math-verify) or "compat" (docs/metrics.md, graders)
    ifeval_mode: str = "official"  # "official" (lm-eval checkers) or "compat" (docs/metrics.md, graders)
    code_mode: str = "official"  # "official" (sandboxed, positive evidence) or "compat" (the reference's rules)
    code_timeout_s: float = 10.0
    # "auto": drop the task's stop strings when a chat template is applied (the reference's rule); "task": always
    # keep them; "none": never use them
    stop_sequences: str = "auto"
    prompt_format: str = "lighteval"  # PROMPT_FORMATS: the request text as the reference's lighteval sends it
    sampling: str | None = None  # a SAMPLING_PRESETS name; None: the task's generation_kwargs
    baseline: str | None = None  # base-model run (lm-eval output dir or score JSON) for the QC/residual split
    lexical_mode: str = "default"  # lexical measures: "default" (corrected) or "compat" (the PyPI package diversity)
    # model-based beyond-paper metrics
    code_model: str = DEFAULT_CODE_MODEL  # sentence-transformers model of code_sbert / code_vendi
    semantic_rule: str = "greedy"  # semantic clusters: "greedy" (semantic-entropy reference) or "closure"
    # reward-model quality on every task (docs/quality.md, "Reward model")
    quality_model: str | None = None  # sequence-classification reward model with a chat template
    quality_reference: str | None = None  # score JSON whose recorded reward calibration is used; None: this run's
    quality_quantile: float = 0.5  # acceptable: reward >= this quantile of the reference rewards of the task
    quality_threshold: float | None = None  # acceptable: reward >= this absolute value (instead of the quantile)
    quality_max_length: int = 4096  # tokens of one rendered conversation (longer ones keep their start)

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
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.corpus_sample_size < 2:
            raise ValueError(f"corpus_sample_size must be >= 2 (outputs to compare), got {self.corpus_sample_size}")
        for name in ("nli_max_sentences", "nli_max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (isinstance(self.code_timeout_s, (int, float)) and 0 < self.code_timeout_s < float("inf")):
            raise ValueError(
                "code_timeout_s must be a positive, finite number of seconds, "
                f"got {self.code_timeout_s}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {self.seed!r}")
        if self.dtype not in METRIC_DTYPES:
            raise ValueError(f"dtype must be one of {list(METRIC_DTYPES)}, got {self.dtype!r}")
        if self.backend not in METRIC_BACKENDS:
            raise ValueError(f"backend must be one of {list(METRIC_BACKENDS)}, got {self.backend!r}")
        if self.backend != "torch" and self.dtype != "float32":
            raise ValueError(
                f"backend {self.backend!r} runs exported float32 (or int8) models; dtype {self.dtype!r} is for "
                "the torch backend"
            )
        if self.math_mode not in ("math", "compat"):
            raise ValueError(f"math_mode must be 'math' or 'compat', got {self.math_mode!r}")
        if self.ifeval_mode not in ("official", "compat"):
            raise ValueError(f"ifeval_mode must be 'official' or 'compat', got {self.ifeval_mode!r}")
        if self.code_mode not in CODE_MODES:
            raise ValueError(f"code_mode must be one of {list(CODE_MODES)}, got {self.code_mode!r}")
        if self.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format must be one of {list(PROMPT_FORMATS)}, got {self.prompt_format!r}")
        if self.stop_sequences not in STOP_SEQUENCE_MODES:
            raise ValueError(f"stop_sequences must be one of {list(STOP_SEQUENCE_MODES)}, got {self.stop_sequences!r}")
        if self.lexical_mode not in LEXICAL_MODES:
            raise ValueError(f"lexical_mode must be one of {list(LEXICAL_MODES)}, got {self.lexical_mode!r}")
        if self.semantic_rule not in SEMANTIC_RULES:
            raise ValueError(f"semantic_rule must be one of {list(SEMANTIC_RULES)}, got {self.semantic_rule!r}")
        self._check_quality()
        if self.sampling is not None and self.sampling not in SAMPLING_PRESETS:
            raise ValueError(f"sampling must be one of {list(SAMPLING_PRESETS)}, got {self.sampling!r}")

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
        if self.quality_max_length < 8:
            raise ValueError(f"quality_max_length must be >= 8 tokens, got {self.quality_max_length}")

    def replace(self, **changes) -> DiversitySettings:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain-JSON form recorded in results, with the package version."""
        out = dataclasses.asdict(self)
        out["metrics"] = list(self.metrics)
        out["corpus_metrics"] = list(self.corpus_metrics)
        out["package_version"] = __version__
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DiversitySettings:
        """Inverse of :meth:`to_dict` (extra keys such as ``package_version`` are ignored)."""
        kwargs = {f: _coerce(f, values[f], f) for f in _field_types() if f in values}
        return cls(**kwargs)


# Defaults of the commands (`run` inside lm-eval, `score`): the across-input/overall levels of NLI only on request,
# as they cost ~4x the per-input NLI work.
COMMAND_DEFAULTS = DiversitySettings(corpus_metrics=catalogue.corpus_metrics(default_only=True))


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

# help text of each setting (flags of `run` and `score`, docs/settings.md); a field without one gets a generic line
FIELD_HELP = {
    "metrics": f"diversity metrics to compute, comma list of {','.join(catalogue.selectable_metrics())}",
    "corpus_metrics": "metrics also computed at the across-input and overall levels (nli there costs ~4x per-input)",
    "sbert_model": "sentence-transformers model (name or local path) for sbert and vendi",
    "nli_model": "NLI sequence-classification model (name or local path)",
    "device": "device of the metric models: cpu, cuda, cuda:0 ... (default: cuda when available)",
    "dtype": "precision of the SBERT/NLI models: float32, bfloat16 or float16 (bf16/fp16 on GPU; docs/performance.md)",
    "backend": "runtime of the metric models: torch, onnx, openvino (float32) or onnx-int8, openvino-int8 "
    "(opt-in, measured error in docs/performance.md); exports are cached on disk",
    "batch_size": "texts (sbert) or sentence pairs (nli) per forward pass of a metric model",
    "vocab_size": "EAD vocabulary size V (default GPT-2's)",
    "seed": "seed of the corpus subsets and of NLI sentence sampling",
    "corpus_sample_size": "prompts sampled for the across-input and overall levels",
    "nli_max_sentences": "sentences per response compared by NLI",
    "nli_max_length": "maximum tokens of one NLI sentence pair",
    "math_mode": "math grader: math (math-verify) or compat (as the paper's code)",
    "ifeval_mode": "IFEval grader: official (lm-eval's checkers) or compat (as the paper's code)",
    "code_mode": "code grader: official (sandboxed, positive evidence) or compat (as the paper's code)",
    "code_timeout_s": "seconds per program when grading code tasks",
    "stop_sequences": "task stop strings: auto (dropped under a chat template, as the paper), task or none",
    "prompt_format": "request text: lighteval (as the paper: query stripped, a blank line before it without a chat "
    "template) or plain (the task template as is)",
    "sampling": "sampling preset: paper (T 0.6, top_p 0.95) or hf_patch (T 1.0, top_p 1.0); default: the task's",
    "baseline": "base model's run (lm-eval output dir or score JSON): adds the QC/residual split",
    "lexical_mode": "lexical measures: default (corrected) or compat (as the PyPI package diversity 0.3.x)",
    "code_model": "sentence-transformers model (name or local path) for code_sbert and code_vendi",
    "semantic_rule": "semantic clusters: greedy (against representatives, as semantic entropy) or closure (transitive)",
    "quality_model": "reward model (name or local path; sequence classification with a chat template): quality, "
    "utility and quality-filtered diversity on every task",
    "quality_reference": "score JSON of the reference (baseline) run: its recorded reward calibration defines the "
    "1-10 ratings and the acceptable threshold (default: this run's own rewards)",
    "quality_quantile": "acceptable output: reward at least this quantile of the reference run's rewards on the task",
    "quality_threshold": "acceptable output: reward at least this absolute value (instead of quality_quantile)",
    "quality_max_length": "tokens of one [prompt, output] conversation given to the reward model (longer: its start)",
}

_FIELD_TYPES: dict[str, Any] = {}


def field_help(field: str, *, env: bool = True) -> str:
    """Help line of a settings field, with its default and (``env``: where the command reads it) its variable."""
    default = getattr(DiversitySettings(), field)
    if isinstance(default, tuple):
        default = ",".join(map(str, default))
    text = FIELD_HELP.get(field, f"diversity setting {field}")
    return f"{text} (default: {default}{f'; env {env_name(field)}' if env else ''})"


def settings_fields() -> tuple[str, ...]:
    """Names of all DiversitySettings fields, in declaration order."""
    return tuple(_field_types())


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
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise ValueError("expected a list or a comma-separated string")
            return tuple(str(v).strip() for v in items if str(v).strip())
        if target is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected an integer")
            return int(value)
        if target is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if target is str:
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
