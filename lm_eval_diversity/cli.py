"""``lm-eval-diversity``: lm-eval's own CLI with our tasks loaded, plus ``score``, ``compare``, ``sweep`` and ``demo``.

``lm-eval-diversity score PATH...`` scores lm-eval samples files after the fact. Any other invocation is handed to
lm-eval's CLI unchanged (``run``, ``ls``, ``validate`` and the legacy flag form) with our task directory added.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from lm_eval_diversity.settings import DiversitySettings, parse_metric_list

OWN_COMMANDS = ("score", "compare", "demo", "sweep")


def _add_metric_settings(p: argparse.ArgumentParser) -> None:
    d = DiversitySettings()
    p.add_argument("--metrics", default=",".join(d.metrics), help="comma list of ead,sbert,vendi,nli")
    p.add_argument(
        "--corpus_metrics",
        default="ead,sbert,vendi",
        help="metrics also computed at the across-input and overall levels (nli there costs ~4x per-input)",
    )
    p.add_argument("--sbert_model", default=d.sbert_model, help="sentence-transformers model name or local path")
    p.add_argument("--nli_model", default=d.nli_model, help="NLI sequence-classification model name or local path")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:0 ... (default: cuda when available)")
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default=d.dtype,
        help="precision of the SBERT/NLI models (bf16/fp16 on GPU; see docs/performance.md)",
    )
    p.add_argument("--batch_size", type=int, default=d.batch_size, help="texts / sentence pairs per forward pass")
    p.add_argument("--vocab_size", type=int, default=d.vocab_size, help="EAD vocabulary size V (default GPT-2's)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the corpus subsets and NLI sentence sampling")
    p.add_argument(
        "--math_mode", choices=("math", "compat"), default=d.math_mode, help="math grader (compat: as the paper)"
    )
    p.add_argument(
        "--ifeval_mode",
        choices=("official", "compat"),
        default=d.ifeval_mode,
        help="IFEval grader (compat: as the paper)",
    )
    p.add_argument("--code_timeout", type=float, default=d.code_timeout_s, help="seconds per program (code tasks)")
    p.add_argument(
        "--confirm_run_unsafe_code",
        action="store_true",
        help="allow running model-generated code (sandboxed) to grade humaneval/mbpp, as lm-eval asks",
    )


def settings_from_args(args: argparse.Namespace) -> DiversitySettings:
    return DiversitySettings(
        metrics=parse_metric_list(args.metrics, "--metrics"),
        corpus_metrics=parse_metric_list(args.corpus_metrics, "--corpus_metrics"),
        sbert_model=args.sbert_model,
        nli_model=args.nli_model,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        vocab_size=args.vocab_size,
        seed=args.seed,
        math_mode=args.math_mode,
        ifeval_mode=args.ifeval_mode,
        code_timeout_s=args.code_timeout,
    )


def build_score_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lm-eval-diversity score",
        description="Score lm-eval samples files (--log_samples output): diversity of the K responses per prompt.",
    )
    p.add_argument("paths", nargs="+", help="samples_<task>_<timestamp>.jsonl files or directories (recursive)")
    p.add_argument("--output_path", default=None, help="write the results JSON to this file")
    _add_metric_settings(p)
    return p


def format_table(result: dict) -> str:
    """A plain-text table: one row per task x metric, the four levels as columns."""
    head = ("task", "metric", "per_input_mean", "per_input_std", "across_input", "overall")
    rows = [head]
    for task, entry in result["tasks"].items():
        for metric, levels in entry["metrics"].items():
            rows.append((task, metric, *(_fmt(levels.get(c)) for c in head[2:])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.4f}"


def run_score(argv: list[str]) -> dict:
    """The ``score`` subcommand; returns the results dict it writes."""
    from lm_eval_diversity.samples import read_samples
    from lm_eval_diversity.scoring import load_models, score_task, task_scores_to_json

    args = build_score_parser().parse_args(argv)
    settings = settings_from_args(args)
    files = read_samples(args.paths)
    models = load_models(settings)
    result: dict = {"settings": settings.to_dict(), "tasks": {}}
    for task, sf in files.items():
        logging.getLogger(__name__).info("scoring %s (%d prompts) from %s", task, len(sf.groups), sf.path)
        scores = score_task(
            task, sf.groups, settings, models, allow_code_execution=args.confirm_run_unsafe_code, progress=True
        )
        entry = task_scores_to_json(scores)
        entry["source"] = str(sf.path)
        result["tasks"][task] = entry
    if args.output_path:
        out = Path(args.output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(format_table(result))
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        from lm_eval_diversity.compare import run_compare

        return run_compare(argv[1:])
    if argv and argv[0] == "sweep":
        from lm_eval_diversity.sweep import run_sweep_cli

        return run_sweep_cli(argv[1:])
    if argv and argv[0] == "demo":
        from lm_eval_diversity.demo import run_demo

        return run_demo(argv[1:])
    if argv and argv[0] == "score":
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        try:
            run_score(argv[1:])
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            print(f"lm-eval-diversity {argv[0]}: error: {exc}", file=sys.stderr)
            return 2
        return 0
    from lm_eval_diversity.harness import run_lm_eval_cli

    return run_lm_eval_cli(argv)


if __name__ == "__main__":
    sys.exit(main())
