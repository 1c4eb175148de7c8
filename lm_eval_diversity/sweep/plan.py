"""The sweep plan: reading and checking ``PLAN.yaml`` (format in ``docs/scale.md``) into a :class:`SweepPlan`.

A plan is strict: every value has the type its key declares (booleans only as YAML booleans, finite numbers), keys
appear once, checkpoint labels are safe file and list names, tasks are catalogue tasks and the data folders exist.
Every problem is a :class:`PlanError` naming the file and the key, raised before anything is written.

The diversity settings are plan keys under the names the flags and ``--metadata`` use (``diversity_metrics``,
``metric_device``, ``sbert_model``, ...), derived from the fields of :class:`DiversitySettings`; the older
``metric_settings: {metrics: ..., device: ...}`` mapping is still read, with a deprecation note.
"""

from __future__ import annotations

import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_diversity.catalogue import task_name
from lm_eval_diversity.catalogue.tasks import code_task_names, find_task, task_names
from lm_eval_diversity.command import parse_model_args
from lm_eval_diversity.settings import (
    COMMAND_DEFAULTS,
    DiversitySettings,
    field_choices,
    public_name,
    settings_fields,
)

PLAN_KEYS = {
    "output_root": "folder for shards, scores and the report (relative paths: against the plan's folder)",
    "checkpoints": "ordered mapping label -> lm-eval model args (string or mapping), or -> {model, model_args}",
    "tasks": "list of task names (with or without the diversity_ prefix)",
    "repeats": "K samples per prompt",
    "limit": "prompts per task (the first N); default: all",
    "prompt_shards": "shards per task over prompts (default 1)",
    "repeat_shards": "shards per task over the K repeats (default 1; must divide K)",
    "prompts_per_write": "prompts per lm-eval call inside a generation shard; each call's samples are written when it "
    "completes, so a preempted shard resumes after the last one (default 32)",
    "seed": "plan seed; every shard's seeds are derived from it",
    "model": "lm-eval model type for every checkpoint (default hf)",
    "model_args": "model args common to every checkpoint (string or mapping)",
    "gen_kwargs": "sampling settings (mapping), e.g. temperature, top_p, max_gen_toks",
    "batch_size": "lm-eval batch size of a generation shard: an integer, auto or auto:N",
    "device": "lm-eval device of a generation shard (hf); default: cuda when the shard has a GPU, else cpu",
    "apply_chat_template": "true: lm-eval's --apply_chat_template",
    "tensor_parallel_size": "GPUs one vLLM engine spans (passed to vLLM)",
    "gpus_per_generation_shard": "GPUs a generation shard asks Ray for: 'auto' (tensor_parallel_size when the cluster "
    "has or can add GPU nodes, else 0) or a number",
    "scoring_gpus": "GPUs a scoring shard asks Ray for: 'auto' (1 when a metric model runs on a GPU the cluster has or "
    "can add, else 0) or a number",
    "baseline": "checkpoint label of the baseline (QC/residual split in the report)",
    "lineages": "mapping name -> list of checkpoint labels (default: one lineage of all checkpoints in order)",
    "max_retries": "retries of a shard after a transient failure: worker or node lost, out of memory (default 2)",
    "data_dir": "local task data for the workers (LM_EVAL_DIVERSITY_DATA_DIR; os.pathsep-separated folders)",
    "confirm_run_unsafe_code": "true: generate and grade the code tasks (the generated code runs in the sandbox)",
    "metric_settings": "deprecated: the diversity settings as a mapping; give them as plan keys instead",
}
CHECKPOINT_KEYS = ("model", "model_args", "repeats")
# the settings field set through the report's own mechanism, not a plan key: the baseline is a checkpoint label
_NOT_PLAN_SETTINGS = ("baseline",)
SHARDS_DIR, SCORES_DIR, RESULTS_DIR, SAMPLES_DIR = "shards", "scores", "results", "samples"
MANIFEST, RUNNING, LOCK = "manifest.json", "running.json", ".sweep.lock"
LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class PlanError(ValueError):
    """A sweep plan that cannot run; the message names the file and the setting."""


