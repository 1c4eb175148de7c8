"""The sweep's side of Ray: the lock on the output root, starting or joining Ray, what each shard asks Ray for, and
the checks that run on the workers before any shard.

Resources: a plan states GPUs per generation shard and per scoring shard, or ``auto``. ``auto`` is resolved
against what the cluster can provide: the GPUs it has now, or the GPU node types its autoscaler announces (the
cluster config an autoscaler publishes to Ray, or the cluster launcher's config on the head node), so a cluster
scaled down to CPU nodes still gets GPU requests, which make the autoscaler add GPU nodes. An autoscaler that
announces nothing (KubeRay with Ray 2.60) needs the numbers in the plan. Scoring on the CPU (``metric_device:
cpu``, or metrics that need no model) asks for no GPU. Every generation shard and every GPU scoring shard runs in a
fresh worker process (``max_calls=1``), so no model (and no GPU memory) outlives its shard; CPU scoring shards share
workers, and with them the loaded metric models.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lm_eval_diversity.settings import DiversitySettings, public_name, settings_fields
from lm_eval_diversity.sweep.plan import LOCK, SweepError, SweepPlan
from lm_eval_diversity.sweep.shards import (
    TransientShardError,
    error_text,
    run_generation_shard,
    run_scoring_shard,
)

# ---------------------------------------------------------------- one driver per output root


@contextlib.contextmanager
def output_root_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``root`` (a POSIX lock, which NFS shares between hosts and the kernel drops when the
    holder dies); a second driver gets a :class:`SweepError` naming the holder's host and pid."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 4096).decode("utf-8", "replace")
        os.close(fd)
        try:
            h = json.loads(holder)
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["started"]))
            who = f"host {h['host']}, pid {h['pid']}, since {since}"
        except (ValueError, KeyError, TypeError):
            who = "holder unknown"
        raise SweepError(
            f"{root}: another sweep driver is running on this output root ({who}); wait for it to finish or stop it"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}).encode())
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


# ---------------------------------------------------------------- Ray


def start_ray(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start a local instance (all local CPUs/GPUs unless limited)."""
    import ray

    kwargs: dict = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
    if address:
        kwargs["address"] = address
    else:  # a new local instance, even when a cluster started on this machine is around
        kwargs["address"] = "local"
        kwargs.update({k: v for k, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus)) if v is not None})
    try:
        ray.init(**kwargs)
    except Exception as exc:  # noqa: BLE001 - connection/auth failures of any kind: say where, no traceback
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise SweepError(
            f"cannot start or reach {where}: {error_text(exc)} (a cluster with token authentication needs "
            "RAY_AUTH_MODE=token and its token, see docs/scale.md)"
        ) from None


@dataclass(frozen=True)
class ClusterGPUs:
    """GPUs of the cluster: now (all nodes, the largest node), and what an autoscaler announces it can add (0: none
    announced)."""

    now: float = 0.0
    largest_node: float = 0.0
    can_add: float = 0.0
    largest_node_type: float = 0.0

    @property
    def available(self) -> bool:
        return self.now > 0 or self.can_add > 0


def node_type_gpus(node_types: list[tuple[float, int]]) -> tuple[float, float]:
    """(GPUs the node types can add at most, GPUs of the largest type) from (GPUs per node, max nodes; -1 for no
    limit) pairs."""
    groups = [(gpus, count) for gpus, count in node_types if gpus > 0 and count != 0]
    total = sum(gpus * (1e6 if count < 0 else count) for gpus, count in groups)
    return float(total), max((gpus for gpus, _ in groups), default=0.0)


def published_node_types() -> list[tuple[float, int]]:
    """Node types an autoscaler published to the cluster (Ray's cluster config in the GCS; not every autoscaler
    publishes it)."""
    try:
        from ray._private.state import state  # a private API: without it nothing is announced

        config = state.get_cluster_config()
        return [(float(g.resources.get("GPU", 0)), int(g.max_count)) for g in (config.node_group_configs if config
                else [])]  # fmt: skip
    except Exception:  # noqa: BLE001
        return []


def launcher_node_types(path: Path) -> list[tuple[float, int]]:
    """Node types of the Ray cluster launcher's config on the head node (``~/ray_bootstrap_config.yaml``)."""
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        types = config.get("available_node_types") or {}
        return [(float((t.get("resources") or {}).get("GPU", 0)), int(t.get("max_workers", 0))) for t in types.values()]
    except (OSError, ValueError, AttributeError, TypeError, yaml.YAMLError):
        return []


