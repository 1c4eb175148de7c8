"""Fixtures for runs through lm-eval: tiny local models and the data directories, all offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lm_eval_diversity.loader import DEMO_DATA_DIR


def harness_env_vars(nli_model: Path) -> dict[str, str]:
    """Metric settings and local data for runs inside lm-eval (shared/data first, then the shipped demo sets)."""
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    dirs = [str(shared)] if shared.is_dir() else []
    return {
        "LM_EVAL_DIVERSITY_DATA_DIR": os.pathsep.join([*dirs, str(DEMO_DATA_DIR)]),
        "LM_EVAL_DIVERSITY_SBERT_MODEL": "sentence-transformers/all-MiniLM-L6-v2",
        "LM_EVAL_DIVERSITY_NLI_MODEL": str(nli_model),
        "LM_EVAL_DIVERSITY_DEVICE": "cpu",
    }


@pytest.fixture(scope="module")
def harness_env(tiny_nli_dir):
    with pytest.MonkeyPatch.context() as mp:
        env = harness_env_vars(tiny_nli_dir)
        for k, v in env.items():
            mp.setenv(k, v)
        yield env
