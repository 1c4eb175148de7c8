"""Settings that can only fail once responses exist are checked before generation; if scoring still fails after it,
the responses are saved as a samples file that ``score`` reads (nothing generated is lost)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_diversity import cli, harness
from lm_eval_diversity.models import ModelUnavailableError

from .fakes import GoldLM, run_saved


class CountingLM(GoldLM):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.calls += 1
        return super().generate_until(requests, disable_tqdm)


def _results_json(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": {"diversity_gsm8k": {}}, "model_name": "base"}))
    return path


@pytest.mark.parametrize(
    ("env", "error", "where"),
    [
        ({"LM_EVAL_DIVERSITY_DEVICE": "cuda:7"}, ModelUnavailableError, "LM_EVAL_DIVERSITY_DEVICE"),
        ({"LM_EVAL_DIVERSITY_DEVICE": "not-a-device"}, ModelUnavailableError, "LM_EVAL_DIVERSITY_DEVICE"),
        ({"LM_EVAL_DIVERSITY_NLI_MODEL": "TINY_GPT2"}, ModelUnavailableError, "LM_EVAL_DIVERSITY_NLI_MODEL"),
        ({"LM_EVAL_DIVERSITY_SEED": "-5"}, ValueError, "seed"),
        ({"LM_EVAL_DIVERSITY_BASELINE": "MISSING"}, ValueError, "no such file"),
    ],
)
def test_bad_setting_fails_before_any_generation(
    env: dict, error: type, where: str, harness_env, tiny_gpt2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    if env.get("LM_EVAL_DIVERSITY_DEVICE", "").startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.fail("this check needs a machine with fewer than 8 CUDA devices")
    for k, v in env.items():
        v = str(tiny_gpt2) if v == "TINY_GPT2" else str(tmp_path / "missing") if v == "MISSING" else v
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LM_EVAL_DIVERSITY_METRICS", "ead,sbert,nli")
    lm = CountingLM()
    with pytest.raises(error, match=where):
        run_saved(lm, ["diversity_gsm8k"], None, repeats=2, limit=2)
    assert lm.calls == 0, "generation ran before the bad setting was found"


def test_scoring_failure_after_generation_saves_the_responses(
    harness_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("LM_EVAL_DIVERSITY_OUTPUT_PATH", str(tmp_path / "out"))
    monkeypatch.setenv("LM_EVAL_DIVERSITY_METRICS", "ead")

    def broken(*args, **kwargs):
        raise RuntimeError("metric model crashed")

    monkeypatch.setattr(harness, "score_task", broken)
    lm = CountingLM()
    with pytest.raises(harness.ScoringAfterGenerationError, match="lm-eval-diversity score") as info:
        run_saved(lm, ["diversity_gsm8k"], None, repeats=2, limit=3)
    assert lm.calls == 1
    [saved] = (tmp_path / "out" / "unscored").glob("samples_diversity_gsm8k_*.jsonl")
    assert str(saved) in str(info.value)
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [r["doc_id"] for r in rows] == [0, 1, 2]
    assert all(len(r["resps"][0]) == 2 and "####" in r["resps"][0][0] for r in rows)
    monkeypatch.undo()
    rc = cli.main(["score", str(saved), "--metrics", "ead", "--corpus_metrics", "ead", "--device", "cpu"])
    assert rc == 0
    assert "diversity_gsm8k" in capsys.readouterr().out
