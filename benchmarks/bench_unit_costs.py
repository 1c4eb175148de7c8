"""Benchmark: unit costs of the scoring phases with models of the real sizes (random weights, same compute).

* per text: a forward pass of an all-mpnet-base-v2-sized encoder (MPNet 12 x 768) over texts of ``--text_len`` tokens;
* per pair: a forward pass of a roberta-large-mnli-sized classifier (RoBERTa 24 x 1024, 3 labels) over sentence
  pairs of ``--pair_len`` tokens.
Both in float32 and bfloat16 on ``--device``. These are the numbers the full-sweep arithmetic in docs/scale.md
multiplies; run it on the GPU you plan to use (``--device cuda``) to replace the CPU figures.

    python benchmarks/bench_unit_costs.py --device cpu --batch 32
"""

from __future__ import annotations

import argparse
import json
import time


def _time_forward(model, batch, n_batches: int, device: str) -> float:
    import torch

    with torch.inference_mode():
        model(**batch)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n_batches):
            model(**batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return (time.perf_counter() - t) / n_batches


def main() -> None:
    import torch
    from transformers import MPNetConfig, MPNetModel, RobertaConfig, RobertaForSequenceClassification

    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--text_len", type=int, default=256, help="tokens per text (SBERT truncates at 384)")
    p.add_argument("--pair_len", type=int, default=96, help="tokens per sentence pair")
    p.add_argument("--n_batches", type=int, default=2)
    args = p.parse_args()
    torch.manual_seed(0)
    out = {"device": args.device, "batch": args.batch, "text_len": args.text_len, "pair_len": args.pair_len}
    models = {
        "text_mpnet_base": (MPNetModel(MPNetConfig()), args.text_len),
        "pair_roberta_large": (
            RobertaForSequenceClassification(
                RobertaConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                              num_labels=3)
            ),
            args.pair_len,
        ),  # fmt: skip
    }
    for name, (model, length) in models.items():
        model.eval().to(args.device)
        ids = torch.randint(5, 30000, (args.batch, length), device=args.device)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        for dtype in ("float32", "bfloat16"):
            model.to(getattr(torch, dtype))
            s = _time_forward(model, batch, args.n_batches, args.device)
            out[f"{name}_{dtype}_ms_per_item"] = round(s / args.batch * 1e3, 3)
        model.to("cpu")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
