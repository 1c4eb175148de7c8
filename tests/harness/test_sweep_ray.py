"""The sweep on a local Ray instance (2 CPUs) with the tiny local GPT-2: results, seeds, resume, faults, Ctrl-C."""

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
from lm_eval_diversity.tasks import DEMO_DATA_DIR

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

TASKS = ("diversity_gsm8k", "diversity_alpaca")
METRICS = "ead,sbert,vendi"
SBERT = "sentence-transformers/all-MiniLM-L6-v2"


def plan_text(root: Path, checkpoints: dict[str, str], tasks=TASKS, extra: str = "") -> str:
    ckpts = "".join(f"  {label}: {args}\n" for label, args in checkpoints.items())
    return (
        f"output_root: {root}\ncheckpoints:\n{ckpts}baseline: {next(iter(checkpoints))}\n"
        f"tasks: [{', '.join(tasks)}]\nrepeats: 4\nlimit: 4\nprompt_shards: 2\nseed: 7\n"
        "model_args: {dtype: float32}\n"
        "gen_kwargs: {max_gen_toks: 12, temperature: 1.0, do_sample: true}\n"
        f"batch_size: 8\ndevice: cpu\ndata_dir: {DEMO_DATA_DIR}\n"
        f"metric_settings: {{metrics: [{METRICS}], sbert_model: {SBERT}, device: cpu}}\n{extra}"
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


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_gpt2):
    """One sweep: 2 checkpoints x 2 tasks x 2 prompt shards (the same weights under two labels)."""
    work = tmp_path_factory.mktemp("sweep")
    plan_path = work / "plan.yaml"
    plan_path.write_text(
        plan_text(work / "out", {"base": f"pretrained={tiny_gpt2}", "sft": f"pretrained={tiny_gpt2}"}),
        encoding="utf-8",
    )
    proc = cli(plan_path)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return sweep.load_plan(plan_path), out


def _shard_samples(root: Path, label: str, task: str) -> list[Path]:
    return sorted((root / sweep.SHARDS_DIR / label / task).glob("p*/samples_*.jsonl"))


def test_sweep_results_equal_a_single_process_score_of_the_same_samples(swept, tmp_path):
    plan, _ = swept
    root = plan.output_root
    for label in ("base", "sft"):
        result = json.loads((root / "results" / f"{label}.json").read_text(encoding="utf-8"))
        for task in TASKS:
            files = _shard_samples(root, label, task)
            assert len(files) == 2
            # the single-process run: one samples file holding both shards' lines, scored by `score`
            single = tmp_path / label / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl"
            single.parent.mkdir(parents=True, exist_ok=True)
            single.write_text("".join(f.read_text(encoding="utf-8") for f in files), encoding="utf-8")
            ref = run_score([str(single), "--metrics", METRICS, "--sbert_model", SBERT, "--device", "cpu"])
            got, want = result["tasks"][task], ref["tasks"][task]
            assert got["n_prompts"] == want["n_prompts"] == 4 and got["k"] == 4
            for metric in METRICS.split(","):
                for level in ("per_input_mean", "across_input", "overall"):
                    assert got["metrics"][metric][level] == pytest.approx(want["metrics"][metric][level], abs=1e-9)
            assert [r["doc_id"] for r in got["per_prompt"]] == [0, 1, 2, 3]
            # corpus EAD from the merged task, recomputed independently: across-input over each prompt's first
            # output, overall over all 16 (fewer than 500 outputs: the whole set is used)
            lines = [json.loads(x) for f in files for x in f.read_text(encoding="utf-8").splitlines() if x]
            outs = [ln["resps"][0] for ln in sorted(lines, key=lambda ln: ln["doc_id"])]
            assert got["metrics"]["ead"]["overall"] == pytest.approx(ref_ead([o for os_ in outs for o in os_]))
            assert got["metrics"]["ead"]["across_input"] == pytest.approx(ref_ead([o[0] for o in outs]))


def test_every_shard_has_a_distinct_recorded_seed_and_its_own_samples(swept):
    plan, _ = swept
    root = plan.output_root
    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in (root / "shards").rglob(sweep.MANIFEST)]
    assert len(manifests) == 2 * 2 * 2
    seeds = [m["inputs"]["seed"] for m in manifests]
    assert len(set(seeds)) == 8
    for m in manifests:
        s = m["inputs"]
        assert s["seed"] == sweep.shard_seed(7, s["label"], s["task"], s["prompt_shard"], s["repeat_shard"])
    recorded = json.loads((root / "results" / "base.json").read_text(encoding="utf-8"))["sweep"]["shard_seeds"]
    assert len(recorded) == 4 and len(set(recorded.values())) == 4
    # same weights under both labels: only the seeds differ, and so do the samples
    for task in TASKS:
        a = [f.read_text(encoding="utf-8") for f in _shard_samples(root, "base", task)]
        b = [f.read_text(encoding="utf-8") for f in _shard_samples(root, "sft", task)]
        resp_a = [json.loads(x)["resps"] for t in a for x in t.splitlines() if x]
        resp_b = [json.loads(x)["resps"] for t in b for x in t.splitlines() if x]
        assert resp_a != resp_b


