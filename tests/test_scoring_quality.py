"""``score`` on samples of verifiable tasks: quality and quality-filtered diversity, values by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lm_eval_diversity.cli import main as cli_main

GOLD_DOC = {"question": "What is 40 + 2?", "answer": "40 + 2 = 42.\n#### 42"}
DOC_A = ["The answer is 42.\n#### 42", "#### 42", "#### 41", "I do not know."]
DOC_B = ["#### 7"] * 4


def write(tmp_path, task: str, docs_and_outputs) -> None:
    lines = [
        json.dumps({"doc_id": i, "doc": {**doc, "split_index": 10 + i}, "resps": [outs], "filter": "div"})
        for i, (doc, outs) in enumerate(docs_and_outputs)
    ]
    (tmp_path / f"samples_{task}_2026-11-25T12-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")


def score(tmp_path, *extra) -> dict:
    out = tmp_path / "score.json"
    args = ["score", str(tmp_path), "--output_path", str(out), "--metrics", "ead,sbert,vendi", "--device", "cpu"]
    assert cli_main([*args, "--sbert_model", "sentence-transformers/all-MiniLM-L6-v2", *extra]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("math_mode", ["math", "compat"])
def test_gsm8k_quality_by_hand(tmp_path, minilm, math_mode):
    write(tmp_path, "diversity_gsm8k", [(GOLD_DOC, DOC_A), (GOLD_DOC, DOC_B)])
    result = score(tmp_path, "--math_mode", math_mode)
    assert result["settings"]["math_mode"] == math_mode
    task = result["tasks"]["diversity_gsm8k"]
    m = {name: v["per_input_mean"] for name, v in task["metrics"].items()}
    # doc A: correct, correct, wrong, unparseable; doc B: all wrong
    assert m["acc"] == 0.5
    assert m["k_correct"] == 1.0
    assert m["pass@1"] == pytest.approx((2 / 4 + 0) / 2)
    assert m["maj@K"] == 0.5  # A: "42" twice beats "41" and unparseable once; B: "7" wins, wrong
    assert m["computable"] == 0.5
    # pass@k for the run's K and the protocol's k up to K; none for k > K (undefined), not a null row
    assert [m for m in task["metrics"] if m.startswith("pass@")] == ["pass@1", "pass@4"]
    assert m["pass@4"] == pytest.approx((1.0 + 0.0) / 2)
    assert all("pass@5" not in row for row in task["per_prompt"])
    a, b = task["per_prompt"]
    assert b["sbert_correct"] is None and b["vendi_correct"] is None
    # pass@K for the run's own K = 4: 1 - C(4 - c, 4) / C(4, 4) = 1 when c > 0
    assert (a["pass@4"], b["pass@4"]) == (1.0, 0.0)
    e = minilm.encode(DOC_A[:2], normalize_embeddings=True).astype(np.float64)
    cos = float(e[0] @ e[1])
    assert a["sbert_correct"] == pytest.approx(1 - cos, abs=1e-6)
    lam = np.array([(1 + cos) / 2, (1 - cos) / 2])
    assert a["vendi_correct"] == pytest.approx(math.exp(-(lam * np.log(lam)).sum()), abs=1e-6)
    assert m["sbert_correct"] == pytest.approx(1 - cos, abs=1e-6)  # mean over the one computable prompt


MBPP_DOC = {
    "task_id": 2, "text": "Add two numbers.", "code": "def add(a, b):\n    return a + b",
    "test_list": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"], "test_setup_code": "", "challenge_test_list": [],
}  # fmt: skip
MBPP_OUTPUTS = ["```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    return a - b", "", "add"]


def test_code_quality_needs_confirmation(tmp_path):
    write(tmp_path, "diversity_mbpp", [(MBPP_DOC, MBPP_OUTPUTS)])
    task = score(tmp_path)["tasks"]["diversity_mbpp"]
    assert "acc" not in task["metrics"], "quality must not be reported as 0 when code may not run"
    assert "confirm_run_unsafe_code" in task["diagnostics"]["quality"]


def test_code_quality_with_confirmation(tmp_path):
    write(tmp_path, "diversity_mbpp", [(MBPP_DOC, MBPP_OUTPUTS)])
    task = score(tmp_path, "--confirm_run_unsafe_code")["tasks"]["diversity_mbpp"]
    m = {name: v["per_input_mean"] for name, v in task["metrics"].items()}
    assert m["acc"] == 1.0 and m["k_correct"] == 1.0 and m["pass@1"] == 0.25
    assert m["computable"] == 0.0  # one correct output: no diversity among correct ones


def test_grading_shows_progress_with_counts(tmp_path, minilm, capsys):
    write(tmp_path, "diversity_gsm8k", [(GOLD_DOC, DOC_A), (GOLD_DOC, DOC_B), (GOLD_DOC, DOC_A)])
    result = score(tmp_path)
    err = capsys.readouterr().err
    assert "grading diversity_gsm8k" in err and "12/12" in err  # 3 prompts x 4 outputs, graded in slices
    m = {name: v["per_input_mean"] for name, v in result["tasks"]["diversity_gsm8k"]["metrics"].items()}
    assert m["acc"] == pytest.approx(2 / 3)  # output #0 of doc A is correct, of doc B wrong
