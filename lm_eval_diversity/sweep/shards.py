"""The sweep's units of work: generation shards with their seeds, the manifests that make reruns resume, the
lm-eval calls, and the shard bodies that run inside Ray workers (generate; merge and score)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

from lm_eval_diversity.atomic import write_atomic
from lm_eval_diversity.settings import DiversitySettings
from lm_eval_diversity.sweep.plan import MANIFEST, RUNNING, SCORES_DIR, SHARDS_DIR, PlanError, SweepPlan

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