def test_report_and_status_are_written(swept):
    plan, out = swept
    root = plan.output_root
    md = (root / "report.md").read_text(encoding="utf-8")
    assert "baseline: base" in md and "| sft |" in md
    assert (root / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (root / "report.png").read_bytes()[:4] == b"\x89PNG"
    status = json.loads((root / "status.json").read_text(encoding="utf-8"))
    assert {s["state"] for s in status["shards"].values()} == {"done"} and len(status["shards"]) == 12
    assert "checkpoint" in out and "diversity_gsm8k" in out and "ETA" in out


def test_rerun_recomputes_nothing_then_only_a_corrupt_shard(swept):
    plan, _ = swept
    root = plan.output_root
    before = mtimes(root)
    summary = sweep.run_sweep(plan, num_cpus=2, status_every=60, echo=lambda _: None)
    assert summary.counts() == {"skipped": 12} and not summary.failed
    assert mtimes(root) == before
    victim = _shard_samples(root, "sft", "diversity_alpaca")[1]
    original = victim.read_text(encoding="utf-8")
    victim.write_text(original.replace('"doc_id": 3', '"doc_id": 3 '), encoding="utf-8")
    before = mtimes(root)
    summary = sweep.run_sweep(plan, num_cpus=2, status_every=60, echo=lambda _: None)
    # only the corrupt shard is generated again; with its recorded seed it reproduces the same samples, so the
    # scoring shard's inputs (the shards' checksums) are unchanged and its scores stand
    assert summary.counts() == {"skipped": 11, "done": 1}
    assert summary.shards["sft/diversity_alpaca/p001-r00"].state == "done"
    assert victim.read_text(encoding="utf-8") == original
    redone = {k for k, v in mtimes(root).items() if before.get(k) != v}
    assert redone == {str(victim.relative_to(root)), str((victim.parent / sweep.MANIFEST).relative_to(root))}


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 300.0, what: str = ""):
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


def test_killed_worker_is_retried_and_a_poisoned_checkpoint_is_reported(tmp_path, tiny_gpt2):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(
        plan_text(
            tmp_path / "out",
            {"good": f"pretrained={tiny_gpt2}", "broken": f"pretrained={tmp_path / 'no_such_model'}"},
            tasks=("diversity_gsm8k",),
            extra="max_retries: 1\n",
        ),
        encoding="utf-8",
    )
    victim = tmp_path / "out" / "shards" / "good" / "diversity_gsm8k" / "p001-r00"
    proc = cli(plan_path)
    info = _wait_for(
        lambda: (victim / sweep.RUNNING).is_file() and json.loads((victim / sweep.RUNNING).read_text()),
        proc,
        what="the shard to start",
    )
    os.kill(info["pid"], signal.SIGKILL)  # the Ray worker running the shard dies mid-run
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out  # the broken checkpoint's shards failed
    manifest = json.loads((victim / sweep.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["attempt"] == 2  # retried by Ray after the kill, then finished
    status = json.loads((tmp_path / "out" / "status.json").read_text(encoding="utf-8"))["shards"]
    good = {k: v for k, v in status.items() if k.startswith("good/")}
    broken = {k: v for k, v in status.items() if k.startswith("broken/")}
    assert {v["state"] for v in good.values()} == {"done"} and len(good) == 3
    assert {v["state"] for v in broken.values()} == {"failed"} and len(broken) == 2
    assert all("no_such_model" in v["error"] for v in broken.values())
    assert "FAILED broken/diversity_gsm8k/p000-r00" in out
    # the report covers what finished
    assert (tmp_path / "out" / "results" / "good.json").is_file()
    assert not (tmp_path / "out" / "results" / "broken.json").exists()
    assert "good" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")


def test_ctrl_c_keeps_finished_shards_and_the_rerun_does_only_the_rest(tmp_path, tiny_gpt2):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(
        plan_text(tmp_path / "out", {"base": f"pretrained={tiny_gpt2}"}, extra="prompt_shards: 4\n"),
        encoding="utf-8",
    )
    root = tmp_path / "out"
    proc = cli(plan_path)
    _wait_for(lambda: len(list((root / "shards").rglob(sweep.MANIFEST))) >= 1, proc, what="a finished shard")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    done_dirs = {str(Path(k).parent) for k in mtimes(root) if k.startswith("shards/") and k.endswith(sweep.MANIFEST)}
    finished = {k: v for k, v in mtimes(root).items() if str(Path(k).parent) in done_dirs}
    n_done = len(done_dirs)
    assert 1 <= n_done < 8
    summary = sweep.run_sweep(sweep.load_plan(plan_path), num_cpus=2, status_every=60, echo=lambda _: None)
    assert not summary.failed
    assert summary.counts()["skipped"] == n_done
    assert summary.counts()["done"] == (8 - n_done) + 2  # the other generation shards + 2 scoring shards
    after = mtimes(root)
    assert {k: after[k] for k in finished} == finished  # nothing finished before Ctrl-C was recomputed
