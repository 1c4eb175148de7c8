"""``lm-eval-diversity sweep PLAN.yaml``: a checkpoint x task sweep on Ray, sharded, resumable, with distinct seeds.

A plan names checkpoints (label -> lm-eval model args), tasks, K, sampling, metric settings, an output root and the
baseline (format in ``docs/scale.md``). Every task's prompts are split into prompt shards (lm-eval's ``samples``
doc-index selection) and, optionally, its K repeats into repeat shards; each generation shard has its own engine seed
derived from (plan seed, checkpoint, task, shard). When all generation shards of a checkpoint x task are finished, a
scoring shard merges them into one samples set and scores it with the same code as ``lm-eval-diversity score``, so
the corpus-level values are those of an unsharded run. At the end ``compare`` writes the lineage report.

Every shard writes its outputs atomically, then a manifest (inputs, seed, checksums); a rerun skips shards whose
manifest matches their inputs and files and redoes the rest. Ray places the shards (``num_gpus`` = tensor parallel
size for generation), retries a dead worker ``max_retries`` times, and a shard that keeps failing is reported while
the others finish. Ray is imported only by :func:`run_sweep`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_diversity.atomic import write_atomic
from lm_eval_diversity.command import parse_model_args
from lm_eval_diversity.settings import DiversitySettings, settings_fields

log = logging.getLogger(__name__)

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
    "confirm_run_unsafe_code": "true: grade humaneval/mbpp by running the generated code (sandboxed)",
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


# ---------------------------------------------------------------- shards and seeds


def shard_seed(plan_seed: int, label: str, task: str, prompt_shard: int, repeat_shard: int) -> int:
    """The engine seed of one generation shard: a hash of (plan seed, checkpoint, task, shard), in [0, 2**31)."""
    key = f"{plan_seed}\x00{label}\x00{task}\x00{prompt_shard}\x00{repeat_shard}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


def split_prompts(n_docs: int, n_shards: int) -> list[list[int]]:
    """Contiguous, sorted doc-index lists (lm-eval maps logged doc ids through a sorted selection correctly)."""
    n_shards = max(1, min(n_shards, n_docs))
    bounds = [round(i * n_docs / n_shards) for i in range(n_shards + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(n_shards)]


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def generation_shards(plan: SweepPlan, n_docs: dict[str, int]) -> list[dict]:
    """Every generation shard of the plan as a JSON-able spec (the inputs recorded in its manifest)."""
    specs = []
    seeds: dict[int, str] = {}
    k_shard = plan.repeats // plan.repeat_shards
    for ck in plan.checkpoints:
        for task in plan.tasks:
            parts = split_prompts(n_docs[task], plan.prompt_shards)
            for p, doc_ids in enumerate(parts):
                for r in range(plan.repeat_shards):
                    seed = shard_seed(plan.seed, ck.label, task, p, r)
                    sid = f"{ck.label}/{task}/p{p:03d}-r{r:02d}"
                    if seed in seeds:  # a 31-bit hash collision: refuse rather than repeat a sample stream
                        raise PlanError(f"shards {seeds[seed]} and {sid} derive the same seed; change the plan seed")
                    seeds[seed] = sid
                    model_args = ck.model_args
                    if ck.model == "vllm":
                        # vLLM's engine seed is a model arg; lm-eval's --seed does not reach it
                        model_args = f"{model_args},seed={seed},tensor_parallel_size={plan.tensor_parallel_size}"
                    specs.append(
                        {
                            "id": sid,
                            "label": ck.label,
                            "task": task,
                            "prompt_shard": p,
                            "repeat_shard": r,
                            "model": ck.model,
                            "model_args": model_args,
                            "doc_ids": doc_ids,
                            "repeats": k_shard,
                            "seed": seed,
                            "gen_kwargs": plan.gen_kwargs,
                            "batch_size": plan.batch_size,
                            "device": plan.device,
                            "apply_chat_template": plan.apply_chat_template,
                            "data_dir": plan.data_dir,
                        }
                    )
    return specs


def shard_dir(root: Path, sid: str) -> Path:
    return root / SHARDS_DIR / sid


def samples_name(task: str, spec: dict) -> str:
    return f"samples_{task}_p{spec['prompt_shard']:03d}r{spec['repeat_shard']:02d}.jsonl"


def scoring_spec(plan: SweepPlan, label: str, task: str, gen_specs: list[dict]) -> dict:
    """The scoring shard of one checkpoint x task; its inputs include the generation shards' checksums."""
    root = plan.output_root
    inputs = []
    for s in sorted(gen_specs, key=lambda s: (s["prompt_shard"], s["repeat_shard"])):
        manifest = read_manifest(shard_dir(root, s["id"]))
        inputs.append({"id": s["id"], "files": (manifest or {}).get("files", {})})
    return {
        "id": f"{label}/{task}/score",
        "label": label,
        "task": task,
        "shards": inputs,
        "settings": plan.settings.to_dict(),
        "allow_code_execution": plan.confirm_run_unsafe_code,
    }


