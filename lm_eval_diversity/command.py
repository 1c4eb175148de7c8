"""The command-line channel of the settings: ``run`` flags and ``--metadata`` keys, split from lm-eval's arguments.

Light on purpose (settings only): lm-eval's parser with these flags is built in :mod:`lm_eval_diversity.lm_eval_cli`.
"""

from __future__ import annotations

import re

from lm_eval_diversity.settings import (
    COMMAND_DEFAULTS,
    field_help,
    metadata_keys,
    public_name,
    resolve_settings,
    run_fields,
    settings_fields,
)

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

    known = set(metadata_keys())
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


def run_flags() -> dict[str, tuple[str, str]]:
    """``run`` flag -> (``--metadata`` key, help): one per settings field, derived, not listed."""
    return {f"--{public_name(f)}": (public_name(f), field_help(f)) for f in (*settings_fields(), *run_fields())}


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


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


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


class DataParallelError(ValueError):
    """vLLM data parallelism would repeat samples across replicas."""


def parse_model_args(text: str) -> dict[str, str]:
    """``"k=v,k2=v2"`` (lm-eval's ``--model_args`` form) as a dict of stripped strings, in order."""
    out = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def check_data_parallel(argv: list[str]) -> None:
    """Refuse vLLM ``data_parallel_size`` > 1: every replica starts from the same engine seed and lm-eval deals the
    K clones of a prompt across replicas, so replicas can draw identical samples (only K/dp distinct)."""
    if _flag_value(argv, "--model") != "vllm":
        return
    value = parse_model_args(_flag_value(argv, "--model_args") or "").get("data_parallel_size", "")
    if value not in ("", "1"):
        raise DataParallelError(
            f"--model_args data_parallel_size={value}: vLLM replicas share one engine seed, so the K "
            "samples of a prompt can repeat across replicas. Use tensor_parallel_size for one model over "
            "several GPUs, or `lm-eval-diversity sweep` to shard prompts over GPUs with a distinct seed each "
            "(docs/scale.md)"
        )