class SweepError(RuntimeError):
    """The sweep cannot run (e.g. Ray unreachable, the output root in use); nothing was scheduled."""


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Checkpoint:
    label: str
    model: str
    model_args: str


@dataclass(frozen=True)
class SweepPlan:
    path: Path
    output_root: Path
    checkpoints: tuple[Checkpoint, ...]
    tasks: tuple[str, ...]
    repeats: int
    settings: DiversitySettings
    baseline: str | None = None
    lineages: tuple[tuple[str, tuple[str, ...]], ...] = ()
    limit: int | None = None
    prompt_shards: int = 1
    repeat_shards: int = 1
    prompts_per_write: int = 32
    seed: int = 1234
    gen_kwargs: dict = field(default_factory=dict)
    batch_size: str = "1"
    device: str | None = None
    apply_chat_template: bool = False
    tensor_parallel_size: int = 1
    gpus_per_generation_shard: str = "auto"
    scoring_gpus: str = "auto"
    max_retries: int = 2
    data_dir: str | None = None
    confirm_run_unsafe_code: bool = False
    deprecations: tuple[str, ...] = ()


def settings_keys() -> dict[str, str]:
    """Plan key -> settings field: every field under its flag / ``--metadata`` name (``metric_device``), except
    the fields the plan sets its own way and names the plan itself uses for something else."""
    return {
        public_name(f): f for f in settings_fields() if f not in _NOT_PLAN_SETTINGS and public_name(f) not in PLAN_KEYS
    }


# ---------------------------------------------------------------- reading the file (no duplicate keys)


def _strict_yaml_loader():
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """A safe YAML loader that refuses a key given twice in one mapping (YAML would keep the last)."""

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice (line {line})")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _no_duplicate_pairs(pairs: list[tuple[str, Any]]) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} given twice")
        out[key] = value
    return out


