"""The harness logs each task's metric work and calibrated time before generation starts."""

from __future__ import annotations

import logging

import lm_eval

from lm_eval_diversity.lm_eval_cli import task_manager
from tests.harness.test_fake_lm import LIMIT, K, TwoAnswerLM


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class RecordingLM(TwoAnswerLM):
    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines
        self.seen_at_generation: list[str] = []

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.seen_at_generation = list(self.lines)
        return super().generate_until(requests, disable_tqdm)


def test_estimate_is_logged_before_generation(harness_env, monkeypatch):
    monkeypatch.setenv("LM_EVAL_DIVERSITY_METRICS", "ead,sbert,vendi,nli")
    logger = logging.getLogger("lm_eval.diversity")
    handler = _Lines()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        lm = RecordingLM(handler.lines)
        tm = task_manager(include_defaults=False, metadata={"repeats": K})
        lm_eval.simple_evaluate(model=lm, tasks=["diversity_gsm8k"], task_manager=tm, limit=LIMIT, bootstrap_iters=0)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    estimates = [line for line in lm.seen_at_generation if "metric work" in line]
    assert len(estimates) == 1, lm.seen_at_generation
    text = estimates[0]
    # 3 prompts x K=4: 12 texts; per-input 3 x C(4,2)=6 x 3 sentences x 2 directions; corpus sets of 3 and 12
    assert f"diversity_gsm8k: {LIMIT} prompts x K={K}; at most {LIMIT * K} unique texts to embed" in text
    assert "per_input at most 108, across_input at most 18, overall at most 396" in text
    assert "NLI corpus levels (not requested; --corpus_metrics nli) at most 414 pairs: 3.8x the per-input work" in text
    assert "device cpu" in text and "time unknown" not in text