def cluster_gpus() -> ClusterGPUs:
    """The cluster's GPUs from Ray, and what its autoscaler can add: the node types it published to the cluster,
    else the cluster launcher's config on this (head) node."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    now = float(ray.cluster_resources().get("GPU", 0))
    largest = max((float(r.get("GPU", 0)) for r in nodes), default=0.0)
    types = published_node_types() or launcher_node_types(Path.home() / "ray_bootstrap_config.yaml")
    return ClusterGPUs(now, largest, *node_type_gpus(types))


@dataclass(frozen=True)
class ShardResources:
    generation_gpus: float
    scoring_gpus: float
    notes: tuple[str, ...] = ()


def _scoring_on_cpu(settings: DiversitySettings) -> bool:
    from lm_eval_diversity.catalogue.metrics import models_needed

    return not models_needed(settings.metrics) or str(settings.device or "").startswith("cpu")


def resolve_resources(plan: SweepPlan, gpus: ClusterGPUs) -> ShardResources:
    """GPUs per generation and per scoring shard from the plan and what the cluster can provide."""
    notes = []
    if plan.gpus_per_generation_shard == "auto":
        generation = float(plan.tensor_parallel_size) if gpus.available else 0.0
    else:
        generation = float(plan.gpus_per_generation_shard)
    if plan.scoring_gpus == "auto":
        scoring = 1.0 if gpus.available and not _scoring_on_cpu(plan.settings) else 0.0
    else:
        scoring = float(plan.scoring_gpus)
    biggest = max(gpus.largest_node, gpus.largest_node_type)
    for key, want in (("gpus_per_generation_shard", generation), ("scoring_gpus", scoring)):
        if want > 0 and not gpus.available:
            notes.append(
                f"{key}={want:g} but the cluster has no GPU and announces none it can add: these shards wait until "
                "a GPU node joins (an autoscaler v1 does not announce its node types)"
            )
        elif want > 0 and biggest and want > biggest:
            raise SweepError(f"{plan.path}: {key}={want:g}, but the largest node has {biggest:g} GPUs")
    if not gpus.available and "auto" in (plan.gpus_per_generation_shard, plan.scoring_gpus):
        notes.append(
            "no GPU in the cluster and no GPU node type announced: 'auto' shards run on the CPU; on an autoscaling "
            "cluster whose autoscaler does not announce its node types, give gpus_per_generation_shard and "
            "scoring_gpus as numbers (docs/scale.md)"
        )
    return ShardResources(generation, scoring, tuple(notes))


def remote_shards(plan: SweepPlan, res: ShardResources) -> tuple:
    """The Ray remote functions of the two shard kinds. Fresh worker process per generation shard and per GPU
    scoring shard; only transient errors are retried (a lost worker or node always is, by Ray)."""
    import ray

    # max_calls is an option of ray.remote itself (.options() refuses it)
    common = {"num_cpus": 1, "max_retries": plan.max_retries, "retry_exceptions": [TransientShardError]}
    generate = ray.remote(num_gpus=res.generation_gpus, max_calls=1, **common)(run_generation_shard)
    score = ray.remote(num_gpus=res.scoring_gpus, max_calls=1 if res.scoring_gpus else 0, **common)(run_scoring_shard)
    return generate, score


# ---------------------------------------------------------------- checks on the workers, before any shard


def plan_sources(plan: SweepPlan) -> dict[str, str]:
    """How each setting is named in the plan, for the checks' messages."""
    return {f: f"{plan.path}: {public_name(f)}" for f in settings_fields()}


def check_scoring_worker(tasks: list[str], settings: dict, sources: dict[str, str]) -> list[str]:
    """On a worker shaped like a scoring shard: what every task's scoring needs (metric models, device, graders,
    the sandbox for code tasks); returns the problems found."""
    from lm_eval_diversity.preflight import check_before_generation

    problems = []
    for task in tasks:
        try:
            check_before_generation(task, DiversitySettings.from_dict(settings), sources)
        except Exception as exc:  # noqa: BLE001 - every problem is reported, none is a traceback
            problems.append(f"{task}: {error_text(exc)}")
    return sorted(set(problems))


def check_generation_worker(models: list[str]) -> list[str]:
    """On a worker shaped like a generation shard: every lm-eval model type resolves (its backend imports)."""
    import lm_eval.api.registry

    problems = []
    for model in models:
        try:
            lm_eval.api.registry.get_model(model)
        except Exception as exc:  # noqa: BLE001 - an unknown model type or a backend that does not import
            problems.append(f"model {model!r}: {error_text(exc)}")
    return problems


def check_workers(plan: SweepPlan, res: ShardResources, echo: Callable[[str], None]) -> None:
    """Run the checks on a worker of each shape before any shard (a fresh process each, so nothing stays loaded);
    raises :class:`SweepError` listing every problem."""
    import ray

    fresh = {"num_cpus": 1, "max_calls": 1, "max_retries": 0}
    scoring = ray.remote(num_gpus=res.scoring_gpus, **fresh)(check_scoring_worker)
    generation = ray.remote(num_gpus=res.generation_gpus, **fresh)(check_generation_worker)
    refs = [
        scoring.remote(list(plan.tasks), plan.settings.to_dict(), plan_sources(plan)),
        generation.remote(sorted({c.model for c in plan.checkpoints})),
    ]
    waited = 0.0
    while True:
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=30)
        if len(ready) == len(refs):
            break
        waited += 30
        echo(f"[sweep] checks waiting {waited:.0f} s for workers (GPU nodes starting?)")
    try:
        problems = [p for ref in refs for p in ray.get(ref)]
    except Exception as exc:  # noqa: BLE001 - the check itself could not run there
        raise SweepError(f"the checks before the shards could not run on a worker: {error_text(exc)}") from None
    if problems:
        raise SweepError("checks before any shard failed:\n  " + "\n  ".join(problems))