def read_plan_file(path: Path) -> dict:
    """The plan's mapping from YAML or JSON; a duplicate key or a parse error is a :class:`PlanError`."""
    if not path.is_file():
        raise PlanError(f"{path}: plan file not found")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_no_duplicate_pairs)
        else:
            import yaml

            data = yaml.load(text, Loader=_strict_yaml_loader())  # a SafeLoader subclass
    except Exception as exc:  # noqa: BLE001 - any read or parse error is bad input
        raise PlanError(f"{path}: cannot read the plan ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise PlanError(f"{path}: expected a mapping of plan settings")
    return data


# ---------------------------------------------------------------- typed values


def _finite(value: Any, where: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise PlanError(f"{where} must be a finite number, got {value!r}")
    return value


def _int(data: dict, key: str, where: str, default: int | None, minimum: int) -> int | None:
    raw = data.get(key, default)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise PlanError(f"{where}: {key} must be an integer, got {raw!r}")
    if raw < minimum:
        raise PlanError(f"{where}: {key} must be >= {minimum}, got {raw}")
    return raw


def _bool(data: dict, key: str, where: str) -> bool:
    raw = data.get(key, False)
    if not isinstance(raw, bool):
        raise PlanError(f"{where}: {key} must be true or false (a YAML boolean, unquoted), got {raw!r}")
    return raw


def _gpus(data: dict, key: str, where: str) -> str:
    """``auto`` or a finite number >= 0, kept as text (``"auto"``, ``"0.5"``)."""
    raw = data.get(key, "auto")
    if raw == "auto":
        return raw
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw < 0:
        raise PlanError(f"{where}: {key} must be 'auto' or a finite number >= 0, got {raw!r}")
    return str(raw)


def _scalars(value: dict, where: str) -> dict:
    for k, v in value.items():
        if isinstance(v, (dict, list)) or v is None:
            raise PlanError(f"{where}.{k} must be a scalar (string, number or boolean), got {v!r}")
        _finite(v, f"{where}.{k}")
    return value


def _args_string(value, where: str) -> str:
    """Model args as lm-eval's ``key=value,...`` string (from a string or a flat mapping)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in _scalars(value, where).items())
    raise PlanError(f"{where}: model args must be a string 'k=v,...' or a mapping, got {type(value).__name__}")


def _typed(value: Any, kind: Any) -> tuple[bool, Any]:
    """Whether a YAML value has the declared type ``kind`` (strictly: no text for booleans or numbers), and the
    value in that type."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        for member in args:
            ok, converted = _typed(value, member)
            if ok:
                return True, converted
        return False, value
    if kind is type(None):
        return value is None, None
    if origin is typing.Literal:
        return value in args, value
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if kind is str:
        return isinstance(value, str), value
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list) and all(isinstance(v, str) for v in items):
            return True, tuple(v.strip() for v in items if v.strip())
        return False, value
    return True, value


def _setting_value(field_name: str, value: Any, where: str) -> Any:
    kind = typing.get_type_hints(DiversitySettings)[field_name]
    ok, converted = _typed(value, kind)
    if not ok:
        choices = field_choices(field_name)
        if choices:
            raise PlanError(f"{where} must be one of {list(choices)}, got {value!r}")
        shown = kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")
        raise PlanError(f"{where} must be of type {shown}, got {value!r}")
    return converted


def read_settings(data: dict, plan_values: dict, where: str) -> tuple[DiversitySettings, tuple[str, ...]]:
    """The diversity settings from their plan keys (and the deprecated ``metric_settings`` mapping), on the
    defaults of the commands; returns them with the deprecation notes. A settings field whose name is a plan key
    of its own (``repeats``, ``data_dir``) takes the plan's checked value from ``plan_values``."""
    keys = settings_keys()
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    notes = []
    old = data.get("metric_settings")
    if old is not None:
        if not isinstance(old, dict):
            raise PlanError(f"{where}: metric_settings must be a mapping")
        by_field = {f: f for f in keys.values()} | keys
        unknown = sorted(set(old) - set(by_field))
        if unknown:
            raise PlanError(f"{where}: metric_settings: unknown key(s) {unknown}; known: {sorted(keys)}")
        for key, value in old.items():
            name = by_field[key]
            notes.append(f"{where}: metric_settings.{key} is deprecated; use the plan key {public_name(name)}")
            values[name] = _setting_value(name, value, f"{where}: metric_settings.{key}")
            given[name] = f"metric_settings.{key}"
    for key, name in keys.items():
        if key not in data:
            continue
        value = _setting_value(name, data[key], f"{where}: {key}")
        if name in values and values[name] != value:
            raise PlanError(f"{where}: {key} and {given[name]} set the same setting to different values")
        values[name], given[name] = value, key
    for name in settings_fields():
        if name not in values and plan_values.get(public_name(name)) is not None:
            values[name] = plan_values[public_name(name)]
    try:
        return COMMAND_DEFAULTS.replace(**values), tuple(notes)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{where}: {exc} (plan keys given: {', '.join(given.values())})") from None


# ---------------------------------------------------------------- checkpoints, tasks, lineages


def _label(raw: Any, where: str) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not LABEL_RE.fullmatch(raw) or ".." in raw:
        raise PlanError(
            f"{where}: checkpoint label {raw!r} is not a safe name: use letters, digits and _ . + - (starting with a "
            "letter or digit, no '..'); labels name folders and the report's columns"
        )
    return raw


def _checkpoint(label: str, spec: Any, common_model: str, common_args: str, repeats: int, where: str) -> Checkpoint:
    cw = f"{where}: checkpoints.{label}"
    model = common_model
    if isinstance(spec, dict) and set(spec) & set(CHECKPOINT_KEYS) and "pretrained" not in spec:
        bad = sorted(set(spec) - set(CHECKPOINT_KEYS))
        if bad:
            raise PlanError(f"{cw}: unknown key(s) {bad}; a checkpoint takes {list(CHECKPOINT_KEYS)}")
        if not isinstance(spec.get("model", model), str):
            raise PlanError(f"{cw}.model must be a string")
        model = spec.get("model", common_model)
        if "repeats" in spec and spec["repeats"] != repeats:
            raise PlanError(
                f"{cw}: repeats={spec['repeats']} conflicts with the plan's repeats={repeats}; every checkpoint "
                "of a sweep is sampled with one K (compare needs it)"
            )
        args = _args_string(spec.get("model_args"), cw)
    else:
        args = _args_string(spec, cw)
    merged = {**parse_model_args(common_args), **parse_model_args(args)}
    if not merged:
        raise PlanError(f"{cw}: no model args (e.g. pretrained=PATH)")
    dp = merged.get("data_parallel_size")
    if dp not in (None, "1"):
        raise PlanError(
            f"{cw}: data_parallel_size={dp}: the sweep spreads prompt shards over GPUs with distinct seeds "
            "instead; raise prompt_shards and leave data_parallel_size at 1"
        )
    for key, instead in (("seed", "the plan's 'seed'"), ("tensor_parallel_size", "the plan's key")):
        if key in merged:
            raise PlanError(f"{cw}: model arg {key!r} is set by the sweep per shard; use {instead} instead")
    return Checkpoint(label, model, ",".join(f"{k}={v}" for k, v in merged.items()))


def read_checkpoints(data: dict, repeats: int, where: str) -> tuple[Checkpoint, ...]:
    raw = data["checkpoints"]
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: checkpoints must be a mapping label -> model args")
    model = data.get("model", "hf")
    if not isinstance(model, str):
        raise PlanError(f"{where}: model must be a string (an lm-eval model type such as hf or vllm)")
    common_args = _args_string(data.get("model_args"), f"{where}: model_args")
    checkpoints, folded = [], {}
    for raw_label, spec in raw.items():
        label = _label(raw_label, f"{where}: checkpoints")
        if label.lower() in folded:  # one folder on a case-insensitive file system
            raise PlanError(f"{where}: checkpoints {folded[label.lower()]!r} and {label!r} differ only in case")
        folded[label.lower()] = label
        checkpoints.append(_checkpoint(label, spec, model, common_args, repeats, where))
    return tuple(checkpoints)


def read_tasks(data: dict, confirm_unsafe: bool, where: str) -> tuple[str, ...]:
    """The plan's tasks as lm-eval task names; each must be a catalogue task, named once."""
    tasks = data["tasks"]
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise PlanError(f"{where}: tasks must be a list of task names")
    unknown = [t for t in tasks if find_task(t) is None]
    if unknown:
        raise PlanError(f"{where}: tasks: unknown task(s) {unknown}; known: {', '.join(task_names())}")
    names = [task_name(find_task(t).name) for t in tasks]
    if len(set(names)) != len(names):
        raise PlanError(f"{where}: tasks lists a task twice")
    code = [t for t in names if find_task(t).name in code_task_names()]
    if code and not confirm_unsafe:
        raise PlanError(
            f"{where}: {', '.join(code)} run model-generated code (sandboxed) to be graded; lm-eval refuses them "
            "without consent: set confirm_run_unsafe_code: true, or drop them from tasks"
        )
    return tuple(names)


def read_lineages(data: dict, labels: list[str], where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    raw = data.get("lineages") or {"sweep": labels}
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: lineages must be a mapping name -> list of checkpoint labels")
    lineages = []
    for name, stages in raw.items():
        if not isinstance(stages, list) or not stages:
            raise PlanError(f"{where}: lineages.{name} must be a non-empty list of checkpoint labels")
        missing = [s for s in stages if str(s) not in labels]
        if missing:
            raise PlanError(f"{where}: lineages.{name}: unknown checkpoint(s) {missing}; labels: {labels}")
        lineages.append((str(name), tuple(str(s) for s in stages)))
    return tuple(lineages)


# ---------------------------------------------------------------- the other settings


def read_sampling(data: dict, where: str) -> dict:
    gen_kwargs = data.get("gen_kwargs") or {}
    if not isinstance(gen_kwargs, dict):
        raise PlanError(f"{where}: gen_kwargs must be a mapping")
    for key, why in (("n", "K is 'repeats'"), ("seed", "seeds are derived per shard from the plan 'seed'")):
        if key in gen_kwargs:
            raise PlanError(f"{where}: gen_kwargs.{key} is not allowed: {why}")
    return dict(_scalars(gen_kwargs, f"{where}: gen_kwargs"))


def read_batch_size(data: dict, where: str) -> str:
    raw = data.get("batch_size", 1)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return str(raw)
    if isinstance(raw, str) and re.fullmatch(r"auto(:[1-9]\d*)?", raw):
        return raw
    raise PlanError(f"{where}: batch_size must be an integer >= 1, auto or auto:N, got {raw!r}")


def read_data_dir(data: dict, plan_dir: Path, where: str) -> str | None:
    """The data folders, resolved against the plan's folder; each must exist."""
    raw = data.get("data_dir")
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise PlanError(f"{where}: data_dir must be a folder path (os.pathsep-separated for several)")
    folders = []
    for part in (p for p in raw.split(os.pathsep) if p):
        folder = Path(part).expanduser()
        folder = folder if folder.is_absolute() else plan_dir / folder
        if not folder.is_dir():
            raise PlanError(f"{where}: data_dir {part!r}: no such folder ({folder})")
        folders.append(str(folder.resolve()))
    return os.pathsep.join(folders)


def read_output_root(data: dict, plan_dir: Path, where: str) -> Path:
    raw = data["output_root"]
    if not isinstance(raw, str):
        raise PlanError(f"{where}: output_root must be a folder path")
    root = Path(raw).expanduser()
    root = (root if root.is_absolute() else plan_dir / root).resolve()
    if root.exists() and not root.is_dir():
        raise PlanError(f"{where}: output_root {raw!r} exists and is not a folder")
    return root


def _optional_str(data: dict, key: str, where: str) -> str | None:
    raw = data.get(key)
    if raw is not None and not isinstance(raw, str):
        raise PlanError(f"{where}: {key} must be a string, got {raw!r}")
    return raw


def _check_keys(data: dict, where: str) -> None:
    known = set(PLAN_KEYS) | set(settings_keys())
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise PlanError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    for key in ("output_root", "checkpoints", "tasks", "repeats"):
        if data.get(key) in (None, "", [], {}):
            raise PlanError(f"{where}: '{key}' is required ({PLAN_KEYS[key]})")


def load_plan(path: str | Path) -> SweepPlan:
    """Read and validate a plan (YAML or JSON); every problem is a :class:`PlanError` naming the file and key."""
    path = Path(path)
    data = read_plan_file(path)
    where = str(path)
    _check_keys(data, where)
    repeats = _int(data, "repeats", where, None, 2)
    repeat_shards = _int(data, "repeat_shards", where, 1, 1)
    if repeats % repeat_shards:
        raise PlanError(
            f"{where}: repeat_shards={repeat_shards} does not divide repeats={repeats}: the K samples of a prompt "
            "must split evenly over its repeat shards"
        )
    confirm = _bool(data, "confirm_run_unsafe_code", where)
    checkpoints = read_checkpoints(data, repeats, where)
    labels = [c.label for c in checkpoints]
    baseline = data.get("baseline")
    if baseline is None:
        raise PlanError(f"{where}: 'baseline' is required: the checkpoint label the others are compared with")
    if str(baseline) not in labels:
        raise PlanError(f"{where}: baseline {baseline!r} is not a checkpoint label; labels: {labels}")
    data_dir = read_data_dir(data, path.parent, where)
    settings, notes = read_settings(data, {"repeats": repeats, "data_dir": data_dir}, where)
    return SweepPlan(
        path=path,
        output_root=read_output_root(data, path.parent, where),
        checkpoints=checkpoints,
        tasks=read_tasks(data, confirm, where),
        repeats=repeats,
        settings=settings,
        baseline=str(baseline),
        lineages=read_lineages(data, labels, where),
        limit=_int(data, "limit", where, None, 1),
        prompt_shards=_int(data, "prompt_shards", where, 1, 1),
        repeat_shards=repeat_shards,
        prompts_per_write=_int(data, "prompts_per_write", where, 32, 1),
        seed=_int(data, "seed", where, 1234, 0),
        gen_kwargs=read_sampling(data, where),
        batch_size=read_batch_size(data, where),
        device=_optional_str(data, "device", where),
        apply_chat_template=_bool(data, "apply_chat_template", where),
        tensor_parallel_size=_int(data, "tensor_parallel_size", where, 1, 1),
        gpus_per_generation_shard=_gpus(data, "gpus_per_generation_shard", where),
        scoring_gpus=_gpus(data, "scoring_gpus", where),
        max_retries=_int(data, "max_retries", where, 2, 0),
        data_dir=data_dir,
        confirm_run_unsafe_code=confirm,
        deprecations=notes,
    )
