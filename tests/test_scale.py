"""Scaled-out runs (docs/scale.md): metric models in bf16, vLLM data parallelism refused, corpus values of
multi-rank runs, compare flagging a metric-model dtype mismatch."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lm_eval_diversity.settings import DiversitySettings


def test_bf16_sentence_model_gives_float32_embeddings_close_to_fp32(minilm):
    from lm_eval_diversity.models import embed_texts, load_sentence_model

    texts = ["The cat sat on the mat.", "A feline rested on the rug.", "Stock markets fell sharply today."]
    bf16 = load_sentence_model("sentence-transformers/all-MiniLM-L6-v2", device="cpu", dtype="bfloat16")
    assert next(bf16.parameters()).dtype.__str__() == "torch.bfloat16"
    assert next(minilm.parameters()).dtype.__str__() == "torch.float32"  # loading bf16 did not touch the fp32 one
    a, b = embed_texts(minilm, texts), embed_texts(bf16, texts)
    assert a.dtype == b.dtype == np.float32
    cos = (a * b).sum(axis=1)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)  # unit rows, as the metrics assume
    assert np.all(cos > 0.99)
    # bf16 keeps 8 bits of mantissa: the rows are not bit-identical to fp32
    assert not np.array_equal(a, b)


def test_bf16_nli_model_scores_close_to_fp32(tiny_nli_dir):
    from lm_eval_diversity.models import load_nli_model

    pairs = [("a cat sat on the mat", "a cat is sitting"), ("it rained all day", "the sun was out")]
    fp32 = load_nli_model(str(tiny_nli_dir), device="cpu")
    bf16 = load_nli_model(str(tiny_nli_dir), device="cpu", dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype.__str__() == "torch.bfloat16"
    w32, w16 = fp32.entail_minus_contradict(pairs), bf16.entail_minus_contradict(pairs)
    assert np.all(np.abs(w32 - w16) < 0.05)


def _score_json(path, dtype: str) -> None:
    rows = [{"doc_id": i, "sbert": 0.5 + 0.1 * i} for i in range(3)]
    data = {
        "settings": DiversitySettings(metrics=("sbert",), dtype=dtype).to_dict(),
        "tasks": {
            "diversity_alpaca": {
                "n_prompts": 3,
                "k": 4,
                "metrics": {"sbert": {"per_input_mean": 0.6}},
                "per_prompt": rows,
            }
        },
    }
    path.write_text(json.dumps(data), encoding="utf-8")


def test_compare_flags_a_dtype_mismatch(tmp_path):
    from lm_eval_diversity.compare import run_compare

    _score_json(tmp_path / "base.json", "float32")
    _score_json(tmp_path / "cand.json", "bfloat16")
    out = tmp_path / "report.json"
    rc = run_compare([str(tmp_path / "base.json"), str(tmp_path / "cand.json"), "--baseline", "base", "--format",
                      "json", "--output", str(out), "--metrics", "sbert"])  # fmt: skip
    assert rc == 0
    text = out.read_text(encoding="utf-8")
    report = json.loads(text)
    rows = [r for r in report["checks"] if r["field"] == "dtype"]
    assert rows == [
        {"task": "diversity_alpaca", "run": "cand", "reference": "base", "field": "dtype",
         "reference_value": "float32", "value": "bfloat16"}
    ]  # fmt: skip


@pytest.mark.parametrize(
    "argv, refused",
    [
        (["--model", "vllm", "--model_args", "pretrained=m,data_parallel_size=2"], True),
        (["--model=vllm", "--model_args=pretrained=m,data_parallel_size=4,tensor_parallel_size=1"], True),
        (["--model", "vllm", "--model_args", "pretrained=m,data_parallel_size=1"], False),
        (["--model", "vllm", "--model_args", "pretrained=m,tensor_parallel_size=2"], False),
        (["--model", "hf", "--model_args", "pretrained=m,data_parallel_size=2"], False),
    ],
)
def test_vllm_data_parallel_is_refused_with_a_pointer_to_the_sweep(argv, refused):
    from lm_eval_diversity.command import DataParallelError, check_data_parallel

    if refused:
        with pytest.raises(DataParallelError, match="same engine seed|share one engine seed") as err:
            check_data_parallel(argv)
        assert "lm-eval-diversity sweep" in str(err.value)
    else:
        check_data_parallel(argv)


def test_cli_refuses_vllm_data_parallel_without_a_traceback(capsys):
    from lm_eval_diversity.cli import main

    rc = main(["run", "--model", "vllm", "--model_args", "pretrained=m,data_parallel_size=2", "--tasks", "x"])
    assert rc == 2
    assert "data_parallel_size=2" in capsys.readouterr().err


def test_corpus_values_of_a_multi_rank_run_point_at_the_two_pass_flow(monkeypatch, caplog):
    from lm_eval_diversity.harness import TWO_PASS_NOTE, corpus_value

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert corpus_value([0.4, 0.4, 0.4]) == 0.4
    assert corpus_value([math.nan, math.nan]) is None
    # ranks scored different parts of the task: null in the (strict JSON) results, the log points at the flow
    with caplog.at_level("WARNING"):
        assert corpus_value([0.4, 0.4, 0.7]) is None
    assert TWO_PASS_NOTE in caplog.text
    caplog.clear()
    monkeypatch.setenv("WORLD_SIZE", "2")
    with caplog.at_level("WARNING"):
        assert corpus_value([0.4, 0.4]) is None  # two ranks that happen to agree are still partial
    assert TWO_PASS_NOTE in caplog.text
