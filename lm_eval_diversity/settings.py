"""One settings object for every number the package produces; it is written into every result."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from lm_eval_diversity import __version__

DIVERSITY_METRICS = ("ead", "sbert", "vendi", "nli")
LEVELS = ("per_input", "across_input", "overall")

DEFAULT_SBERT_MODEL = "sentence-transformers/all-mpnet-base-v2"
DEFAULT_NLI_MODEL = "FacebookAI/roberta-large-mnli"
DEFAULT_VOCAB_SIZE = 50257  # GPT-2 size: what the reference uses in practice (reference_spec §3.1)
DEFAULT_SEED = 1234
CORPUS_SAMPLE_SIZE = 500  # across-input / overall subset size (reference_spec §3)

ENV_PREFIX = "LM_EVAL_DIVERSITY_"
METRIC_DTYPES = ("float32", "bfloat16", "float16")  # weights/activations of the SBERT and NLI models


@dataclass(frozen=True)
class DiversitySettings:
    """Everything that changes a diversity or quality number.

    ``metrics`` chooses which diversity metrics run; ``corpus_metrics`` which of them are also computed at the
    across-input and overall levels (NLI there costs about 4x the per-input work, so it is off by default in the
    harness). ``batch_size`` is the number of texts (SBERT) or sentence pairs (NLI) per forward pass.
    """

    metrics: tuple[str, ...] = DIVERSITY_METRICS
    corpus_metrics: tuple[str, ...] = ("ead", "sbert", "vendi", "nli")
    sbert_model: str = DEFAULT_SBERT_MODEL
    nli_model: str = DEFAULT_NLI_MODEL
    device: str | None = None  # None: cuda when available, else cpu
    dtype: str = "float32"  # SBERT/NLI model precision; bf16/fp16 change the numbers slightly (docs/performance.md)
    batch_size: int = 64
    vocab_size: int = DEFAULT_VOCAB_SIZE
    seed: int = DEFAULT_SEED
    corpus_sample_size: int = CORPUS_SAMPLE_SIZE
    nli_max_sentences: int = 3
    nli_max_length: int = 512
    math_mode: str = "math"  # "math" (math-verify) or "compat" (reference_spec §5.1)
    ifeval_mode: str = "official"  # "official" (lm-eval checkers) or "compat" (reference_spec §5.3)
    code_timeout_s: float = 10.0
    baseline: str | None = None  # base-model run (lm-eval output dir or score JSON) for the QC/residual split

    def __post_init__(self) -> None:
        unknown = sorted(set(self.metrics) - set(DIVERSITY_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown} in metrics; choose from {list(DIVERSITY_METRICS)}")
        unknown = sorted(set(self.corpus_metrics) - set(DIVERSITY_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown} in corpus_metrics; choose from {list(DIVERSITY_METRICS)}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.dtype not in METRIC_DTYPES:
            raise ValueError(f"dtype must be one of {list(METRIC_DTYPES)}, got {self.dtype!r}")
        if self.math_mode not in ("math", "compat"):
            raise ValueError(f"math_mode must be 'math' or 'compat', got {self.math_mode!r}")
        if self.ifeval_mode not in ("official", "compat"):
            raise ValueError(f"ifeval_mode must be 'official' or 'compat', got {self.ifeval_mode!r}")

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
    def from_env(cls, base: DiversitySettings | None = None, environ=None) -> DiversitySettings:
        """Apply ``LM_EVAL_DIVERSITY_*`` environment variables on top of ``base`` (used by plain ``lm_eval``)."""
        env = os.environ if environ is None else environ
        base = base or cls()
        changes: dict = {}
        for name, key, cast in (
            ("SBERT_MODEL", "sbert_model", str),
            ("NLI_MODEL", "nli_model", str),
            ("DEVICE", "device", str),
            ("DTYPE", "dtype", str),
            ("BATCH_SIZE", "batch_size", int),
            ("VOCAB_SIZE", "vocab_size", int),
            ("SEED", "seed", int),
            ("MATH_MODE", "math_mode", str),
            ("IFEVAL_MODE", "ifeval_mode", str),
            ("BASELINE", "baseline", str),
        ):
            raw = env.get(ENV_PREFIX + name)
            if raw is None or raw == "":
                continue
            try:
                changes[key] = cast(raw)
            except ValueError as exc:
                raise ValueError(f"environment variable {ENV_PREFIX + name}={raw!r}: {exc}") from None
        for name, key in (("METRICS", "metrics"), ("CORPUS_METRICS", "corpus_metrics")):
            raw = env.get(ENV_PREFIX + name)
            if raw is not None:
                changes[key] = parse_metric_list(raw, setting=ENV_PREFIX + name)
        return dataclasses.replace(base, **changes) if changes else base


def parse_metric_list(raw: str, setting: str = "--metrics") -> tuple[str, ...]:
    """Parse ``"ead,sbert"`` into a tuple, naming the setting in the error for unknown names."""
    names = tuple(m.strip().lower() for m in raw.split(",") if m.strip())
    unknown = sorted(set(names) - set(DIVERSITY_METRICS))
    if unknown:
        raise ValueError(f"{setting}: unknown metric(s) {unknown}; choose from {list(DIVERSITY_METRICS)}")
    return names
