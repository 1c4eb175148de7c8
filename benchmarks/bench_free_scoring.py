"""Benchmark: the model-free metrics beyond the paper's four as scoring runs them (``score_groups``, one batched pass
per input kind), on a whole task of prompts x K outputs (CPU, no model).

Lexical (``texts`` kind, the nine measures, per input; then with their corpus levels) on the prose groups of
``bench_lexical.py``; AST (``code`` kind) on MBPP reference solutions from ``--data_dir`` with K variants each (the
solution with a comment or a renamed variable: distinct texts, every one parsed).

    python benchmarks/bench_free_scoring.py --n_prompts 500 --k 16 --words 150
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.scoring import PromptGroup, score_groups
from lm_eval_diversity.settings import DiversitySettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lexical import _median_time, prose_groups  # noqa: E402


def code_groups(n_prompts: int, k: int, data_dir: Path) -> list[list[str]]:
    with open(data_dir / "mbpp/test.jsonl", encoding="utf-8") as f:
        codes = [json.loads(line)["code"] for line in f if line.strip()]
    return [[f"```python\n{codes[p % len(codes)]}\n# variant {j}\n```" for j in range(k)] for p in range(n_prompts)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n_prompts", type=int, default=500)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--words", type=int, default=150)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--data_dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    lexical = catalogue.metric_names("texts", selectable=True)[1:]  # without ead
    prose = [PromptGroup(i, outs) for i, outs in enumerate(prose_groups(args.n_prompts, args.k, args.words,
                                                                        args.data_dir))]  # fmt: skip
    code = [PromptGroup(i, outs) for i, outs in enumerate(code_groups(args.n_prompts, args.k, args.data_dir))]
    corpus = tuple(m for m in lexical if m in catalogue.corpus_metrics())
    runs = {
        "lexical, per input (default)": (prose, DiversitySettings(metrics=lexical, corpus_metrics=())),
        "lexical, with corpus levels": (prose, DiversitySettings(metrics=lexical, corpus_metrics=corpus)),
        "AST (code kind), per input": (code, DiversitySettings(metrics=("ast_distinct", "ast_pairwise",
                                                                       "parseability_rate"), corpus_metrics=())),
    }  # fmt: skip
    for name, (groups, settings) in runs.items():
        task = "diversity_mbpp" if "AST" in name else None
        wall, cpu = _median_time(lambda g=groups, s=settings, t=task: score_groups(g, s, task_name=t), args.reps)
        print(f"| {name} ({args.n_prompts} x {args.k}) | {cpu:.2f} | {wall:.2f} |")


if __name__ == "__main__":
    main()
