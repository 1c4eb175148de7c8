"""The sweep plan: reading and checking ``PLAN.yaml`` (format in ``docs/scale.md``) into a :class:`SweepPlan`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_diversity.command import parse_model_args
from lm_eval_diversity.settings import DiversitySettings, settings_fields

PLAN_KEYS = {
    "output_root": "folder for shards, scores and the report (relative paths: against the plan's folder)",
    "checkpoints": "ordered mapping label -> lm-eval model args (string or mapping), or -> {model, model_args}",
    "tasks": "list of task names",
    "repeats": "K samples per prompt",
    "limit": "prompts per task (the first N); default: all",
    "prompt_shards": "shards per task over prompts (default 1)",
    "repeat_shards": "shards per task over the K repeats (default 1; must divide K)",
    "seed": "plan seed; every shard's engine seed is derived from it",
    "model": "lm-eval model type for every checkpoint (default hf)",
    "model_args": "model args common to every checkpoint (string or mapping)",
    "gen_kwargs": "sampling settings (mapping), e.g. temperature, top_p, max_gen_toks",
    "batch_size": "lm-eval batch size of a generation shard",
    "device": "lm-eval device of a generation shard (hf), e.g. cuda or cpu",
    "apply_chat_template": "true: lm-eval's --apply_chat_template",
    "tensor_parallel_size": "GPUs per generation shard (Ray num_gpus); passed to vLLM",
    "scoring_gpus": "GPUs per scoring shard: 'auto' (1 when the cluster has GPUs), or a number",
    "metric_settings": "DiversitySettings fields (metrics, sbert_model, nli_model, dtype, device, ...)",
    "baseline": "checkpoint label of the baseline (QC/residual split in the report)",
    "lineages": "mapping name -> list of checkpoint labels (default: one lineage of all checkpoints in order)",
    "max_retries": "Ray retries of a shard whose worker dies or raises (default 2)",
    "data_dir": "LM_EVAL_DIVERSITY_DATA_DIR for the workers (local task data)",
    "confirm_run_unsafe_code": "true: grade the code tasks by running the generated code (sandboxed)",
}
CHECKPOINT_KEYS = ("model", "model_args", "repeats")
SHARDS_DIR, SCORES_DIR, RESULTS_DIR = "shards", "scores", "results"
MANIFEST, RUNNING = "manifest.json", "running.json"


class PlanError(ValueError):
    """A sweep plan that cannot run; the message names the file and the setting."""


class SweepError(RuntimeError):
    """The sweep cannot run (e.g. Ray unreachable); nothing was scheduled."""


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
    seed: int = 1234
    gen_kwargs: dict = field(default_factory=dict)
    batch_size: str = "1"
    device: str | None = None
    apply_chat_template: bool = False
    tensor_parallel_size: int = 1
    scoring_gpus: str = "auto"
    max_retries: int = 2
    data_dir: str | None = None
    confirm_run_unsafe_code: bool = False


def _args_string(value, where: str) -> str:
    """Model args as lm-eval's ``key=value,...`` string (from a string or a flat mapping)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                raise PlanError(f"{where}: model arg {k!r} must be a scalar, got {type(v).__name__}")
        return ",".join(f"{k}={v}" for k, v in value.items())
    raise PlanError(f"{where}: model args must be a string 'k=v,...' or a mapping, got {type(value).__name__}")


def _int_setting(data: dict, key: str, where: str, default: int | None, minimum: int) -> int | None:
    raw = data.get(key, default)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise PlanError(f"{where}: {key} must be an integer, got {raw!r}")
    if raw < minimum:
        raise PlanError(f"{where}: {key} must be >= {minimum}, got {raw}")
    return raw


def _metric_settings(raw, where: str) -> DiversitySettings:
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(settings_fields()))
    if unknown:
        raise PlanError(f"{where}: metric_settings: unknown key(s) {unknown}; known: {sorted(settings_fields())}")
    try:
        return DiversitySettings.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{where}: metric_settings: {exc}") from None


