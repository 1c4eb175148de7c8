"""The sweep's units of work: generation shards with their seeds, the manifests that make reruns resume, the
lm-eval calls, and the shard bodies that run inside Ray workers (generate; merge and score).

A generation shard runs its prompts in slices of ``prompts_per_write`` (one lm-eval call each over the model it
loaded once), each slice seeded from (shard seed, slice index) alone and written as a part file when it completes: a
shard preempted after some slices resumes at the first missing one and produces the samples an uninterrupted run
would have. Its samples file holds lm-eval's sample lines (``--log_samples``), so ``score`` reads it.

A scoring shard merges a checkpoint x task's generation shards into one regular lm-eval samples file
(``samples/<label>/samples_<task>_<datetime>.jsonl``) and scores that file as ``score`` does, so ``score`` of the
merged file gives the sweep's numbers exactly.

Errors are classified where they happen: a transient one (out of memory, a lost connection or file system, the
worker or node lost) is retried by Ray; any other fails the shard at once with its message.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from lm_eval_diversity.atomic import write_atomic
from lm_eval_diversity.settings import DiversitySettings, public_name, settings_fields
from lm_eval_diversity.sweep.plan import (
    MANIFEST,
    RUNNING,
    SAMPLES_DIR,
    SCORES_DIR,
    SHARDS_DIR,
    PlanError,
    SweepPlan,
)

PARTS = "parts"
# settings fields that change what a generation shard produces (the others only change scoring); passed to the
# task as --metadata keys, and part of the shard's inputs, so changing one redoes generation
GENERATION_FIELDS = ("stop_sequences", "sampling", "no_cot")

# ---------------------------------------------------------------- shards and seeds


def _derive(*parts) -> int:
    key = "\x00".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


def shard_seed(plan_seed: int, label: str, task: str, prompt_shard: int, repeat_shard: int) -> int:
    """The seed of one generation shard: a hash of (plan seed, checkpoint, task, shard), in [0, 2**31)."""
    return _derive(plan_seed, label, task, prompt_shard, repeat_shard)


def slice_seed(seed: int, index: int) -> int:
    """The seed of one slice of a generation shard (every seed slot of its lm-eval call)."""
    return _derive(seed, "slice", index)


def split_prompts(n_docs: int, n_shards: int) -> list[list[int]]:
    """Contiguous, sorted doc-index lists (lm-eval maps logged doc ids through a sorted selection correctly)."""
    n_shards = max(1, min(n_shards, n_docs))
    bounds = [round(i * n_docs / n_shards) for i in range(n_shards + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(n_shards)]


def slices(spec: dict) -> list[list[int]]:
    """A generation shard's doc ids in slices of ``prompts_per_write``."""
    ids, n = spec["doc_ids"], spec["prompts_per_write"]
    return [ids[i : i + n] for i in range(0, len(ids), n)]


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def generation_metadata(settings: DiversitySettings) -> dict:
    """The ``--metadata`` keys of the settings that change generation (:data:`GENERATION_FIELDS` that exist)."""
    fields = settings.to_dict()
    return {public_name(f): fields[f] for f in GENERATION_FIELDS if f in settings_fields()}


def generation_shards(plan: SweepPlan, n_docs: dict[str, int]) -> list[dict]:
    """Every generation shard of the plan as a JSON-able spec (the inputs recorded in its manifest)."""
    specs = []
    seeds: dict[int, str] = {}
    common = {
        "repeats": plan.repeats // plan.repeat_shards,
        "gen_kwargs": plan.gen_kwargs,
        "batch_size": plan.batch_size,
        "device": plan.device,
        "apply_chat_template": plan.apply_chat_template,
        "data_dir": plan.data_dir,
        "prompts_per_write": plan.prompts_per_write,
        "confirm_run_unsafe_code": plan.confirm_run_unsafe_code,
        "task_metadata": generation_metadata(plan.settings),
    }
    for ck, task in itertools.product(plan.checkpoints, plan.tasks):
        for p, doc_ids in enumerate(split_prompts(n_docs[task], plan.prompt_shards)):
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
                    {"id": sid, "label": ck.label, "task": task, "prompt_shard": p, "repeat_shard": r,
                     "model": ck.model, "model_args": model_args, "doc_ids": doc_ids, "seed": seed, **common}
                )  # fmt: skip
    return specs


