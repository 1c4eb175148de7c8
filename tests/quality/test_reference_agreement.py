"""Compat mode against the reference's own graders, prompt by prompt, through ``lm-eval-diversity score``.

The reference grades in two places (docs/metrics.md, "Graders: default and compat"): its accuracy scripts
(``scripts/compute_{math,code,ifeval}_quality.py``: acc, pass@k, maj@k, IFEval loose accuracy) and its QFD script
(``scripts/quality_filtered_diversity.py``: the correct subsets, k_correct). Compat must equal the first on every
accuracy metric and the second on ``k_correct``, on every prompt of a realistic-output set (``realistic.py``: the
variants grouped K = 4 per prompt).

The reference is loaded at run time from ``LMEDS_REFERENCE_REPO`` (a checkout of ckarouzos/where-diversity-collapses,
or its bare git directory); without it the test is skipped. Nothing of it is copied here. Its dataset loading is
served from ``../shared/data`` (HumanEval from its package) by replacing ``datasets.load_dataset`` while it runs.
Its code runner executes the (constructed, benign) programs without a sandbox, as it always did.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from lm_eval_diversity.cli import main as cli_main
from quality import realistic as R
from quality.test_realistic_outputs import suite

pytestmark = pytest.mark.slow

K = 4
TASKS = ("gsm8k", "math_algebra", "math_geometry", "humaneval", "mbpp", "ifeval", "truthfulqa")


# ------------------------------------------------------------------------------------------------ the reference
def _reference_root(tmp: Path) -> Path:
    given = os.environ.get("LMEDS_REFERENCE_REPO", "")
    if not given:
        pytest.skip("LMEDS_REFERENCE_REPO not set (a checkout or bare git dir of ckarouzos/where-diversity-collapses)")
    path = Path(given)
    if (path / "scripts" / "quality_filtered_diversity.py").is_file():
        return path
    archive = subprocess.run(["git", "--git-dir", str(path), "archive", "HEAD"], capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hf_rows(data: Path) -> dict[tuple, list[dict]]:
    """The rows the reference asks ``datasets.load_dataset`` for, keyed by (repo, config): IFEval kwargs with every
    key present (None where unused), as ``datasets`` loads them."""
    ifeval = R.jsonl(data / "ifeval" / "train.jsonl")
    keys = sorted({k for d in ifeval for kw in d["kwargs"] for k in kw})
    ifeval = [{**d, "kwargs": [{k: kw.get(k) for k in keys} for kw in d["kwargs"]]} for d in ifeval]
    return {
        ("gsm8k", "main"): R.jsonl(data / "gsm8k" / "test.jsonl"),
        ("EleutherAI/hendrycks_math", "algebra"): R.jsonl(data / "math" / "algebra" / "test.jsonl"),
        ("EleutherAI/hendrycks_math", "geometry"): R.jsonl(data / "math" / "geometry" / "test.jsonl"),
        ("openai_humaneval", "openai_humaneval"): R.humaneval_docs(),
        ("mbpp", "full"): R.jsonl(data / "mbpp" / "test.jsonl"),
        ("google/IFEval", "default"): ifeval,
        ("truthfulqa/truthful_qa", "generation"): R.jsonl(data / "truthfulqa" / "validation.jsonl"),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_data_dir: Path):
    root = _reference_root(tmp_path_factory.mktemp("reference"))
    import datasets

    rows = _hf_rows(shared_data_dir)
    original = datasets.load_dataset
    datasets.load_dataset = lambda repo, config=None, split=None, **kw: rows[(repo, config)]
    sys.path[:0] = [str(root / "src"), str(root)]
    try:
        yield {
            "math": _load("ref_compute_math_quality", root / "scripts" / "compute_math_quality.py"),
            "code": _load("ref_compute_code_quality", root / "scripts" / "compute_code_quality.py"),
            "ifeval": _load("ref_compute_ifeval_quality", root / "scripts" / "compute_ifeval_quality.py"),
            "qfd": _load("ref_quality_filtered_diversity", root / "scripts" / "quality_filtered_diversity.py"),
        }
    finally:
        datasets.load_dataset = original
        del sys.path[:2]


# lighteval's query of each task (the reference's prompt functions), which its scripts match back to the data
def query(task: str, doc: dict) -> str:
    if task == "gsm8k":
        return f"Question: {doc['question']}\n\nAnswer:"
    if task.startswith("math_"):
        return f"Problem: {doc['problem']}\n\nSolution:"
    if task == "mbpp":
        return f'"""\n{doc["text"]}\n"""\n'
    if task == "truthfulqa":
        return f"Q: {doc['question']}\nA:"
    return doc["prompt"]  # humaneval, ifeval


def gold_text(task: str, doc: dict) -> str:
    """``doc.choices[0]`` of the reference's lighteval docs (what its QFD script reads the gold from)."""
    return " " + {"gsm8k": doc.get("answer"), "truthfulqa": doc.get("best_answer")}.get(task, doc.get("solution", ""))


