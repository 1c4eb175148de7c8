"""The sweep on a local Ray instance (2 CPUs) with the tiny local GPT-2, as a user runs it (the command line):
2 checkpoints x {gsm8k, mbpp, humaneval} x 2 prompt shards x 2 repeat shards, code graded in the sandbox; then the
faults: a preempted shard resumed mid-way, a worker killed, the driver killed, a checkpoint that cannot load, a
corrupt shard, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ref_ead

from lm_eval_diversity import sweep
from lm_eval_diversity.cli import run_score
from lm_eval_diversity.loader import DEMO_DATA_DIR

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

TASKS = ("diversity_gsm8k", "diversity_mbpp", "diversity_humaneval")
METRICS = "ead,sbert,vendi"
SBERT = "sentence-transformers/all-MiniLM-L6-v2"
SETTINGS_FLAGS = ["--diversity_metrics", METRICS, "--sbert_model", SBERT, "--metric_device", "cpu"]


def plan_text(root: Path, checkpoints: dict[str, str], tasks=TASKS, extra: str = "") -> str:
    ckpts = "".join(f"  {label}: {args}\n" for label, args in checkpoints.items())
    return (
        f"output_root: {root}\ncheckpoints:\n{ckpts}baseline: {next(iter(checkpoints))}\n"
        f"tasks: [{', '.join(tasks)}]\nrepeats: 4\nseed: 7\nmodel_args: {{dtype: float32}}\n"
        "gen_kwargs: {max_gen_toks: 12, temperature: 1.0, do_sample: true}\n"
        f"batch_size: 8\ndata_dir: {DEMO_DATA_DIR}\nconfirm_run_unsafe_code: true\n"
        f"diversity_metrics: [{METRICS}]\nsbert_model: {SBERT}\nmetric_device: cpu\n{extra}"
    )


def cli(plan: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lm_eval_diversity", "sweep", str(plan), "--num_cpus", "2", "--status_every", "2",
         *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # A test run started in the background (nohup, `cmd &` in a script) ignores SIGINT, and the child would
        # inherit that: Python then installs no KeyboardInterrupt handler and the Ctrl-C test's signal is lost.
        preexec_fn=_default_sigint,
    )  # fmt: skip


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def mtimes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and (p.name == sweep.MANIFEST or p.suffix == ".jsonl" or p.name == "task.json")
    }


def manifests(root: Path, kind: str = sweep.SHARDS_DIR) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((root / kind).rglob(sweep.MANIFEST))]


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 900.0, what: str = ""):
    end = time.time() + timeout
    while time.time() < end:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before {what}: {proc.stdout.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / sweep.RUNNING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_gpt2):
    """The sweep of the issue's "done when", through its faults, on a local Ray instance with 2 (fake) GPUs:
    2 checkpoints (the same weights under two labels) x {gsm8k, mbpp, humaneval} x 2 prompt shards x 2 repeat
    shards, 3 prompts, K 4, one prompt per slice. A worker is killed after the first slice of its shard (a preempted
    node: Ray retries it, the retry resumes at the second slice), then the driver is killed (SIGKILL: no cleanup; the
    lock and a running marker stay behind); the same command then finishes the sweep."""
    work = tmp_path_factory.mktemp("sweep")
    plan_path = work / "plan.yaml"
    ckpts = {"base": f"pretrained={tiny_gpt2}", "sft": f"pretrained={tiny_gpt2}"}
    extra = "limit: 3\nprompt_shards: 2\nrepeat_shards: 2\nprompts_per_write: 1\n"
    plan_path.write_text(plan_text(work / "out", ckpts, extra=extra), encoding="utf-8")
    root = work / "out"
    victim = root / "shards" / "base" / "diversity_gsm8k" / "p000-r01"  # among the first shards; docs 0-1: 2 slices
    proc = cli(plan_path, "--num_gpus", "2")
    first = _wait_for(lambda: (victim / "parts" / "slice00000.jsonl").is_file() and _marker(victim), proc,
                      what="the shard's first slice")  # fmt: skip
    os.kill(first["pid"], signal.SIGKILL)
    retry = _wait_for(
        lambda: (_marker(victim) or {}).get("attempt") == 2 and any(root.rglob(sweep.MANIFEST)) and _marker(victim),
        proc,
        what="the retry, with a shard finished",
    )
    finished = {k: v for k, v in mtimes(root).items() if k.endswith(sweep.MANIFEST)}
    proc.kill()
    proc.wait()
    started = time.time()
    rerun = cli(plan_path, "--num_gpus", "2")
    out, _ = rerun.communicate(timeout=1800)
    assert rerun.returncode == 0, out
    faults = {"victim": victim, "first": first, "retry": retry, "finished": finished}
    return sweep.load_plan(plan_path), out, time.time() - started, faults


def _shard_samples(root: Path, label: str, task: str) -> list[Path]:
    return sorted((root / sweep.SHARDS_DIR / label / task).glob("p*/samples_*.jsonl"))


def test_score_of_the_merged_samples_equals_the_sweep_results_exactly(swept):
    plan = swept[0]
    root = plan.output_root
    for label in ("base", "sft"):
        result = json.loads((root / "results" / f"{label}.json").read_text(encoding="utf-8"))
        merged = sorted((root / sweep.SAMPLES_DIR / label).glob("samples_*.jsonl"))
        assert len(merged) == 3
        scored = run_score([str(root / sweep.SAMPLES_DIR / label), *SETTINGS_FLAGS, "--confirm_run_unsafe_code"])
        assert set(scored["tasks"]) == set(TASKS)
        for task in TASKS:
            got, want = dict(result["tasks"][task]), dict(scored["tasks"][task])
            assert got.pop("source") == want.pop("source")  # the merged file
            assert got == want  # every metric, level and per-prompt value, to the last bit
            assert got["n_prompts"] == 3 and got["k"] == 4
        # code tasks were graded in the sandbox (a 12-token random model writes no passing program)
        for task in ("diversity_mbpp", "diversity_humaneval"):
            assert result["tasks"][task]["metrics"]["pass@1"]["per_input_mean"] == 0.0
        # corpus EAD from the merged task, recomputed independently: across-input over each prompt's first
        # output, overall over all 12 (fewer than 500 outputs: the whole set is used)
        lines = [json.loads(x) for x in merged[0].read_text(encoding="utf-8").splitlines() if x]
        outs = [ln["resps"][0] for ln in lines]
        task = merged[0].name.split("_2")[0].removeprefix("samples_")
        metrics = result["tasks"][task]["metrics"]["ead"]
        assert metrics["overall"] == pytest.approx(ref_ead([o for os_ in outs for o in os_]))
        assert metrics["across_input"] == pytest.approx(ref_ead([o[0] for o in outs]))


def test_merged_samples_are_the_shards_outputs_in_shard_order(swept):
    plan = swept[0]
    root = plan.output_root
    for task in TASKS:
        shard_lines = {}
        for f in _shard_samples(root, "base", task):  # p000-r00, p000-r01, p001-r00, p001-r01
            for x in f.read_text(encoding="utf-8").splitlines():
                rec = json.loads(x)
                shard_lines.setdefault(rec["doc_id"], []).extend(rec["resps"][0])
        merged = next((root / sweep.SAMPLES_DIR / "base").glob(f"samples_{task}_2*.jsonl"))
        got = {json.loads(x)["doc_id"]: json.loads(x)["resps"][0] for x in merged.read_text().splitlines()}
        assert got == shard_lines and all(len(v) == 4 for v in got.values())


def test_every_shard_has_a_distinct_recorded_seed_and_its_own_samples(swept):
    plan = swept[0]
    root = plan.output_root
    gen = manifests(root)
    assert len(gen) == 2 * 3 * 2 * 2
    seeds = [m["inputs"]["seed"] for m in gen]
    assert len(set(seeds)) == len(seeds)
    for m in gen:
        s = m["inputs"]
        assert s["seed"] == sweep.shard_seed(7, s["label"], s["task"], s["prompt_shard"], s["repeat_shard"])
    recorded = json.loads((root / "results" / "base.json").read_text(encoding="utf-8"))["sweep"]["shard_seeds"]
    assert len(recorded) == 12 and len(set(recorded.values())) == 12
    # same weights under both labels: only the seeds differ, and so do the samples
    for task in TASKS:
        resp = {
            label: [json.loads(x)["resps"] for f in _shard_samples(root, label, task) for x in f.read_text().split("\n")
                    if x]
            for label in ("base", "sft")
        }  # fmt: skip
        assert resp["base"] != resp["sft"]


def test_fresh_worker_per_generation_shard_and_gpu_requests(swept):
    """Ray's fake GPUs (``--num_gpus 2`` on a machine without one): every generation shard ran in its own worker
    process holding the 1 GPU the plan's ``auto`` resolved to, and fell back to the CPU (torch sees no CUDA);
    scoring on the CPU (``metric_device: cpu``) asked for no GPU."""
    plan, out = swept[:2]
    root = plan.output_root
    gen = manifests(root)
    assert len({(m["worker"]["host"], m["worker"]["pid"]) for m in gen}) == len(gen) == 24
    assert all(m["worker"]["assigned"] == {"CPU": 1.0, "GPU": 1.0} and len(m["worker"]["gpu_ids"]) == 1 for m in gen)
    scoring = manifests(root, sweep.SCORES_DIR)
    assert len(scoring) == 6 and all(m["worker"]["assigned"] == {"CPU": 1.0} for m in scoring)
    assert all(m["worker"]["gpu_ids"] == [] for m in scoring)
    assert "GPUs per generation shard 1, per scoring shard 0" in out


def test_report_and_status_are_written(swept):
    plan, out = swept[:2]
    root = plan.output_root
    md = (root / "report.md").read_text(encoding="utf-8")
    assert "baseline: base" in md and "| sft |" in md
    assert (root / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (root / "report.png").read_bytes()[:4] == b"\x89PNG"
    status = json.loads((root / "status.json").read_text(encoding="utf-8"))["shards"]
    assert len(status) == 30 and {s["state"] for s in status.values()} <= {"done", "skipped"}
    assert "checkpoint" in out and "generation" in out and "scoring" in out and "ETA" in out


def test_faults_a_preempted_shard_resumes_mid_way_and_the_killed_driver_loses_nothing(swept, tmp_path):
    plan, _, _, faults = swept
    root, victim = plan.output_root, faults["victim"]
    assert faults["retry"]["pid"] != faults["first"]["pid"]  # Ray retried the killed worker's shard elsewhere
    # the preempted shard kept its first slice and wrote what an uninterrupted run writes
    manifest = sweep.read_manifest(victim)
    assert manifest["attempt"] >= 2 and manifest["slices"] == 2 and manifest["slices_resumed"] >= 1
    assert not (victim / "parts").exists()
    sweep.run_generation_shard(manifest["inputs"], str(tmp_path))  # the same shard, uninterrupted, without Ray
    name = "samples_diversity_gsm8k_p000r01.jsonl"
    assert (victim / name).read_bytes() == (sweep.shard_dir(tmp_path, manifest["id"]) / name).read_bytes()
    # what had finished before the driver was killed was not redone by the rerun
    after = mtimes(root)
    assert faults["finished"] and {k: after[k] for k in faults["finished"]} == faults["finished"]
    status = json.loads((root / "status.json").read_text(encoding="utf-8"))["shards"]
    assert sum(s["state"] == "skipped" for s in status.values()) >= len(faults["finished"])
    assert "running" not in {s["state"] for s in status.values()}  # the killed run's marker is not "running"


def test_rerun_recomputes_nothing_then_only_a_corrupt_shard(swept):
    plan = swept[0]
    root = plan.output_root
    before = mtimes(root)
    summary = sweep.run_sweep(plan, num_cpus=2, status_every=60, echo=lambda _: None)
    assert summary.counts() == {"skipped": 30} and not summary.failed
    assert mtimes(root) == before
    victim = _shard_samples(root, "sft", "diversity_mbpp")[1]
    original = victim.read_text(encoding="utf-8")
    victim.write_text(original.replace('"doc_id": ', '"doc_id":  '), encoding="utf-8")
    before = mtimes(root)
    summary = sweep.run_sweep(plan, num_cpus=2, status_every=60, echo=lambda _: None)
    # only the corrupt shard is generated again; with its recorded seed it reproduces the same samples, so the
    # scoring shard's inputs (the shards' checksums) are unchanged and its scores stand
    assert summary.counts() == {"skipped": 29, "done": 1}
    assert summary.shards[f"sft/diversity_mbpp/{victim.parent.name}"].state == "done"
    assert victim.read_text(encoding="utf-8") == original
    redone = {k for k, v in mtimes(root).items() if before.get(k) != v}
    assert redone == {str(victim.relative_to(root)), str((victim.parent / sweep.MANIFEST).relative_to(root))}


def test_ctrl_c_keeps_finished_shards_and_a_checkpoint_that_cannot_load_fails_at_once(tmp_path, tiny_gpt2):
    """Ctrl-C exits 130 keeping finished shards and leaving nothing "running"; the rerun does only the rest, and a
    checkpoint whose model cannot load fails at once with its message (not retried) while the other is reported."""
    plan_path = tmp_path / "plan.yaml"
    ckpts = {"good": f"pretrained={tiny_gpt2}", "broken": f"pretrained={tmp_path / 'no_such_model'}"}
    extra = "limit: 3\nprompt_shards: 3\nmax_retries: 2\n"
    plan_path.write_text(plan_text(tmp_path / "out", ckpts, tasks=("diversity_gsm8k",), extra=extra), "utf-8")
    root = tmp_path / "out"
    proc = cli(plan_path)
    good = root / "shards" / "good"
    _wait_for(lambda: len(list(good.rglob(sweep.MANIFEST))) >= 1, proc, what="a finished shard")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    finished = {k: v for k, v in mtimes(root).items() if k.startswith("shards/good/")}
    n_done = len([k for k in finished if k.endswith(sweep.MANIFEST)])
    assert 1 <= n_done < 3
    status = json.loads((root / "status.json").read_text(encoding="utf-8"))["shards"]
    assert "running" not in {v["state"] for v in status.values()}  # cancelled, not left "running"

    rerun = cli(plan_path)
    out, _ = rerun.communicate(timeout=1200)
    assert rerun.returncode == 1, out  # the broken checkpoint's shards failed; everything else finished
    status = json.loads((root / "status.json").read_text(encoding="utf-8"))["shards"]
    states = {k: v["state"] for k, v in status.items() if k.startswith("good/")}
    assert sorted(states.values()).count("skipped") == n_done and states["good/diversity_gsm8k/score"] == "done"
    assert set(states.values()) == {"done", "skipped"}
    assert {k: v for k, v in mtimes(root).items() if k in finished} == finished  # nothing finished was redone
    broken = {k: v for k, v in status.items() if k.startswith("broken/") and not k.endswith("score")}
    assert len(broken) == 3 and {v["state"] for v in broken.values()} == {"failed"}
    assert status["broken/diversity_gsm8k/score"]["state"] == "waiting"
    assert all("no_such_model" in v["error"] and v["error"].startswith("ShardError:") for v in broken.values())
    # a deterministic error is not retried: one attempt per driver run (max_retries 2 would make 3 in one run)
    assert all(1 <= v["attempt"] <= 2 for v in broken.values())
    assert "FAILED broken/diversity_gsm8k/p000-r00: ShardError:" in out
    assert (root / "results" / "good.json").is_file() and not (root / "results" / "broken.json").exists()
    assert "good" in (root / "report.md").read_text(encoding="utf-8")


def test_gpu_node_types_an_autoscaler_publishes_make_auto_ask_for_gpus(tmp_path):
    """A cluster without a GPU node now whose autoscaler published GPU node types (Ray's cluster config in the GCS,
    written here as an autoscaler writes it): ``auto`` asks for GPUs, so the queued shards make it add GPU nodes."""
    import ray
    from ray._raylet import GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, GCS_AUTOSCALER_STATE_NAMESPACE
    from ray.core.generated import autoscaler_pb2
    from ray.experimental.internal_kv import _internal_kv_put

    from lm_eval_diversity.sweep.cluster import ClusterGPUs, cluster_gpus, resolve_resources

    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(plan_text(tmp_path / "out", {"base": "pretrained=/m"}, tasks=("diversity_gsm8k",)).replace(
        "metric_device: cpu\n", ""), encoding="utf-8")  # fmt: skip
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        before = cluster_gpus()
        group = autoscaler_pb2.NodeGroupConfig(name="gpu", resources={"CPU": 16, "GPU": 4}, max_count=2)
        config = autoscaler_pb2.ClusterConfig(node_group_configs=[group])
        _internal_kv_put(GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, config.SerializeToString(),
                         namespace=GCS_AUTOSCALER_STATE_NAMESPACE)  # fmt: skip
        after = cluster_gpus()
    finally:
        ray.shutdown()
    assert before == ClusterGPUs()
    assert after == ClusterGPUs(now=0.0, largest_node=0.0, can_add=8.0, largest_node_type=4.0)
    plan = sweep.load_plan(plan_path)
    res = resolve_resources(plan, after)
    assert (res.generation_gpus, res.scoring_gpus) == (1.0, 1.0) and not res.notes
    assert (resolve_resources(plan, before).generation_gpus, resolve_resources(plan, before).scoring_gpus) == (0, 0)