def shard_dir(root: Path, sid: str) -> Path:
    return root / SHARDS_DIR / sid


def score_dir(root: Path, label: str, task: str) -> Path:
    return root / SCORES_DIR / label / task


def samples_name(task: str, spec: dict) -> str:
    """``samples_<task>_p000r00.jsonl``: lm-eval's name with the shard in place of the date (``score`` reads it)."""
    return f"samples_{task}_p{spec['prompt_shard']:03d}r{spec['repeat_shard']:02d}.jsonl"


def scoring_spec(plan: SweepPlan, label: str, task: str, gen_specs: list[dict]) -> dict:
    """The scoring shard of one checkpoint x task; its inputs include the generation shards' files and checksums."""
    inputs = []
    for s in sorted(gen_specs, key=lambda s: (s["prompt_shard"], s["repeat_shard"])):
        files = (read_manifest(shard_dir(plan.output_root, s["id"])) or {}).get("files", {})
        inputs.append({"id": s["id"], "files": {name: rec["sha256"] for name, rec in files.items()}})
    return {
        "id": f"{label}/{task}/score",
        "label": label,
        "task": task,
        "shards": inputs,
        "settings": plan.settings.to_dict(),
        "allow_code_execution": plan.confirm_run_unsafe_code,
    }


# ---------------------------------------------------------------- manifests: size and mtime first, then checksums


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_record(path: Path) -> dict:
    st = path.stat()
    return {"sha256": file_sha256(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def file_matches(path: Path, record: dict) -> bool:
    """The file as the manifest recorded it: same size and mtime (no read), else the same checksum."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != record.get("size"):
        return False
    return st.st_mtime_ns == record.get("mtime_ns") or file_sha256(path) == record.get("sha256")


def read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def shard_done(root: Path, folder: Path, spec: dict) -> bool:
    """Finished: a manifest for exactly these inputs, and every file it lists as it was written."""
    manifest = read_manifest(folder)
    if not manifest or manifest.get("inputs_hash") != _hash(spec):
        return False
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return False
    return all(isinstance(rec, dict) and file_matches(root / name, rec) for name, rec in files.items())


def shards_done(root: Path, folders_specs: list[tuple[Path, dict]], workers: int = 16) -> list[bool]:
    """:func:`shard_done` for many shards at once (file checks overlap on a network file system)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda fs: shard_done(root, *fs), folders_specs))


# ---------------------------------------------------------------- running a shard: marker, errors, manifest


class ShardError(RuntimeError):
    """A shard failed for a reason a retry would meet again (bad model path, refused settings, bad data)."""


class TransientShardError(RuntimeError):
    """A shard failed for a reason that may pass (out of memory, a lost connection or file system): retried."""


_TRANSIENT_TYPES = frozenset(
    {"OutOfMemoryError", "MemoryError", "ConnectionError", "TimeoutError", "Timeout", "ChunkedEncodingError"}
)
_TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.ESTALE, errno.ETIMEDOUT, errno.EAGAIN, errno.ECONNRESET})


def is_transient(exc: BaseException) -> bool:
    """Out of memory (CUDA or host), a lost connection or timeout, a stale or failing file system."""
    if any(cls.__name__ in _TRANSIENT_TYPES for cls in type(exc).__mro__):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def error_text(exc: BaseException) -> str:
    """``Type: last line of the message`` (at most 500 characters)."""
    cause = getattr(exc, "cause", None) or exc
    lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:500]