def reference_prompt(ref, task: str, doc: dict, outputs: list[str]) -> dict[str, float]:
    """The reference's numbers for one prompt: its accuracy script on a one-record run, its QFD grader's k_correct."""
    record = [{"prompt": query(task, doc), "outputs": list(outputs)}]
    qfd, out = ref["qfd"], {}
    if task in ("gsm8k", "math_algebra", "math_geometry"):
        name = f"{task}_diversity"
        r = ref["math"].evaluate_gsm8k(record, ref["math"].TASK_CONFIG[name], task_name=name)
        out |= {"acc": r["accuracy_at_1"], "maj@K": r["majority_vote_at_16"], f"pass@{K}": r["pass_at_16"]}
        correct = qfd.check_math_correctness(outputs, gold_text(task, doc), task=task, prompt=query(task, doc))
    elif task == "truthfulqa":
        r = ref["math"]._evaluate_truthfulqa(record)
        out |= {"acc": r["accuracy_at_1"], "maj@K": r["majority_vote_at_16"], f"pass@{K}": r["pass_at_16"]}
        correct = qfd.check_truthfulqa_correctness(
            outputs, {"query": query(task, doc), "choices": [gold_text(task, doc)]}
        )
    elif task in ("humaneval", "mbpp"):
        config = ref["code"].TASK_CONFIG[f"{task}_diversity"]
        evaluate = ref["code"].evaluate_humaneval if task == "humaneval" else ref["code"].evaluate_mbpp
        r = evaluate(record, config, timeout=5.0)
        out |= {"pass@1": r["pass_at_1"], f"pass@{K}": r["pass_at_5"]}  # the script clips k to n = K
        correct = qfd.check_code_correctness(outputs, {"query": query(task, doc)}, task=task)
    else:
        r = ref["ifeval"].evaluate_ifeval(record, ref["ifeval"].TASK_CONFIG["ifeval_diversity"])
        out |= {
            "acc": r["strict_accuracy_at_1"],
            "prompt_level_loose_acc": r["loose_accuracy_at_1"],
            f"pass@{K}": r["strict_pass_at_16"],
            "pass@1": r["consistency_at_16"],
        }
        correct = qfd.check_ifeval_correctness(outputs, {"query": query(task, doc)})
    assert r["n_prompts"] == 1, (task, query(task, doc)[:80])  # the reference matched the prompt to its data
    out["k_correct"] = float(sum(correct))
    return out


# ------------------------------------------------------------------------------------------------ our side
def groups_of(task: str, data: Path) -> list[tuple[dict, list[str]]]:
    """The realistic set of a task: each doc's variants, K per prompt (the last group topped up from the first)."""
    docs, variants = suite(task, data)
    groups = []
    for doc, vs in zip(docs, variants, strict=True):
        outs = [o for _, o, _ in vs]
        outs += outs[: (-len(outs)) % K]
        groups += [(doc, outs[i : i + K]) for i in range(0, len(outs), K)]
    return groups


def write_samples(directory: Path, task: str, groups: list[tuple[dict, list[str]]]) -> None:
    lines = []
    for i, (doc, outs) in enumerate(groups):
        prompt = query(task, doc)
        lines.append(
            json.dumps(
                {
                    "doc_id": i,
                    "doc": doc,
                    "target": "",
                    "filter": "diversity_metrics",
                    "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": [], "do_sample": True}}},
                    "resps": [outs],
                    "filtered_resps": [outs],
                    "metrics": ["diversity_ead"],
                }
            )  # fmt: skip
        )
    (directory / f"samples_diversity_{task}_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")


def score_compat(tmp: Path, task: str, groups) -> list[dict]:
    write_samples(tmp, task, groups)
    out = tmp / "scores.json"
    argv = ["score", str(tmp), "--output_path", str(out), "--math_mode", "compat", "--ifeval_mode", "compat",
            "--code_mode", "compat", "--confirm_run_unsafe_code", "--diversity_metrics", "ead"]  # fmt: skip
    assert cli_main(argv) == 0
    result = json.loads(out.read_text())
    return result["tasks"][f"diversity_{task}"]["per_prompt"]


@pytest.mark.parametrize("task", TASKS)
def test_compat_equals_both_reference_paths_prompt_by_prompt(task, reference, shared_data_dir, tmp_path, capsys):
    groups = groups_of(task, shared_data_dir)
    ours = score_compat(tmp_path, task, groups)
    with capsys.disabled():
        theirs = [reference_prompt(reference, task, doc, outs) for doc, outs in groups]
    per_prompt = {"accuracy metrics": 0, "k_correct (QFD)": 0}
    diffs = []
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        acc_keys = [k for k in t if k != "k_correct"]
        acc_ok = all(o.get(k) is not None and math.isclose(o[k], t[k], abs_tol=1e-9) for k in acc_keys)
        k_ok = math.isclose(o["k_correct"], t["k_correct"])
        per_prompt["accuracy metrics"] += acc_ok
        per_prompt["k_correct (QFD)"] += k_ok
        if not (acc_ok and k_ok):
            diffs.append((i, {k: (o.get(k), t[k]) for k in t if o.get(k) is None or not math.isclose(o[k], t[k])},
                          [x[:80] for x in groups[i][1]]))  # fmt: skip
    with capsys.disabled():
        print(f"\nAGREEMENT {task}: " + ", ".join(f"{m} {v}/{len(groups)}" for m, v in per_prompt.items()))
    assert not diffs, diffs[:5]