# ---------------------------------------------------------------- files: manifests (writes: atomic.write_atomic)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def shard_done(folder: Path, spec: dict) -> bool:
    """Finished: a manifest for exactly these inputs, and every file it lists present with its checksum."""
    manifest = read_manifest(folder)
    if not manifest or manifest.get("inputs_hash") != _hash(spec):
        return False
    files = manifest.get("files") or {}
    if not files:
        return False
    for name, digest in files.items():
        f = folder / name
        if not f.is_file() or file_sha256(f) != digest:
            return False
    return True


def _begin(folder: Path) -> int:
    """Mark a shard as running (attempt number, host, pid); returns the attempt number."""
    try:
        attempt = int(json.loads((folder / RUNNING).read_text(encoding="utf-8")).get("attempt", 0)) + 1
    except (OSError, ValueError, AttributeError):
        attempt = 1
    info = {"attempt": attempt, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    write_atomic(folder / RUNNING, json.dumps(info))
    return attempt


def _finish(folder: Path, spec: dict, files: dict[str, str], attempt: int, started: float, extra: dict) -> dict:
    manifest = {
        "id": spec["id"],
        "inputs": spec,
        "inputs_hash": _hash(spec),
        "files": {name: file_sha256(folder / name) for name in files},
        "attempt": attempt,
        "host": socket.gethostname(),
        "wall_s": round(time.time() - started, 3),
        "finished": time.time(),
        **extra,
    }
    write_atomic(folder / MANIFEST, json.dumps(manifest, indent=1))
    (folder / RUNNING).unlink(missing_ok=True)
    return manifest


# ---------------------------------------------------------------- lm-eval calls (documents, samples)


def task_doc_count(task: str, data_dir: str | None = None) -> int:
    """Number of documents of one of our tasks after its own selection (the reference's N)."""
    from lm_eval.tasks import get_task_dict

    from lm_eval_diversity.lm_eval_cli import task_manager

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
    import lm_eval
    from lm_eval.utils import handle_non_serializable

    from lm_eval_diversity.lm_eval_cli import task_manager

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


# ---------------------------------------------------------------- the shard bodies (run inside Ray workers)


def run_generation_shard(spec: dict, root: str) -> dict:
    """Generate one shard's samples through lm-eval and write them with a manifest; returns the manifest."""
    folder = shard_dir(Path(root), spec["id"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    attempt = _begin(folder)
    started = time.time()
    records = generate_samples(
        spec["model"],
        spec["model_args"],
        spec["task"],
        spec["doc_ids"],
        repeats=spec["repeats"],
        seed=spec["seed"],
        gen_kwargs=spec["gen_kwargs"],
        batch_size=spec["batch_size"],
        device=spec["device"],
        apply_chat_template=spec["apply_chat_template"],
        data_dir=spec["data_dir"],
    )
    name = samples_name(spec["task"], spec)
    write_atomic(folder / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    n_out = sum(len(r["resps"][0]) for r in records)
    return _finish(folder, spec, {name: ""}, attempt, started, {"n_docs": len(records), "n_outputs": n_out})


def merge_shards(root: Path, spec: dict) -> list:
    """One prompt group per doc from a task's generation shards: repeat shards' outputs concatenated in order."""
    from lm_eval_diversity.samples import read_samples_file
    from lm_eval_diversity.scoring import PromptGroup

    groups: dict[int, PromptGroup] = {}
    for shard in sorted(spec["shards"], key=lambda s: s["id"]):  # ids end in p<prompt>-r<repeat>, zero-padded
        folder = shard_dir(root, shard["id"])
        if not shard["files"]:
            raise RuntimeError(f"{shard['id']}: generation shard has no manifest; rerun the sweep")
        for name, digest in shard["files"].items():
            path = folder / name
            if file_sha256(path) != digest:
                raise RuntimeError(f"{path}: checksum differs from the manifest (changed after generation)")
            for g in read_samples_file(path, task=spec["task"]).groups:
                if g.doc_id in groups:
                    prev = groups[g.doc_id]
                    if prev.doc != g.doc:
                        raise RuntimeError(f"{path}: doc_id {g.doc_id} holds a different doc than another shard")
                    prev.outputs = prev.outputs + g.outputs
                else:
                    groups[g.doc_id] = PromptGroup(doc_id=g.doc_id, outputs=list(g.outputs), doc=g.doc)
    return [groups[d] for d in sorted(groups)]


def run_scoring_shard(spec: dict, root: str) -> dict:
    """Merge a checkpoint x task's generation shards, score the whole task once, write the task entry."""
    from lm_eval_diversity.preflight import models_for  # metric models loaded once per worker process
    from lm_eval_diversity.scoring import score_task, task_scores_to_json

    root_path = Path(root)
    folder = root_path / SCORES_DIR / spec["label"] / spec["task"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    attempt = _begin(folder)
    started = time.time()
    settings = DiversitySettings.from_dict(spec["settings"])
    groups = merge_shards(root_path, spec)
    scores = score_task(
        spec["task"], groups, settings, models_for(settings), allow_code_execution=spec["allow_code_execution"]
    )
    entry = task_scores_to_json(scores)
    entry["source"] = [s["id"] for s in spec["shards"]]
    write_atomic(folder / "task.json", json.dumps(entry, indent=1, allow_nan=False))
    return _finish(folder, spec, {"task.json": ""}, attempt, started, {"n_prompts": scores.n_prompts})


# ---------------------------------------------------------------- the driver


@dataclass
class ShardState:
    spec: dict
    kind: str  # "generate" or "score"
    state: str = "pending"  # pending, done, skipped, failed
    error: str | None = None
    submitted: float | None = None
    finished: float | None = None
    attempt: int | None = None


@dataclass
class SweepSummary:
    shards: dict[str, ShardState]
    report: Path | None = None
    report_error: str | None = None
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> list[ShardState]:
        return [s for s in self.shards.values() if s.state == "failed"]

    def counts(self, kind: str | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.shards.values():
            if kind is None or s.kind == kind:
                out[s.state] = out.get(s.state, 0) + 1
        return out


def task_doc_counts(plan: SweepPlan) -> dict[str, int]:
    """Prompts per task (``limit`` applied), read through lm-eval on the driver."""
    counts = {}
    for task in plan.tasks:
        n = task_doc_count(task, plan.data_dir)
        counts[task] = min(n, plan.limit) if plan.limit else n
        if counts[task] == 0:
            raise PlanError(f"{plan.path}: task {task} has no documents")
    return counts


def status_table(plan: SweepPlan, states: dict[str, ShardState], started: float, now: float | None = None) -> str:
    """Shards done/running/failed per checkpoint x task, with the rate and an ETA."""
    now = now or time.time()
    root = plan.output_root
    rows = [("checkpoint", "task", "generate", "score")]
    for ck in plan.checkpoints:
        for task in plan.tasks:
            gen = [s for s in states.values() if s.kind == "generate" and s.spec["label"] == ck.label
                   and s.spec["task"] == task]  # fmt: skip
            sc = states.get(f"{ck.label}/{task}/score")
            rows.append((ck.label, task, _cell(gen, root), _cell([sc] if sc else [], root, scoring=True)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    fresh = [s for s in states.values() if s.state == "done" and s.finished]
    left = sum(s.state == "pending" for s in states.values())
    elapsed = max(now - started, 1e-9)
    rate = len(fresh) / elapsed * 60
    eta = f"{left / (len(fresh) / elapsed) / 60:.1f} min" if fresh and left else ("0" if not left else "n/a")
    lines.append(f"elapsed {elapsed:.0f} s | {len(fresh)} shards done this run ({rate:.1f}/min) | {left} left | "
                 f"ETA {eta}")
    return "\n".join(lines)


def _cell(shards: list[ShardState], root: Path, scoring: bool = False) -> str:
    if not shards:
        return "waiting" if scoring else "-"
    done = sum(s.state in ("done", "skipped") for s in shards)
    failed = sum(s.state == "failed" for s in shards)
    running = 0
    for s in shards:
        if s.state == "pending" and s.submitted:
            folder = (root / SCORES_DIR / s.spec["label"] / s.spec["task"]) if s.kind == "score" else shard_dir(
                root, s.spec["id"]
            )
            running += (folder / RUNNING).is_file()
    text = f"{done}/{len(shards)} done"
    if running:
        text += f", {running} running"
    if failed:
        text += f", {failed} FAILED"
    return text


def _error_text(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:500]


def write_results(plan: SweepPlan, states: dict[str, ShardState]) -> dict[str, Path]:
    """One score JSON per checkpoint (``results/<label>.json``, the ``score`` command's format) from its tasks."""
    root = plan.output_root
    out = {}
    for ck in plan.checkpoints:
        tasks = {}
        for task in plan.tasks:
            st = states.get(f"{ck.label}/{task}/score")
            if st and st.state in ("done", "skipped"):
                tasks[task] = json.loads((root / SCORES_DIR / ck.label / task / "task.json").read_text("utf-8"))
        if not tasks:
            continue
        seeds = {
            s.spec["id"]: s.spec["seed"]
            for s in states.values()
            if s.kind == "generate" and s.spec["label"] == ck.label
        }
        data = {
            "settings": plan.settings.to_dict(),
            "tasks": tasks,
            "sweep": {
                "plan": str(plan.path),
                "model": ck.model,
                "model_args": ck.model_args,
                "repeats": plan.repeats,
                "gen_kwargs": plan.gen_kwargs,
                "prompt_shards": plan.prompt_shards,
                "repeat_shards": plan.repeat_shards,
                "plan_seed": plan.seed,
                "shard_seeds": seeds,
            },
        }
        path = root / RESULTS_DIR / f"{ck.label}.json"
        write_atomic(path, json.dumps(data, indent=1, allow_nan=False))
        out[ck.label] = path
    return out


def write_report(plan: SweepPlan, results: dict[str, Path]) -> Path:
    """``compare`` over the lineage(s) with the baseline: HTML (with the lineage plot when matplotlib is there) and
    Markdown, in the output root."""
    import importlib.util

    from lm_eval_diversity.compare import run_compare

    root = plan.output_root
    lineages = {
        name: {lbl: str(results[lbl]) for lbl in stages if lbl in results} for name, stages in plan.lineages
    }
    lineage_file = root / "lineages.json"
    write_atomic(lineage_file, json.dumps({"lineages": {n: s for n, s in lineages.items() if s}}, indent=1))
    args = [str(results[c.label]) for c in plan.checkpoints if c.label in results]
    args += ["--labels", ",".join(c.label for c in plan.checkpoints if c.label in results)]
    args += ["--lineage", str(lineage_file)]
    if plan.baseline in results:
        args += ["--baseline", plan.baseline]
    html = root / "report.html"
    plot = ["--plot", str(root / "report.png")] if importlib.util.find_spec("matplotlib") else []
    rc = run_compare([*args, *plot, "--format", "html", "--output", str(html)])
    rc = rc or run_compare([*args, "--format", "markdown", "--output", str(root / "report.md")])
    if rc not in (0, 1):
        raise RuntimeError(f"compare failed (exit {rc}); see the message above")
    return html


def run_sweep(
    plan: SweepPlan,
    address: str | None = None,
    num_cpus: int | None = None,
    status_every: float = 30.0,
    echo: Callable[[str], None] | None = None,
) -> SweepSummary:
    """Run (or resume) the whole sweep on Ray and write the report; finished shards are never redone."""
    import ray

    echo = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    root = plan.output_root
    root.mkdir(parents=True, exist_ok=True)
    n_docs = task_doc_counts(plan)
    gen_specs = generation_shards(plan, n_docs)
    states: dict[str, ShardState] = {}
    for spec in gen_specs:
        done = shard_done(shard_dir(root, spec["id"]), spec)
        states[spec["id"]] = ShardState(spec, "generate", "skipped" if done else "pending")
    by_task: dict[tuple[str, str], list[dict]] = {}
    for spec in gen_specs:
        by_task.setdefault((spec["label"], spec["task"]), []).append(spec)

    started = time.time()
    init_kwargs: dict = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
    if address:
        init_kwargs["address"] = address
    else:  # a new local instance, even when a cluster started on this machine is around
        init_kwargs["address"] = "local"
        if num_cpus:
            init_kwargs["num_cpus"] = num_cpus
    try:
        ray.init(**init_kwargs)
    except Exception as exc:  # noqa: BLE001 - connection/auth failures of any kind: say where, no traceback
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise SweepError(
            f"cannot start or reach {where}: {_error_text(exc)} (a cluster with token authentication needs "
            "RAY_AUTH_MODE=token and its token, see docs/scale.md)"
        ) from None
    gpus = float(ray.cluster_resources().get("GPU", 0))
    score_gpus = (1.0 if gpus else 0.0) if plan.scoring_gpus == "auto" else float(plan.scoring_gpus)
    gen_task = ray.remote(run_generation_shard).options(
        num_cpus=1, num_gpus=plan.tensor_parallel_size if gpus else 0, max_retries=plan.max_retries,
        retry_exceptions=True,
    )  # fmt: skip
    score_task_remote = ray.remote(run_scoring_shard).options(
        num_cpus=1, num_gpus=score_gpus, max_retries=plan.max_retries, retry_exceptions=True
    )
    pending: dict = {}

    def submit(state: ShardState) -> None:
        fn = gen_task if state.kind == "generate" else score_task_remote
        state.submitted = time.time()
        pending[fn.remote(state.spec, str(root))] = state

    def maybe_score(label: str, task: str) -> None:
        gens = [states[s["id"]] for s in by_task[(label, task)]]
        if not all(g.state in ("done", "skipped") for g in gens):
            return
        spec = scoring_spec(plan, label, task, by_task[(label, task)])
        folder = root / SCORES_DIR / label / task
        st = ShardState(spec, "score", "skipped" if shard_done(folder, spec) else "pending")
        states[spec["id"]] = st
        if st.state == "pending":
            submit(st)

    summary = SweepSummary(states)
    try:
        for st in list(states.values()):
            if st.state == "pending":
                submit(st)
        for label, task in by_task:
            maybe_score(label, task)
        last_status = 0.0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=min(status_every, 5.0))
            for ref in ready:
                st = pending.pop(ref)
                try:
                    manifest = ray.get(ref)
                    st.state, st.attempt = "done", manifest.get("attempt")
                except Exception as exc:  # noqa: BLE001 - a shard's failure is reported, the others go on
                    st.state, st.error = "failed", _error_text(exc)
                    echo(f"[sweep] shard {st.spec['id']} FAILED after retries: {st.error}")
                st.finished = time.time()
                if st.kind == "generate" and st.state == "done":
                    maybe_score(st.spec["label"], st.spec["task"])
            if time.time() - last_status >= status_every:
                echo(status_table(plan, states, started))
                last_status = time.time()
    except KeyboardInterrupt:
        summary.interrupted = True
        for ref in pending:
            ray.cancel(ref, force=True)
        echo("[sweep] interrupted: finished shards are kept; rerun the same command to resume")
    finally:
        summary.elapsed_s = time.time() - started
        _write_status(plan, states, summary)
        if not address:
            ray.shutdown()
    echo(status_table(plan, states, started))
    if not summary.interrupted:
        results = write_results(plan, states)
        if results:
            try:
                summary.report = write_report(plan, results)
            except (RuntimeError, ValueError, OSError) as exc:
                summary.report_error = str(exc)
    return summary


def _write_status(plan: SweepPlan, states: dict[str, ShardState], summary: SweepSummary) -> None:
    data = {
        "elapsed_s": round(summary.elapsed_s, 3),
        "interrupted": summary.interrupted,
        "shards": {
            sid: {"kind": s.kind, "state": s.state, "error": s.error, "attempt": s.attempt,
                  "seed": s.spec.get("seed"),
                  "driver_s": round(s.finished - s.submitted, 3) if s.finished and s.submitted else None}
            for sid, s in states.items()
        },  # fmt: skip
    }
    write_atomic(plan.output_root / "status.json", json.dumps(data, indent=1))


# ---------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lm-eval-diversity sweep",
        description="Run a checkpoint x task sweep on Ray (local, or a cluster with --address auto): sharded "
        "generation with distinct seeds, exact merge, scoring, and the compare report. Reruns resume.",
    )
    p.add_argument("plan", help="plan YAML/JSON (format in docs/scale.md)")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto': the cluster this node belongs to)")
    p.add_argument("--num_cpus", type=int, default=None, help="CPUs of a local Ray instance (default: all)")
    p.add_argument("--status_every", type=float, default=30.0, help="seconds between status tables")
    p.add_argument("--dry_run", action="store_true", help="print the shards and their seeds; run nothing")
    return p


def run_sweep_cli(argv: list[str]) -> int:
    """``sweep``: 0 all shards finished and the report written; 1 a shard failed or the report did not build;
    2 bad plan; 130 interrupted."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        plan = load_plan(args.plan)
        if args.dry_run:
            specs = generation_shards(plan, task_doc_counts(plan))
            for s in specs:
                print(f"{s['id']}  docs {s['doc_ids'][0]}-{s['doc_ids'][-1]}  K {s['repeats']}  seed {s['seed']}")
            return 0
        if args.address is None:
            try:
                import ray  # noqa: F401
            except ImportError:
                raise PlanError('the sweep needs Ray: pip install "lm-eval-diversity[ray]"') from None
        summary = run_sweep(plan, address=args.address, num_cpus=args.num_cpus, status_every=args.status_every)
    except (PlanError, SweepError, ValueError, FileNotFoundError) as exc:
        print(f"lm-eval-diversity sweep: error: {exc}", file=sys.stderr)
        return 2
    if summary.interrupted:
        return 130
    for st in summary.failed:
        print(f"FAILED {st.spec['id']}: {st.error}", file=sys.stderr)
    if summary.report_error:
        print(f"lm-eval-diversity sweep: report not written: {summary.report_error}", file=sys.stderr)
    if summary.report:
        print(f"[sweep] report: {summary.report}", file=sys.stderr)
    c = summary.counts()
    print(
        f"[sweep] {c.get('done', 0)} shards run, {c.get('skipped', 0)} already finished (skipped), "
        f"{c.get('failed', 0)} failed, in {summary.elapsed_s:.1f} s",
        file=sys.stderr,
    )
    return 1 if summary.failed or summary.report_error else 0
