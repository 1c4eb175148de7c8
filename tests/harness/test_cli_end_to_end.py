"""A real tiny HF causal LM through the ``lm-eval-diversity`` command and plain ``lm_eval``, then ``score``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lm_eval_diversity
from lm_eval_diversity.cli import main as cli_main

pytestmark = pytest.mark.slow
TASKS = "diversity_gsm8k,diversity_ifeval"
K = 3
LIMIT = 2


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def lm_eval_args(model: Path, out: Path) -> list[str]:
    return [
        "--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--tasks", TASKS,
        "--limit", str(LIMIT), "--gen_kwargs", "max_gen_toks=12", "--device", "cpu", "--batch_size", "8",
        "--output_path", str(out), "--log_samples", "--seed", "1234",
    ]  # fmt: skip


def read_run(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = {}
    for f in out.rglob("samples_*.jsonl"):
        task = f.name[len("samples_") : f.name.rfind("_")]
        samples[task] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return results, samples


@pytest.fixture(scope="module")
def wrapper_run(tiny_gpt2, harness_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("wrapper_run")
    proc = run(
        [sys.executable, "-m", "lm_eval_diversity", *lm_eval_args(tiny_gpt2, out), "--repeats", str(K)],
        {"LM_EVAL_DIVERSITY_DATA_DIR": harness_env["LM_EVAL_DIVERSITY_DATA_DIR"]},
    )
    return out, proc


def test_wrapper_prints_and_writes_all_metrics(wrapper_run):
    out, proc = wrapper_run
    for metric in ("ead", "sbert", "vendi", "nli", "acc", "dup_rate"):
        assert metric in proc.stdout
    results, samples = read_run(out)
    for task in TASKS.split(","):
        r = results["results"][task]
        for m in ("ead", "sbert", "vendi", "nli"):
            assert 0 <= r[f"{m},div"] <= (16 if m == "vendi" else 2), (task, m)
        assert results["configs"][task]["repeats"] == K
        assert len(samples[task]) == LIMIT
        assert all(len(s["resps"][0]) == K for s in samples[task])


def test_plain_lm_eval_with_include_path(tiny_gpt2, harness_env, tmp_path):
    run(
        [sys.executable, "-m", "lm_eval", *lm_eval_args(tiny_gpt2, tmp_path), "--include_path",
         str(lm_eval_diversity.TASK_DIR), "--metadata", json.dumps({"repeats": K})],
        harness_env,
    )  # fmt: skip
    results, _ = read_run(tmp_path)
    assert set(TASKS.split(",")) <= set(results["results"])
    assert results["configs"]["diversity_gsm8k"]["repeats"] == K


def test_score_reproduces_harness_per_doc_values(wrapper_run, harness_env, tmp_path):
    out, _ = wrapper_run
    _, samples = read_run(out)
    dest = tmp_path / "score.json"
    args = ["score", str(out), "--output_path", str(dest), "--device", "cpu"]
    args += ["--sbert_model", harness_env["LM_EVAL_DIVERSITY_SBERT_MODEL"]]
    args += ["--nli_model", harness_env["LM_EVAL_DIVERSITY_NLI_MODEL"]]
    assert cli_main(args) == 0
    scored = json.loads(dest.read_text())
    for task, lines in samples.items():
        per_prompt = {row["doc_id"]: row for row in scored["tasks"][task]["per_prompt"]}
        for line in lines:
            for m in ("ead", "sbert", "vendi", "nli", "dup_rate"):
                logged, rescored = line[m], per_prompt[line["doc_id"]][m]
                assert (math.isnan(logged) and rescored is None) or logged == pytest.approx(rescored, abs=1e-6)


def test_wrapper_with_baseline_prints_the_split(wrapper_run, tiny_gpt2, harness_env, tmp_path):
    base_dir, _ = wrapper_run
    base_results, _ = read_run(base_dir)
    args = lm_eval_args(tiny_gpt2, tmp_path)
    args[args.index("--seed") + 1] = "0,1234,7,1234"  # other torch seed: other samples than the baseline
    proc = run(
        [sys.executable, "-m", "lm_eval_diversity", *args, "--repeats", str(K), "--diversity_baseline", str(base_dir)],
        {"LM_EVAL_DIVERSITY_DATA_DIR": harness_env["LM_EVAL_DIVERSITY_DATA_DIR"]},
    )
    for name in ("loss_sbert", "residual_sbert", "qc_sbert", "loss_vendi"):
        assert name in proc.stdout
    results, _ = read_run(tmp_path)
    for task in ("diversity_gsm8k", "diversity_ifeval"):
        r, b = results["results"][task], base_results["results"][task]
        assert results["configs"][task]["metadata"]["diversity_settings"]["baseline"] == str(base_dir)
        # loss = D_all(base) - D_all(model), both over all prompts
        assert r["loss_sbert,div"] == pytest.approx(b["sbert_all,div"] - r["sbert_all,div"], abs=1e-9)
        assert r["loss_vendi,div"] == pytest.approx(b["vendi,div"] - r["vendi,div"], abs=1e-9)
