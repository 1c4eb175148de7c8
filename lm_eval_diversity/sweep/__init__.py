"""``lm-eval-diversity sweep PLAN.yaml``: a checkpoint x task sweep on Ray, sharded, resumable, with distinct seeds.

A plan names checkpoints (label -> lm-eval model args), tasks, K, sampling, metric settings, an output root and the
baseline (format in ``docs/scale.md``). Every task's prompts are split into prompt shards (lm-eval's ``samples``
doc-index selection) and, optionally, its K repeats into repeat shards; each generation shard has its own engine seed
derived from (plan seed, checkpoint, task, shard). When all generation shards of a checkpoint x task are finished, a
scoring shard merges them into one samples set and scores it with the same code as ``lm-eval-diversity score``, so
the corpus-level values are those of an unsharded run. At the end ``compare`` writes the lineage report.

Every shard writes its outputs atomically, then a manifest (inputs, seed, checksums); a rerun skips shards whose
manifest matches their inputs and files and redoes the rest; a generation shard also keeps the slices it finished.
Ray places the shards (GPUs per shard from the plan and what the cluster can provide, a fresh worker process per
generation shard), retries transient failures ``max_retries`` times, and a shard that fails is reported while the
others finish. Ray is imported only by the driver and the shard bodies' callers.

The steps live in their own modules: :mod:`.plan` (reading the plan), :mod:`.shards` (the units of work, their
manifests and bodies), :mod:`.cluster` (lock, Ray, resources, checks on the workers), :mod:`.driver` (scheduling,
status, results, report, command line).
"""

from lm_eval_diversity.sweep.cluster import ClusterGPUs, ShardResources, output_root_lock, resolve_resources
from lm_eval_diversity.sweep.driver import (
    ShardState,
    SweepSummary,
    build_parser,
    run_sweep,
    run_sweep_cli,
    status_table,
)
from lm_eval_diversity.sweep.plan import (
    MANIFEST,
    RESULTS_DIR,
    RUNNING,
    SAMPLES_DIR,
    SCORES_DIR,
    SHARDS_DIR,
    Checkpoint,
    PlanError,
    SweepError,
    SweepPlan,
    load_plan,
)
from lm_eval_diversity.sweep.shards import (
    ShardError,
    TransientShardError,
    file_sha256,
    generation_shards,
    merge_records,
    read_manifest,
    run_generation_shard,
    run_scoring_shard,
    score_dir,
    shard_dir,
    shard_done,
    shard_seed,
    slice_seed,
    split_prompts,
)

__all__ = [
    "MANIFEST",
    "RESULTS_DIR",
    "RUNNING",
    "SAMPLES_DIR",
    "SCORES_DIR",
    "SHARDS_DIR",
    "Checkpoint",
    "ClusterGPUs",
    "PlanError",
    "ShardError",
    "ShardResources",
    "ShardState",
    "SweepError",
    "SweepPlan",
    "SweepSummary",
    "TransientShardError",
    "build_parser",
    "file_sha256",
    "generation_shards",
    "load_plan",
    "merge_records",
    "output_root_lock",
    "read_manifest",
    "resolve_resources",
    "run_generation_shard",
    "run_scoring_shard",
    "run_sweep",
    "run_sweep_cli",
    "score_dir",
    "shard_dir",
    "shard_done",
    "shard_seed",
    "slice_seed",
    "split_prompts",
    "status_table",
]