def load_plan(path: str | Path) -> SweepPlan:
    """Read and validate a plan (YAML or JSON); every problem is a :class:`PlanError` naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"{path}: plan file not found")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - any parse error is bad input
        raise PlanError(f"{path}: cannot parse the plan ({exc})") from None
    if not isinstance(data, dict):
        raise PlanError(f"{path}: expected a mapping of plan settings")
    where = str(path)
    unknown = sorted(set(data) - set(PLAN_KEYS))
    if unknown:
        raise PlanError(f"{where}: unknown key(s) {unknown}; known: {sorted(PLAN_KEYS)}")
    for key in ("output_root", "checkpoints", "tasks", "repeats"):
        if data.get(key) in (None, "", [], {}):
            raise PlanError(f"{where}: '{key}' is required ({PLAN_KEYS[key]})")

    repeats = _int_setting(data, "repeats", where, None, 2)
    common_model = str(data.get("model", "hf"))
    common_args = _args_string(data.get("model_args"), f"{where}: model_args")
    raw_ckpts = data["checkpoints"]
    if not isinstance(raw_ckpts, dict):
        raise PlanError(f"{where}: checkpoints must be a mapping label -> model args")
    checkpoints = []
    for label, spec in raw_ckpts.items():
        cw = f"{where}: checkpoints.{label}"
        model = common_model
        if isinstance(spec, dict) and set(spec) & set(CHECKPOINT_KEYS) and "pretrained" not in spec:
            bad = sorted(set(spec) - set(CHECKPOINT_KEYS))
            if bad:
                raise PlanError(f"{cw}: unknown key(s) {bad}; a checkpoint takes {list(CHECKPOINT_KEYS)}")
            model = str(spec.get("model", common_model))
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
        checkpoints.append(Checkpoint(str(label), model, ",".join(f"{k}={v}" for k, v in merged.items())))

    tasks = data["tasks"]
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise PlanError(f"{where}: tasks must be a list of task names")
    if len(set(tasks)) != len(tasks):
        raise PlanError(f"{where}: tasks lists a task twice")

    repeat_shards = _int_setting(data, "repeat_shards", where, 1, 1)
    if repeats % repeat_shards:
        raise PlanError(
            f"{where}: repeat_shards={repeat_shards} does not divide repeats={repeats}: the K samples of a prompt "
            "must split evenly over its repeat shards"
        )
    gen_kwargs = data.get("gen_kwargs") or {}
    if not isinstance(gen_kwargs, dict):
        raise PlanError(f"{where}: gen_kwargs must be a mapping")
    for key, why in (("n", "K is 'repeats'"), ("seed", "seeds are derived per shard from the plan 'seed'")):
        if key in gen_kwargs:
            raise PlanError(f"{where}: gen_kwargs.{key} is not allowed: {why}")

    labels = [c.label for c in checkpoints]
    baseline = data.get("baseline")
    if baseline is None:
        raise PlanError(f"{where}: 'baseline' is required: the checkpoint label the others are compared with")
    if str(baseline) not in labels:
        raise PlanError(f"{where}: baseline {baseline!r} is not a checkpoint label; labels: {labels}")
    raw_lineages = data.get("lineages") or {"sweep": labels}
    if not isinstance(raw_lineages, dict):
        raise PlanError(f"{where}: lineages must be a mapping name -> list of checkpoint labels")
    lineages = []
    for name, stages in raw_lineages.items():
        if not isinstance(stages, list) or not stages:
            raise PlanError(f"{where}: lineages.{name} must be a non-empty list of checkpoint labels")
        missing = [s for s in stages if str(s) not in labels]
        if missing:
            raise PlanError(f"{where}: lineages.{name}: unknown checkpoint(s) {missing}; labels: {labels}")
        lineages.append((str(name), tuple(str(s) for s in stages)))

    root = Path(str(data["output_root"])).expanduser()
    root = root if root.is_absolute() else (path.parent / root)
    scoring_gpus = str(data.get("scoring_gpus", "auto"))
    if scoring_gpus != "auto":
        try:
            if float(scoring_gpus) < 0:
                raise ValueError
        except ValueError:
            raise PlanError(f"{where}: scoring_gpus must be 'auto' or a number >= 0, got {scoring_gpus!r}") from None
    data_dir = data.get("data_dir")
    if data_dir is not None:
        parts = [Path(p).expanduser() for p in str(data_dir).split(os.pathsep) if p]
        data_dir = os.pathsep.join(str(p if p.is_absolute() else path.parent / p) for p in parts)
    return SweepPlan(
        path=path,
        output_root=root.resolve(),
        checkpoints=tuple(checkpoints),
        tasks=tuple(tasks),
        repeats=repeats,
        settings=_metric_settings(data.get("metric_settings"), where),
        baseline=str(baseline),
        lineages=tuple(lineages),
        limit=_int_setting(data, "limit", where, None, 1),
        prompt_shards=_int_setting(data, "prompt_shards", where, 1, 1),
        repeat_shards=repeat_shards,
        seed=_int_setting(data, "seed", where, 1234, 0),
        gen_kwargs=dict(gen_kwargs),
        batch_size=str(data.get("batch_size", 1)),
        device=None if data.get("device") is None else str(data["device"]),
        apply_chat_template=bool(data.get("apply_chat_template", False)),
        tensor_parallel_size=_int_setting(data, "tensor_parallel_size", where, 1, 1),
        scoring_gpus=scoring_gpus,
        max_retries=_int_setting(data, "max_retries", where, 2, 0),
        data_dir=data_dir,
        confirm_run_unsafe_code=bool(data.get("confirm_run_unsafe_code", False)),
    )
