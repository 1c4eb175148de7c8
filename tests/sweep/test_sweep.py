"""The sweep without Ray: plan validation (and the plan's bad inputs), seeds, manifests, resume of slices, error
classes, GPU requests, the lock, the exact merge of shards and the status table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import samples_record

from lm_eval_diversity import cli, sweep
from lm_eval_diversity.sweep import PlanError, load_plan, shards
from lm_eval_diversity.sweep.cluster import ClusterGPUs, resolve_resources

BASE_PLAN = """\
output_root: out
checkpoints:
  base: pretrained=/models/base
  sft: {model_args: {pretrained: /models/sft}}
baseline: base
tasks: [diversity_gsm8k, diversity_alpaca]
repeats: 4
"""


def plan_with(extra: str) -> str:
    """BASE_PLAN with the top-level keys of ``extra`` replaced by ``extra``'s (a plan may not repeat a key)."""
    keys = {line.split(":", 1)[0] for line in extra.splitlines() if line and not line[0].isspace()}
    kept, dropping = [], False
    for line in BASE_PLAN.splitlines(keepends=True):
        if not line[0].isspace():
            dropping = line.split(":", 1)[0] in keys
        if not dropping:
            kept.append(line)
    return "".join(kept) + extra


def write_plan(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_plan_reads_checkpoints_in_order_with_common_args(tmp_path):
    plan = load_plan(write_plan(tmp_path, BASE_PLAN + "model_args: {dtype: float32}\nprompt_shards: 3\n"))
    assert [c.label for c in plan.checkpoints] == ["base", "sft"]
    assert plan.checkpoints[0].model_args == "dtype=float32,pretrained=/models/base"
    assert plan.checkpoints[1].model_args == "dtype=float32,pretrained=/models/sft"
    assert plan.output_root == (tmp_path / "out").resolve()
    assert plan.lineages == (("sweep", ("base", "sft")),)
    assert plan.prompt_shards == 3 and plan.repeat_shards == 1 and plan.prompts_per_write == 32
    assert plan.gpus_per_generation_shard == "auto" and plan.scoring_gpus == "auto"
    assert plan.deprecations == ()


def test_settings_are_plan_keys_under_their_flag_names(tmp_path):
    plan = load_plan(
        write_plan(
            tmp_path,
            BASE_PLAN + "diversity_metrics: [ead, sbert]\nmetric_device: cpu\nmetric_dtype: bfloat16\n"
            "metric_batch_size: 16\ndiversity_seed: 7\nsbert_model: /m/sbert\ncode_timeout_s: 2.5\n",
        )
    )
    s = plan.settings
    assert (s.metrics, s.device, s.dtype, s.batch_size, s.seed) == (("ead", "sbert"), "cpu", "bfloat16", 16, 7)
    assert (s.sbert_model, s.code_timeout_s) == ("/m/sbert", 2.5)
    assert plan.deprecations == ()
    # the settings not given are the commands' defaults (`score` scores the merged samples with the same ones)
    assert s.corpus_metrics == cli.COMMAND_DEFAULTS.corpus_metrics
    # every settings field but the baseline is a plan key, derived from the settings object
    keys = sweep.plan.settings_keys()
    assert keys["diversity_metrics"] == "metrics" and keys["metric_device"] == "device"
    assert set(keys.values()) == set(cli.settings_fields()) - {"baseline"}


def test_old_metric_settings_spellings_are_read_with_a_deprecation_note(tmp_path):
    plan = load_plan(write_plan(tmp_path, plan_with("metric_settings: {metrics: [ead], device: cpu, seed: 3}\n")))
    assert (plan.settings.metrics, plan.settings.device, plan.settings.seed) == (("ead",), "cpu", 3)
    assert len(plan.deprecations) == 3
    assert any("metric_settings.metrics is deprecated; use the plan key diversity_metrics" in n
               for n in plan.deprecations)  # fmt: skip
    with pytest.raises(PlanError, match="metric_device and metric_settings.device set the same setting"):
        load_plan(write_plan(tmp_path, plan_with("metric_settings: {device: cpu}\nmetric_device: cuda\n")))


def test_the_documented_plan_loads(tmp_path):
    text = (Path(__file__).resolve().parents[2] / "docs" / "scale.md").read_text(encoding="utf-8")
    block = text.split("## The plan", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    plan = load_plan(write_plan(tmp_path, block))
    assert [c.label for c in plan.checkpoints] == ["Base", "Instruct-SFT", "Instruct-DPO", "Instruct"]
    assert plan.tasks == ("diversity_gsm8k", "diversity_alpaca", "diversity_humaneval")
    assert (plan.settings.dtype, plan.settings.batch_size, plan.settings.metrics) == (
        "bfloat16", 256, ("ead", "sbert", "vendi", "nli")
    )
    assert plan.deprecations == ()


# ------------------------------------------------------------------------------------------------ bad plans
# Each plan below must end with exit 2, a one-line error naming the plan file and the key, no traceback, and
# nothing written (the output root is not even created). ``extra`` replaces BASE_PLAN's keys (or repeats one, where
# the case is about a repeated key).

BAD_PLANS = {
    "bool_as_string": ("confirm_run_unsafe_code: 'false'\n", "confirm_run_unsafe_code must be true or false"),
    "bool_as_word": ("apply_chat_template: 'no'\n", "apply_chat_template must be true or false"),
    "scoring_gpus_nan": ("scoring_gpus: .nan\n", "scoring_gpus must be 'auto' or a finite number >= 0"),
    "generation_gpus_negative": ("gpus_per_generation_shard: -1\n", "gpus_per_generation_shard must be 'auto'"),
    "temperature_nan": ("gen_kwargs: {temperature: .nan}\n", "gen_kwargs.temperature must be a finite number"),
    "timeout_inf": ("code_timeout_s: .inf\n", "code_timeout_s must be of type float"),
    "seed_as_string": ("diversity_seed: '5'\n", "diversity_seed must be of type int"),
    "metrics_not_names": ("diversity_metrics: 3\n", "diversity_metrics must be of type tuple"),
    "metric_unknown": ("diversity_metrics: [ead, bogus]\n", "unknown metric(s) ['bogus']"),
    "label_path": ("checkpoints:\n  ../../x: pretrained=/m\nbaseline: ../../x\n", "'../../x' is not a safe name"),
    "label_slash": ("checkpoints:\n  a/b: pretrained=/m\nbaseline: a/b\n", "'a/b' is not a safe name"),
    "label_comma": ("checkpoints:\n  'a,b': pretrained=/m\nbaseline: 'a,b'\n", "'a,b' is not a safe name"),
    "label_dots": ("checkpoints:\n  a..b: pretrained=/m\nbaseline: a..b\n", "'a..b' is not a safe name"),
    "labels_by_case": ("checkpoints:\n  Base: pretrained=/a\n  base: pretrained=/b\n", "differ only in case"),
    "label_twice": ("checkpoints:\n  base: pretrained=/a\n  base: pretrained=/b\n", "key 'base' given twice"),
    "key_twice": ("repeats: 8\n", "key 'repeats' given twice"),
    "unknown_task": ("tasks: [diversity_gsm8k, diversity_nope]\n", "unknown task(s) ['diversity_nope']"),
    "missing_data_dir": ("data_dir: no_such_folder\n", "data_dir 'no_such_folder': no such folder"),
    "code_without_consent": ("tasks: [diversity_mbpp]\n", "diversity_mbpp run model-generated code"),
    "unknown_key": ("outptu_root: x\n", "unknown key(s) ['outptu_root']"),
    "baseline_run_setting": ("diversity_baseline: /runs/base\n", "unknown key(s) ['diversity_baseline']"),
    "checkpoint_key": ("checkpoints:\n  base: {model_args: 'pretrained=/m', revison: main}\n",
                       "checkpoints.base: unknown key(s)"),
    "checkpoint_repeats": ("checkpoints:\n  base: {model_args: 'pretrained=/m', repeats: 8}\n",
                           "repeats=8 conflicts with the plan's"),
    "repeat_shards": ("repeat_shards: 3\n", "repeat_shards=3 does not divide repeats=4"),
    "baseline_unknown": ("baseline: dpo\n", "baseline 'dpo' is not a checkpoint label"),
    "lineage_unknown": ("lineages: {Think: [base, think_sft]}\n", "lineages.Think: unknown checkpoint(s)"),
    "gen_kwargs_n": ("gen_kwargs: {n: 4}\n", "gen_kwargs.n is not allowed"),
    "data_parallel": ("model_args: 'data_parallel_size=2'\n", "data_parallel_size=2"),
    "seed_model_arg": ("model_args: 'seed=3'\n", "model arg 'seed' is set by the sweep"),
    "tp_model_arg": ("model_args: 'tensor_parallel_size=2'\n", "model arg 'tensor_parallel_size' is set"),
    "metric_dtype": ("metric_dtype: float8\n", "dtype must be one of"),
    "metric_settings_key": ("metric_settings: {sbert: x}\n", "metric_settings: unknown key(s) ['sbert']"),
    "repeats_one": ("repeats: 1\n", "repeats must be >= 2"),
    "batch_size_word": ("batch_size: many\n", "batch_size must be an integer >= 1, auto or auto:N"),
    "limit_float": ("limit: 2.5\n", "limit must be an integer"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_PLANS))
def test_bad_plan_fails_cleanly_before_writing_anything(name, tmp_path, capsys):
    extra, message = BAD_PLANS[name]
    # key_twice: the same key twice in one mapping (YAML would silently keep the last)
    path = write_plan(tmp_path, BASE_PLAN + extra if name == "key_twice" else plan_with(extra))
    rc = cli.main(["sweep", str(path)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and str(path) in err, err
    assert "error:" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_an_output_root_that_is_not_a_folder_is_refused_and_left_alone(tmp_path, capsys, kind):
    out = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(out)
    else:
        out.write_text("previous", encoding="utf-8")
    rc = cli.main(["sweep", str(write_plan(tmp_path, BASE_PLAN))])
    err = capsys.readouterr().err
    assert rc == 2 and "output_root 'out' exists and is not a folder" in err and "Traceback" not in err
    assert out.is_fifo() if kind == "fifo" else out.read_text(encoding="utf-8") == "previous"


def test_duplicate_key_in_a_json_plan_is_refused(tmp_path):
    path = write_plan(tmp_path, '{"output_root": "a", "output_root": "b"}', name="plan.json")
    with pytest.raises(PlanError, match="key 'output_root' given twice"):
        load_plan(path)


def test_yaml_duplicate_key_names_its_line(tmp_path):
    with pytest.raises(PlanError, match=r"key 'repeats' given twice \(line 8\)"):
        load_plan(write_plan(tmp_path, BASE_PLAN + "repeats: 8\n"))


def test_a_task_whose_documents_cannot_load_is_named_before_anything_is_written(tmp_path, capsys):
    empty = tmp_path / "data"
    empty.mkdir()  # exists, but holds no gsm8k/test.jsonl
    path = write_plan(tmp_path, plan_with(f"tasks: [diversity_gsm8k]\ndata_dir: {empty}\n"))
    rc = cli.main(["sweep", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and "task diversity_gsm8k: cannot read its documents from data_dir" in err, err
    assert str(empty) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ shards and seeds


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
    other = load_plan(write_plan(tmp_path, plan_with("seed: 99\n")))
    assert sweep.shard_seed(other.seed, "base", "diversity_gsm8k", 0, 0) != sweep.shard_seed(
        plan.seed, "base", "diversity_gsm8k", 0, 0
    )
    # the plan's consent to run code and the generation settings reach every shard
    assert all(s["confirm_run_unsafe_code"] is False for s in specs)
    assert specs[0]["task_metadata"] == {"stop_sequences": "auto", "sampling": None}


def test_slices_and_their_seeds(tmp_path):
    spec = {"doc_ids": [4, 5, 6, 7, 8], "prompts_per_write": 2, "seed": 11}
    assert shards.slices(spec) == [[4, 5], [6, 7], [8]]
    seeds = [sweep.slice_seed(11, i) for i in range(3)]
    assert len(set(seeds)) == 3 and seeds == [sweep.slice_seed(11, i) for i in range(3)]


# ------------------------------------------------------------------------------------------------ manifests


def _fake_shard(root: Path, spec: dict, groups, think: bool = False) -> Path:
    """A generation shard's samples file (lm-eval's lines) and manifest, as the shard body writes them."""
    folder = sweep.shard_dir(root, spec["id"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / shards.samples_name(spec["task"], spec)
    lines = []
    for doc_id, outputs in groups:
        rec = samples_record(doc_id, outputs, filter_name="div")
        if think:
            rec["arguments"]["gen_args_0"]["arg_0"] += "<think>\n"
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    files = {path.relative_to(root).as_posix(): shards.file_record(path)}
    manifest = {"inputs_hash": shards._hash(spec), "files": files}
    (folder / sweep.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_shard_done_checks_size_and_mtime_first_and_hashes_only_what_changed(tmp_path, monkeypatch):
    spec = {"id": "a/t/p000-r00", "task": "t", "prompt_shard": 0, "repeat_shard": 0, "seed": 1}
    path = _fake_shard(tmp_path, spec, [(0, ["x y", "z w"])])
    folder = sweep.shard_dir(tmp_path, spec["id"])
    hashed = []
    real = shards.file_sha256
    monkeypatch.setattr(shards, "file_sha256", lambda p: hashed.append(p) or real(p))
    assert sweep.shard_done(tmp_path, folder, spec) and hashed == []  # unchanged: no read at all
    assert not sweep.shard_done(tmp_path, folder, {**spec, "seed": 2})  # other inputs: redo
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same bytes: hashed, still done
    assert sweep.shard_done(tmp_path, folder, spec) and hashed == [path]
    path.write_text(path.read_text(encoding="utf-8").replace("x y", "x q"), encoding="utf-8")
    assert not sweep.shard_done(tmp_path, folder, spec)  # corrupt file (same size, new mtime): redo
    path.unlink()
    assert not sweep.shard_done(tmp_path, folder, spec)  # missing file: redo


def test_unfinished_slices_of_the_same_inputs_are_kept_others_removed(tmp_path):
    spec = {"id": "a/t/p000-r00", "doc_ids": [0, 1, 2], "prompts_per_write": 2, "repeats": 2}
    folder = tmp_path / "shard"
    assert shards.kept_slices(folder, spec) == set()  # first attempt: stamps the inputs
    good = "".join(json.dumps(samples_record(d, ["a", "b"], "div")) + "\n" for d in (0, 1))
    (folder / "parts" / "slice00000.jsonl").write_text(good, encoding="utf-8")
    (folder / "parts" / "slice00001.jsonl").write_text(good[: len(good) // 3], encoding="utf-8")  # cut short
    assert shards.kept_slices(folder, spec) == {0}
    assert not (folder / "parts" / "slice00001.jsonl").exists()
    assert shards.kept_slices(folder, {**spec, "repeats": 4}) == set()  # other inputs: nothing kept
    assert not (folder / "parts" / "slice00000.jsonl").exists()


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "exc, transient",
    [
        (type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory"), True),
        (MemoryError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (OSError(116, "Stale file handle"), True),
        (OSError("pretrained=/nope is not a local folder"), False),
        (ValueError("Attempted to run task: diversity_mbpp which is marked as unsafe"), False),
        (RuntimeError("Torch not compiled with CUDA enabled"), False),
    ],
)
def test_errors_are_classified(exc, transient):
    assert shards.is_transient(exc) is transient


def test_a_shard_fails_with_its_message_or_asks_for_a_retry(tmp_path):
    spec = {"id": "a/t/p000-r00"}

    def broken(spec, root, folder):
        raise OSError("Incorrect path_or_model_id: '/nope'")

    def oom(spec, root, folder):
        raise type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2 GiB")

    with pytest.raises(sweep.ShardError, match=r"^OSError: Incorrect path_or_model_id: '/nope'$"):
        shards.run_shard(broken, spec, str(tmp_path), tmp_path / "s", "run1")
    with pytest.raises(sweep.TransientShardError, match="CUDA out of memory"):
        shards.run_shard(oom, spec, str(tmp_path), tmp_path / "s", "run1")
    marker = json.loads((tmp_path / "s" / sweep.RUNNING).read_text())
    assert marker["attempt"] == 2 and marker["run_id"] == "run1" and marker["pid"] == os.getpid()


# ------------------------------------------------------------------------------------------------ GPU requests


def _plan(tmp_path, extra: str = ""):
    metrics = "" if "diversity_metrics" in extra else "diversity_metrics: [ead, sbert]\n"
    return load_plan(write_plan(tmp_path, plan_with(metrics + extra)))


@pytest.mark.parametrize(
    "extra, gpus, want",
    [
        ("", ClusterGPUs(), (0, 0)),  # no GPU anywhere: everything on the CPU
        ("", ClusterGPUs(now=8, largest_node=8), (1, 1)),
        ("tensor_parallel_size: 2\n", ClusterGPUs(now=8, largest_node=8), (2, 1)),
        # an autoscaling cluster scaled down to CPU nodes: what its node types can add counts
        ("", ClusterGPUs(can_add=16, largest_node_type=8), (1, 1)),
        ("metric_device: cpu\n", ClusterGPUs(now=8, largest_node=8), (1, 0)),  # CPU scoring asks for no GPU
        ("diversity_metrics: [ead]\n", ClusterGPUs(now=8, largest_node=8), (1, 0)),  # no metric model
        ("gpus_per_generation_shard: 0.5\nscoring_gpus: 0\n", ClusterGPUs(now=8, largest_node=8), (0.5, 0)),
        ("gpus_per_generation_shard: 2\n", ClusterGPUs(), (2, 0)),  # explicit: kept, with a note
    ],
)
def test_gpu_requests_come_from_the_plan_and_what_the_cluster_can_provide(tmp_path, extra, gpus, want):
    res = resolve_resources(_plan(tmp_path, extra), gpus)
    assert (res.generation_gpus, res.scoring_gpus) == want
    if extra.startswith("gpus_per_generation_shard: 2"):
        assert any("wait until a GPU node joins" in n for n in res.notes)


def test_gpu_node_types_of_the_cluster_launcher_config_count_as_what_the_cluster_can_add(tmp_path):
    from lm_eval_diversity.sweep.cluster import launcher_node_types, node_type_gpus

    config = tmp_path / "ray_bootstrap_config.yaml"
    config.write_text(
        "available_node_types:\n"
        "  ray.head.default: {resources: {CPU: 8}, max_workers: 0}\n"
        "  gpu8: {resources: {CPU: 96, GPU: 8}, min_workers: 0, max_workers: 4}\n"
        "  gpu1: {resources: {CPU: 8, GPU: 1}, max_workers: 0}\n",  # may never be launched
        encoding="utf-8",
    )
    types = launcher_node_types(config)
    assert sorted(types) == [(0.0, 0), (1.0, 0), (8.0, 4)]
    assert node_type_gpus(types) == (32.0, 8.0)
    assert launcher_node_types(tmp_path / "missing.yaml") == []


def test_a_request_larger_than_any_node_is_refused(tmp_path):
    with pytest.raises(sweep.SweepError, match="gpus_per_generation_shard=16, but the largest node has 8 GPUs"):
        resolve_resources(_plan(tmp_path, "gpus_per_generation_shard: 16\n"), ClusterGPUs(8, 8, 16, 8))


# ------------------------------------------------------------------------------------------------ the lock


def test_a_second_driver_on_the_same_output_root_is_refused_naming_the_first(tmp_path, capsys):
    plan = write_plan(tmp_path, plan_with(f"tasks: [alpaca]\ndata_dir: {cli_demo_data()}\n"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from lm_eval_diversity.sweep import "
         "output_root_lock\nwith output_root_lock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)",
         str(tmp_path / "out")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        rc = cli.main(["sweep", str(plan)])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert rc == 2 and "another sweep driver is running on this output root" in err, err
    assert f"pid {holder.pid}" in err and "Traceback" not in err
    with sweep.output_root_lock(tmp_path / "out"):  # released when its holder died
        pass


def cli_demo_data() -> Path:
    from lm_eval_diversity.loader import DEMO_DATA_DIR

    return DEMO_DATA_DIR


# ------------------------------------------------------------------------------------------------ merge and score


def _fake_unit(root: Path, task: str, outputs: dict, think: bool = False) -> dict:
    """Generation shards of one checkpoint x task, and the scoring spec over them."""
    ids = []
    for (p, r), groups in outputs.items():
        spec = {"id": f"a/{task}/p{p:03d}-r{r:02d}", "task": task, "prompt_shard": p, "repeat_shard": r}
        path = _fake_shard(root, spec, groups, think=think)
        ids.append({"id": spec["id"], "files": {path.relative_to(root).as_posix(): sweep.file_sha256(path)}})
    return {"id": f"a/{task}/score", "label": "a", "task": task, "shards": ids[::-1], "allow_code_execution": False,
            "settings": cli.COMMAND_DEFAULTS.replace(metrics=("ead",), corpus_metrics=("ead",)).to_dict()}  # fmt: skip


def test_merge_concatenates_repeat_shards_per_doc_in_shard_order(tmp_path):
    outputs = {  # (prompt shard, repeat shard) -> groups
        (0, 0): [(0, ["a0", "a1"]), (1, ["b0", "b1"])],
        (0, 1): [(0, ["a2", "a3"]), (1, ["b2", "b3"])],
        (1, 0): [(2, ["c0", "c1"])],
        (1, 1): [(2, ["c2", "c3"])],
    }
    spec = _fake_unit(tmp_path, "diversity_t", outputs)  # shards listed in reverse: the merge orders them itself
    records = sweep.merge_records(tmp_path, spec)
    assert [r["doc_id"] for r in records] == [0, 1, 2]
    assert [r["resps"] for r in records] == [[["a0", "a1", "a2", "a3"]], [["b0", "b1", "b2", "b3"]],
                                             [["c0", "c1", "c2", "c3"]]]  # fmt: skip
    assert records[0]["filtered_resps"] == records[0]["resps"] and records[0]["filter"] == "div"


def test_merge_refuses_a_shard_changed_after_its_manifest(tmp_path):
    spec = _fake_unit(tmp_path, "diversity_t", {(0, 0): [(0, ["x", "y"])]})
    path = tmp_path / next(iter(spec["shards"][0]["files"]))
    path.write_text(path.read_text(encoding="utf-8").replace('"x"', '"z"'), encoding="utf-8")
    with pytest.raises(RuntimeError, match="checksum differs"):
        sweep.merge_records(tmp_path, spec)


def test_scoring_shard_writes_a_merged_samples_file_that_score_reads_to_the_same_numbers(tmp_path):
    # prompts that end inside an opened thought; outputs that close it (or not): the diagnostics survive the merge
    outputs = {
        (0, 0): [(0, ["plan</think> 4", "no close at all"]), (1, ["x</think> 5", "y</think> 6"])],
        (0, 1): [(0, ["still thinking", "done</think> 4"]), (1, ["z</think> 7", "w"])],
    }
    spec = _fake_unit(tmp_path, "diversity_demo", outputs, think=True)
    manifest = sweep.run_scoring_shard(spec, str(tmp_path), "run1")
    entry = json.loads((sweep.score_dir(tmp_path, "a", "diversity_demo") / "task.json").read_text())
    assert entry["diagnostics"]["n_unclosed_think"] == 3  # "no close at all", "still thinking", "w"
    merged = Path(entry["source"])
    assert merged.parent == tmp_path / sweep.SAMPLES_DIR / "a" and merged.name.startswith("samples_diversity_demo_")
    assert set(manifest["files"]) == {"scores/a/diversity_demo/task.json", merged.relative_to(tmp_path).as_posix()}
    scored = cli.run_score([str(merged), "--diversity_metrics", "ead", "--corpus_metrics", "ead"])
    assert {k: v for k, v in scored["tasks"]["diversity_demo"].items() if k != "source"} == {
        k: v for k, v in entry.items() if k != "source"
    }
    # a generation shard's own file is an lm-eval samples file too
    one = cli.run_score([str(tmp_path / next(iter(spec["shards"][0]["files"]))), "--diversity_metrics", "ead"])
    assert one["tasks"]["diversity_demo"]["k"] == 2
    # scoring again replaces the merged file instead of adding a second one
    sweep.run_scoring_shard(spec, str(tmp_path), "run2")
    assert len(list(merged.parent.glob("samples_diversity_demo_*.jsonl"))) == 1


# ------------------------------------------------------------------------------------------------ status


def test_status_counts_every_shard_with_separate_rates_and_no_stale_running(tmp_path):
    plan = load_plan(write_plan(tmp_path, BASE_PLAN + "prompt_shards: 2\n"))
    specs = sweep.generation_shards(plan, {"diversity_gsm8k": 4, "diversity_alpaca": 4})
    states = {s["id"]: sweep.ShardState(s, "generate") for s in specs}
    for label in ("base", "sft"):
        for task in plan.tasks:
            sid = f"{label}/{task}/score"
            states[sid] = sweep.ShardState({"id": sid, "label": label, "task": task}, "score", "waiting")
    first, second, third = (states[s["id"]] for s in specs[:3])
    first.state, first.submitted, first.finished = "done", 40.0, 100.0
    second.state = "failed"
    third.state, third.submitted = "submitted", 50.0
    marker = sweep.shard_dir(plan.output_root, third.spec["id"]) / sweep.RUNNING
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"run_id": "old-run"}))  # left by a crashed driver: not running now
    text = sweep.status_table(plan, states, started=40.0, now=100.0, run_id="this-run")
    row = next(line for line in text.splitlines() if line.startswith("base") and "gsm8k" in line)
    assert "1/2 done, 1 FAILED" in row and "0/1 done" in row  # the scoring shard counts before it exists
    assert "running" not in text
    # generation: 1 shard in the 60 s since the first submission -> 1/min; 6 shards left (1 queued) -> 6 min
    assert "generation 1 done this run (1.0/min), 6 left, ETA 6.0 min" in text
    assert "scoring 0 done this run (0.0/min), 4 left, ETA n/a" in text
    marker.write_text(json.dumps({"run_id": "this-run"}))
    assert "1 running" in sweep.status_table(plan, states, started=40.0, now=100.0, run_id="this-run")


def test_vllm_requests_get_their_own_seeds_from_the_slice_seed():
    """lm-eval's vLLM model sends one SamplingParams per request through ``_model_generate`` (in batches); each
    request gets a seed from (slice seed, position), so the K copies of a prompt differ and a slice does not depend
    on the engine's state."""

    class Params:
        def __init__(self, seed=None):
            self.seed = seed

        def clone(self):
            return Params(self.seed)

    class FakeVLLM:
        def __init__(self):
            self.seen = []

        def _model_generate(self, requests, generate=False, sampling_params=None):
            self.seen.append([p.seed for p in sampling_params] if generate else None)
            return requests

    lm = FakeVLLM()
    shared = Params()
    shards.seed_vllm_requests(lm, 5)
    lm._model_generate(requests=[1, 2, 3], generate=True, sampling_params=[shared, shared, shared])
    lm._model_generate(requests=[4], generate=True, sampling_params=[shared])  # the next batch continues
    lm._model_generate(requests=[5], generate=False)  # loglikelihood calls are left alone
    first = lm.seen[0] + lm.seen[1]
    assert len(set(first)) == 4 and shared.seed is None and lm.seen[2] is None
    shards.seed_vllm_requests(lm, 5)  # the same slice seed again (a resumed slice): the same seeds
    lm._model_generate(requests=[1, 2, 3, 4], generate=True, sampling_params=[shared] * 4)
    assert lm.seen[3] == first
    shards.seed_vllm_requests(lm, 6)  # another slice: other seeds
    lm._model_generate(requests=[1, 2, 3, 4], generate=True, sampling_params=[shared] * 4)
    assert not set(lm.seen[4]) & set(first)
