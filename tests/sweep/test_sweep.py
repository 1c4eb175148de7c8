"""The sweep without Ray: plan validation, shard seeds, manifests/resume checks and the exact merge of shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_samples_file

from lm_eval_diversity import sweep
from lm_eval_diversity.sweep import PlanError, load_plan, shards

BASE_PLAN = """\
output_root: out
checkpoints:
  base: pretrained=/models/base
  sft: {model_args: {pretrained: /models/sft}}
baseline: base
tasks: [diversity_gsm8k, diversity_alpaca]
repeats: 4
"""


def write_plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_plan_reads_checkpoints_in_order_with_common_args(tmp_path):
    plan = load_plan(write_plan(tmp_path, BASE_PLAN + "model_args: {dtype: float32}\nprompt_shards: 3\n"))
    assert [c.label for c in plan.checkpoints] == ["base", "sft"]
    assert plan.checkpoints[0].model_args == "dtype=float32,pretrained=/models/base"
    assert plan.checkpoints[1].model_args == "dtype=float32,pretrained=/models/sft"
    assert plan.output_root == (tmp_path / "out").resolve()
    assert plan.lineages == (("sweep", ("base", "sft")),)
    assert plan.prompt_shards == 3 and plan.repeat_shards == 1 and plan.settings.dtype == "float32"


@pytest.mark.parametrize(
    "extra, message",
    [
        ("outptu_root: x\n", "unknown key(s) ['outptu_root']"),
        ("checkpoints:\n  base: {model_args: 'pretrained=/m', revison: main}\n", "checkpoints.base: unknown key(s)"),
        ("checkpoints:\n  base: {model_args: 'pretrained=/m', repeats: 8}\n", "repeats=8 conflicts with the plan's"),
        ("repeat_shards: 3\n", "repeat_shards=3 does not divide repeats=4"),
        ("baseline: dpo\n", "baseline 'dpo' is not a checkpoint label"),
        ("lineages: {Think: [base, think_sft]}\n", "lineages.Think: unknown checkpoint(s) ['think_sft']"),
        ("gen_kwargs: {n: 4}\n", "gen_kwargs.n is not allowed"),
        ("model_args: 'data_parallel_size=2'\n", "data_parallel_size=2"),
        ("model_args: 'seed=3'\n", "model arg 'seed' is set by the sweep"),
        ("model_args: 'tensor_parallel_size=2'\n", "model arg 'tensor_parallel_size' is set by the sweep"),
        ("metric_settings: {dtype: float8}\n", "dtype must be one of"),
        ("metric_settings: {sbert: x}\n", "metric_settings: unknown key(s) ['sbert']"),
        ("repeats: 1\n", "repeats must be >= 2"),
    ],
)
def test_plan_errors_name_the_file_and_setting(tmp_path, extra, message):
    # later YAML keys replace earlier ones, so ``extra`` overrides the base plan's value
    path = write_plan(tmp_path, BASE_PLAN + extra)
    with pytest.raises(PlanError) as err:
        load_plan(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_baseline_is_an_error(tmp_path):
    path = write_plan(tmp_path, BASE_PLAN.replace("baseline: base\n", ""))
    with pytest.raises(PlanError, match="'baseline' is required"):
        load_plan(path)


def test_split_prompts_is_contiguous_sorted_and_complete():
    parts = sweep.split_prompts(5, 2)
    assert sum(parts, []) == [0, 1, 2, 3, 4] and sorted(len(p) for p in parts) == [2, 3]
    assert sweep.split_prompts(4, 2) == [[0, 1], [2, 3]]
    assert sweep.split_prompts(2, 5) == [[0], [1]]  # never an empty shard


def test_every_shard_gets_a_distinct_recorded_seed(tmp_path):
    plan = load_plan(write_plan(tmp_path, BASE_PLAN + "prompt_shards: 2\nrepeat_shards: 2\nmodel: vllm\n"))
    specs = sweep.generation_shards(plan, {"diversity_gsm8k": 10, "diversity_alpaca": 7})
    assert len(specs) == 2 * 2 * 2 * 2
    seeds = [s["seed"] for s in specs]
    assert len(set(seeds)) == len(seeds)
    assert all(s["repeats"] == 2 for s in specs)  # K = 4 over 2 repeat shards
    # vLLM's engine seed is a model arg: each shard passes its own
    assert all(f"seed={s['seed']}" in s["model_args"] for s in specs)
    # the seed depends on the plan seed, and is stable for the same plan
    again = sweep.generation_shards(plan, {"diversity_gsm8k": 10, "diversity_alpaca": 7})
    assert [s["seed"] for s in again] == seeds
    other = load_plan(write_plan(tmp_path, BASE_PLAN + "seed: 99\n"))
    assert sweep.shard_seed(other.seed, "base", "diversity_gsm8k", 0, 0) != sweep.shard_seed(
        plan.seed, "base", "diversity_gsm8k", 0, 0
    )


def _fake_shard(root: Path, spec: dict, groups) -> Path:
    folder = sweep.shard_dir(root, spec["id"])
    stamp = f"p{spec['prompt_shard']:03d}r{spec['repeat_shard']:02d}"
    path = write_samples_file(folder, spec["task"], groups, timestamp=stamp)
    manifest = {"inputs_hash": shards._hash(spec), "files": {path.name: sweep.file_sha256(path)}}
    (folder / sweep.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_shard_done_requires_matching_inputs_and_checksums(tmp_path):
    spec = {"id": "a/t/p000-r00", "task": "t", "prompt_shard": 0, "repeat_shard": 0, "seed": 1}
    path = _fake_shard(tmp_path, spec, [(0, ["x y", "z w"])])
    folder = sweep.shard_dir(tmp_path, spec["id"])
    assert sweep.shard_done(folder, spec)
    assert not sweep.shard_done(folder, {**spec, "seed": 2})  # other inputs: redo
    path.write_text(path.read_text(encoding="utf-8").replace("x y", "x q"), encoding="utf-8")
    assert not sweep.shard_done(folder, spec)  # corrupt file: redo
    path.unlink()
    assert not sweep.shard_done(folder, spec)  # missing file: redo


def test_merge_concatenates_repeat_shards_per_doc_in_shard_order(tmp_path):
    task = "diversity_t"
    specs = [
        {"id": f"a/{task}/p{p:03d}-r{r:02d}", "task": task, "prompt_shard": p, "repeat_shard": r}
        for p in range(2)
        for r in range(2)
    ]
    outputs = {  # (prompt shard, repeat shard) -> groups
        (0, 0): [(0, ["a0", "a1"]), (1, ["b0", "b1"])],
        (0, 1): [(0, ["a2", "a3"]), (1, ["b2", "b3"])],
        (1, 0): [(2, ["c0", "c1"])],
        (1, 1): [(2, ["c2", "c3"])],
    }
    shards = []
    for spec in specs:
        path = _fake_shard(tmp_path, spec, outputs[(spec["prompt_shard"], spec["repeat_shard"])])
        shards.append({"id": spec["id"], "files": {path.name: sweep.file_sha256(path)}})
    # passed in reverse: the merge orders repeat shards itself
    groups = sweep.merge_shards(tmp_path, {"task": "diversity_t", "shards": shards[::-1]})
    assert [g.doc_id for g in groups] == [0, 1, 2]
    assert [g.outputs for g in groups] == [["a0", "a1", "a2", "a3"], ["b0", "b1", "b2", "b3"], ["c0", "c1", "c2", "c3"]]


def test_merge_refuses_a_shard_changed_after_its_manifest(tmp_path):
    spec = {"id": "a/diversity_t/p000-r00", "task": "diversity_t", "prompt_shard": 0, "repeat_shard": 0}
    path = _fake_shard(tmp_path, spec, [(0, ["x", "y"])])
    digest = sweep.file_sha256(path)
    path.write_text(path.read_text(encoding="utf-8").replace('"x"', '"z"'), encoding="utf-8")
    with pytest.raises(RuntimeError, match="checksum differs"):
        shard = {"id": spec["id"], "files": {path.name: digest}}
        sweep.merge_shards(tmp_path, {"task": "diversity_t", "shards": [shard]})


def test_status_table_counts_states(tmp_path):
    plan = load_plan(write_plan(tmp_path, BASE_PLAN + "prompt_shards: 2\n"))
    specs = sweep.generation_shards(plan, {"diversity_gsm8k": 4, "diversity_alpaca": 4})
    states = {s["id"]: sweep.ShardState(s, "generate") for s in specs}
    states[specs[0]["id"]].state = "done"
    states[specs[0]["id"]].finished = 100.0
    states[specs[1]["id"]].state = "failed"
    text = sweep.status_table(plan, states, started=40.0, now=100.0)
    row = next(line for line in text.splitlines() if line.startswith("base") and "gsm8k" in line)
    assert "1/2 done" in row and "1 FAILED" in row
    # 1 shard in 60 s -> 1/min; 6 pending shards left -> 6 min
    assert "(1.0/min)" in text and "6 left" in text and "ETA 6.0 min" in text