def _worker_info() -> dict:
    info = {"host": socket.gethostname(), "pid": os.getpid()}
    ray = sys.modules.get("ray")  # inside a Ray worker; elsewhere (a test, a local run) there is nothing to record
    if ray is not None and ray.is_initialized():
        ctx = ray.get_runtime_context()
        info["assigned"] = {k: v for k, v in ctx.get_assigned_resources().items() if k in ("CPU", "GPU")}
        info["gpu_ids"] = [str(g) for g in ray.get_gpu_ids()]
    return info


def _begin(folder: Path, run_id: str) -> tuple[int, dict]:
    """Mark a shard as running (attempt, run id, worker); returns the attempt number and the worker info."""
    try:
        attempt = int(json.loads((folder / RUNNING).read_text(encoding="utf-8")).get("attempt", 0)) + 1
    except (OSError, ValueError, AttributeError):
        attempt = 1
    worker = _worker_info()
    info = {"attempt": attempt, "run_id": run_id, "started": time.time(), **worker}
    write_atomic(folder / RUNNING, json.dumps(info))
    return attempt, worker


def run_shard(body: Callable[[dict, Path, Path], tuple[list[Path], dict]], spec: dict, root: str, folder: Path,
              run_id: str) -> dict:  # fmt: skip
    """Run one shard body, classify its failure, write its manifest; returns the manifest."""
    root_path = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    attempt, worker = _begin(folder, run_id)
    started = time.time()
    try:
        files, extra = body(spec, root_path, folder)
    except Exception as exc:  # noqa: BLE001 - classified: retried by Ray, or a failure with its message
        if is_transient(exc):
            raise TransientShardError(error_text(exc)) from None
        raise ShardError(error_text(exc)) from None
    manifest = {
        "id": spec["id"],
        "inputs": spec,
        "inputs_hash": _hash(spec),
        "files": {p.relative_to(root_path).as_posix(): file_record(p) for p in files},
        "attempt": attempt,
        "worker": worker,
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


def load_model(spec: dict):
    """The shard's lm-eval model, loaded once for all its slices. Without a device in the plan, a model that takes
    one runs on the GPU Ray gave the shard, else on the CPU."""
    import lm_eval.api.registry

    device = spec["device"]
    if device is None and spec["model"] != "vllm":  # vLLM ignores lm-eval's device
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    config = {"batch_size": spec["batch_size"], "max_batch_size": None, "device": device}
    return lm_eval.api.registry.get_model(spec["model"]).create_from_arg_string(spec["model_args"], config)


def seed_vllm_requests(lm, seed: int) -> None:
    """Give every request of the next lm-eval call on a vLLM model its own sampling seed, drawn from ``seed`` and the
    request's position (lm-eval orders requests deterministically). vLLM then samples each request from its own
    generator, so a slice's samples depend on the slice alone, not on what the engine ran before it."""
    original = type(lm)._model_generate
    position = itertools.count()

    def seeded(requests, generate: bool = False, sampling_params=None):
        if generate and isinstance(sampling_params, list):
            sampling_params = [_with_seed(sp, _derive(seed, next(position))) for sp in sampling_params]
        return original(lm, requests, generate, sampling_params)

    lm._model_generate = seeded


def _with_seed(params, seed: int):
    params = params.clone()
    params.seed = seed
    return params


def sample_lines(records: list[dict]) -> str:
    """lm-eval's logged samples as ``--log_samples`` writes them (its tracker's conversion: arguments as
    ``gen_args_<i>.arg_<j>``, responses as strings, the target as text), one JSON line each."""
    from lm_eval.utils import handle_non_serializable, sanitize_list

    lines = []
    for record in records:
        record = dict(record)
        record["arguments"] = {
            f"gen_args_{i}": {f"arg_{j}": value for j, value in enumerate(arg)}
            for i, arg in enumerate(record["arguments"])
        }
        record["resps"] = sanitize_list(record["resps"])
        record["filtered_resps"] = sanitize_list(record["filtered_resps"])
        record["target"] = str(record["target"])
        lines.append(json.dumps(record, default=handle_non_serializable, ensure_ascii=False) + "\n")
    return "".join(lines)


def load_task(spec: dict):
    """The shard's lm-eval task (documents loaded once for all its slices), with the plan's generation settings."""
    from lm_eval.tasks import get_task_dict

    from lm_eval_diversity.lm_eval_cli import task_manager

    metadata = {"repeats": spec["repeats"], **spec["task_metadata"]}
    if spec["data_dir"]:
        metadata["data_dir"] = spec["data_dir"]
    return get_task_dict([spec["task"]], task_manager(include_defaults=False, metadata=metadata))[spec["task"]]


def generate_slice(lm, task_obj, spec: dict, doc_ids: list[int], seed: int) -> str:
    """K samples for the docs ``doc_ids`` through ``simple_evaluate`` (``samples`` selection, ``predict_only``),
    every seed slot set to ``seed``; returns lm-eval's sample lines. lm-eval rebuilds the task's requests on every
    call, so one task object serves every slice."""
    import lm_eval

    task = spec["task"]
    if spec["model"] == "vllm":
        seed_vllm_requests(lm, seed)
    res = lm_eval.simple_evaluate(
        model=lm,
        tasks=[task_obj],
        samples={task: sorted(doc_ids)},
        predict_only=True,
        log_samples=True,
        bootstrap_iters=0,
        gen_kwargs=dict(spec["gen_kwargs"]) or None,
        apply_chat_template=spec["apply_chat_template"],
        confirm_run_unsafe_code=spec["confirm_run_unsafe_code"],
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    return sample_lines(res["samples"][task])


# ---------------------------------------------------------------- generation: slices written as they complete


def _part(folder: Path, index: int) -> Path:
    return folder / PARTS / f"slice{index:05d}.jsonl"


def _part_complete(path: Path, doc_ids: list[int], k: int) -> bool:
    """A part file holding one line per (doc, filter) of exactly these docs, each with K responses."""
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        seen = {r["doc_id"] for r in records}
        return seen == set(doc_ids) and all(len(r["resps"][0]) == k for r in records)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False


def kept_slices(folder: Path, spec: dict) -> set[int]:
    """The slices a previous attempt of this very shard finished; parts of other inputs or incomplete ones go."""
    parts = folder / PARTS
    stamp = parts / "inputs.json"
    try:
        same = json.loads(stamp.read_text(encoding="utf-8")).get("inputs_hash") == _hash(spec)
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        shutil.rmtree(parts, ignore_errors=True)
        write_atomic(stamp, json.dumps({"inputs_hash": _hash(spec)}))
        return set()
    kept = set()
    for i, doc_ids in enumerate(slices(spec)):
        if _part_complete(_part(folder, i), doc_ids, spec["repeats"]):
            kept.add(i)
        else:
            _part(folder, i).unlink(missing_ok=True)
    return kept


def _generate(spec: dict, root: Path, folder: Path) -> tuple[list[Path], dict]:
    parts = slices(spec)
    kept = kept_slices(folder, spec)
    todo = [i for i in range(len(parts)) if i not in kept]
    if todo:
        lm, task_obj = load_model(spec), load_task(spec)
        for i in todo:
            write_atomic(_part(folder, i), generate_slice(lm, task_obj, spec, parts[i], slice_seed(spec["seed"], i)))
    text = "".join(_part(folder, i).read_text(encoding="utf-8") for i in range(len(parts)))
    out = folder / samples_name(spec["task"], spec)
    write_atomic(out, text)
    shutil.rmtree(folder / PARTS, ignore_errors=True)
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    n_out = sum(len(r["resps"][0]) for r in records if r.get("filter") == records[0].get("filter"))
    extra = {"n_docs": len({r["doc_id"] for r in records}), "n_outputs": n_out, "slices": len(parts),
             "slices_resumed": len(kept)}  # fmt: skip
    return [out], extra


def run_generation_shard(spec: dict, root: str, run_id: str = "") -> dict:
    """Generate one shard's samples slice by slice (resuming after finished slices); returns the manifest."""
    return run_shard(_generate, spec, root, shard_dir(Path(root), spec["id"]), run_id)


# ---------------------------------------------------------------- scoring: merge into one samples file, score it


def merge_records(root: Path, spec: dict) -> list[dict]:
    """The generation shards' sample lines merged per doc (and filter): the repeat shards' responses concatenated in
    shard order, everything else from the first shard; in doc order. Refuses a file changed since its manifest."""
    merged: dict[tuple[int, str], dict] = {}
    for shard in sorted(spec["shards"], key=lambda s: s["id"]):  # ids end in p<prompt>-r<repeat>, zero-padded
        if not shard["files"]:
            raise RuntimeError(f"{shard['id']}: generation shard has no manifest; rerun the sweep")
        for name, digest in shard["files"].items():
            path = root / name
            if file_sha256(path) != digest:
                raise RuntimeError(f"{path}: checksum differs from the manifest (changed after generation)")
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    _merge_line(merged, json.loads(line), f"{path}:{lineno}")
    return [merged[key] for key in sorted(merged, key=lambda k: k[0])]


def _merge_line(merged: dict, record: dict, where: str) -> None:
    key = (record["doc_id"], str(record.get("filter")))
    prev = merged.get(key)
    if prev is None:
        merged[key] = record
        return
    if prev.get("doc") != record.get("doc") or prev.get("arguments") != record.get("arguments"):
        raise RuntimeError(f"{where}: doc_id {record['doc_id']} holds another doc or prompt than an earlier shard")
    for field in ("resps", "filtered_resps"):
        prev[field] = [prev[field][0] + record[field][0]]


def lm_eval_timestamp() -> str:
    """A file-name date as lm-eval writes it (``2026-01-31T12-00-00.000000``)."""
    return datetime.now().isoformat().replace(":", "-")


def write_merged_samples(root: Path, label: str, task: str, records: list[dict]) -> Path:
    """``samples/<label>/samples_<task>_<datetime>.jsonl``, replacing the previous merge of this task."""
    folder = root / SAMPLES_DIR / label
    old = re.compile(rf"samples_{re.escape(task)}_\d{{4}}-\d\d-\d\dT[\d.-]+\.jsonl")
    previous = [p for p in folder.glob(f"samples_{task}_*.jsonl") if old.fullmatch(p.name)]
    path = folder / f"samples_{task}_{lm_eval_timestamp()}.jsonl"
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    for p in previous:
        if p != path:
            p.unlink(missing_ok=True)
    return path


def _score(spec: dict, root: Path, folder: Path) -> tuple[list[Path], dict]:
    from lm_eval_diversity.preflight import models_for  # metric models loaded once per worker process
    from lm_eval_diversity.samples import read_samples_file
    from lm_eval_diversity.scoring import score_task, task_scores_to_json

    merged = write_merged_samples(root, spec["label"], spec["task"], merge_records(root, spec))
    samples = read_samples_file(merged)  # as `score` reads it
    settings = DiversitySettings.from_dict(spec["settings"])
    scores = score_task(
        spec["task"], samples.groups, settings, models_for(settings), allow_code_execution=spec["allow_code_execution"]
    )
    entry = task_scores_to_json(scores)
    entry["source"] = str(merged)
    task_json = folder / "task.json"
    write_atomic(task_json, json.dumps(entry, indent=1, allow_nan=False))
    return [task_json, merged], {"n_prompts": scores.n_prompts}


def run_scoring_shard(spec: dict, root: str, run_id: str = "") -> dict:
    """Merge a checkpoint x task's generation shards into one samples file, score it, write the task entry."""
    return run_shard(_score, spec, root, score_dir(Path(root), spec["label"], spec["task"]), run_id)
