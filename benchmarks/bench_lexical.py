"""Benchmark: each lexical measure on a whole task of prompts x K outputs (CPU, no model).

Texts: per prompt a real prose reference of about ``--words`` words (consecutive Alpaca responses from
``--data_dir``, sentence by sentence), and K outputs that keep each sentence with probability 0.6 and swap it for a
sentence of another reference otherwise, cut to ``--words`` words; one prompt in ten has an exact duplicate. Times
are medians over ``--reps`` runs of one call per measure over the whole task (the ``texts`` pass of scoring runs the
ROUGE-L LCS of all pairs of all prompts as one batch; "all" is every lexical record of the catalogue, as scoring
calls them). For comparison, the package ``diversity`` 0.3.0 (when
installed) and rouge-score's own per-pair ROUGE-L are timed on ``--package_prompts`` prompts and scaled to the task.

    python benchmarks/bench_lexical.py --n_prompts 500 --k 16 --words 150
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import random
import re
import statistics
import time
from pathlib import Path

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.metrics import lexical as lx
from lm_eval_diversity.settings import DiversitySettings

_SPLIT = re.compile(r"(?<=[.!?])\s+|\n")


def prose_groups(n_prompts: int, k: int, words: int, data_dir: Path, seed: int = 0) -> list[list[str]]:
    with open(data_dir / "alpaca/train.jsonl", encoding="utf-8") as f:
        responses = [json.loads(line)["output"] for line in f if line.strip()]
    sentences = [s.strip() for r in responses for s in _SPLIT.split(r) if s.strip()]
    rng = random.Random(seed)
    groups = []
    for p in range(n_prompts):
        base, n_words, i = [], 0, (p * 7) % len(sentences)
        while n_words < words:
            base.append(sentences[i % len(sentences)])
            n_words += len(base[-1].split())
            i += 1
        outs = []
        for _ in range(k):
            sents = [s if rng.random() < 0.6 else rng.choice(sentences) for s in base]
            outs.append(" ".join(" ".join(sents).split()[:words]))
        if rng.random() < 0.1:
            outs[1] = outs[0]
        groups.append(outs)
    return groups


def _median_time(fn, reps: int) -> tuple[float, float]:
    """Median wall and CPU seconds (CPU time is the steadier figure on a shared machine)."""
    wall, cpu = [], []
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _package_module(name: str):
    try:
        dist = importlib.metadata.distribution("diversity")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(f"diversity/{name}.py")))
    spec = importlib.util.spec_from_file_location(f"_diversity_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n_prompts", type=int, default=500)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--words", type=int, default=150)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--package_prompts", type=int, default=10)
    ap.add_argument("--data_dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()

    groups = prose_groups(args.n_prompts, args.k, args.words, args.data_dir)
    n_words = sum(len(t.split()) for g in groups for t in g) / (args.n_prompts * args.k)
    print(f"{platform.processor() or platform.machine()} | {args.n_prompts} prompts x {args.k} outputs, "
          f"{n_words:.0f} words per output, reps {args.reps}")  # fmt: skip

    def each(fn):
        return lambda: [fn(g) for g in groups]

    lexical, settings = lx.LEXICAL_MEASURES, DiversitySettings()
    measures = {
        "compression_ratio": each(lx.compression_ratio),
        "compression_ratio (compat)": each(lambda g: lx.compression_ratio(g, mode="compat")),
        "ngram_diversity": each(lx.ngram_diversity_score),
        "ngram_diversity (compat)": each(lambda g: lx.ngram_diversity_score(g, mode="compat")),
        "self_repetition": each(lx.self_repetition_score),
        "homogenization_rougel (batched LCS)": lambda: lx.homogenization_rouge_l_groups(groups),
        "homogenization_rougel (compat)": lambda: lx.homogenization_rouge_l_groups(groups, mode="compat"),
        **{f"distinct_{n}": each(lambda g, n=n: lx.distinct_n(g, n)) for n in lx.DISTINCT_ORDERS},
        "self_bleu": each(lx.self_bleu),
        "all (the catalogue's lexical records)": lambda: [catalogue.record(m).fn(groups, settings) for m in lexical],
    }
    [catalogue.record(m).fn(groups[:2], settings) for m in lexical]  # imports (rouge-score, sacrebleu) untimed
    for name, fn in measures.items():
        wall, cpu = _median_time(fn, args.reps)
        print(f"  {name:42s} wall {wall:8.2f} s   cpu {cpu:8.2f} s")

    sub = groups[: args.package_prompts]
    scale = args.n_prompts / len(sub)
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

    def per_pair() -> None:
        for g in sub:
            for i in range(len(g)):
                for j in range(i + 1, len(g)):
                    scorer.score(g[i], g[j])

    wall, cpu = _median_time(per_pair, 1)
    print(f"  {'rouge-score, one call per pair (scaled)':42s} wall {wall * scale:8.2f} s   cpu {cpu * scale:8.2f} s")
    homog = _package_module("homogenization")
    if homog is not None:
        comp, ngram, rep = (_package_module(n) for n in ("compression", "ngram_diversity", "self_repetition"))
        package = {
            "compression_ratio": lambda g: comp.compression_ratio(g),
            "ngram_diversity_score": lambda g: ngram.ngram_diversity_score(g, 4),
            "self_repetition_score": lambda g: rep.self_repetition_score(g, verbose=False),
            "homogenization_score rougel": lambda g: homog.homogenization_score(g, verbose=False),
        }
        for name, fn in package.items():
            wall, cpu = _median_time(lambda fn=fn: [fn(g) for g in sub], 1)
            print(f"  {'package ' + name + ' (scaled)':42s} wall {wall * scale:8.2f} s   cpu {cpu * scale:8.2f} s")


if __name__ == "__main__":
    main()
