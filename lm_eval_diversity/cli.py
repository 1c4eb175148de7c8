"""``lm-eval-diversity``: lm-eval's own CLI with our tasks loaded, plus ``score``, ``judge``, ``compare``, ``sweep``
and ``demo``.

``lm-eval-diversity score PATH...`` scores lm-eval samples files after the fact. Any other invocation is handed to
lm-eval's CLI unchanged (``run``, ``ls``, ``validate`` and the legacy flag form) with our task directory added.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys

from lm_eval_diversity.atomic import check_output_path, write_atomic
from lm_eval_diversity.settings import (
    COMMAND_DEFAULTS,
    DiversitySettings,
    field_help,
    public_name,
    resolve_settings,
    settings_fields,
)

# our subcommands (next to lm-eval's run, ls, validate), with their one-line help
OWN_COMMANDS = {
    "score": "score lm-eval samples files (--log_samples output) after the run",
    "judge": "judge logged outputs with an LLM (the paper's protocols) through an OpenAI-compatible endpoint",
    "compare": "compare runs: leaderboard, change vs a baseline, QC/residual split, CI gate, lineage plot",
    "demo": "offline demo: a small model through lm-eval, scored, with an HTML report",
    "sweep": "run a checkpoint x task sweep on Ray (sharded, resumable), then the compare report",
}


# spellings of `score` flags before they were unified with `run` (still accepted, with a deprecation message)
DEPRECATED_FLAGS = {
    "--metrics": "--diversity_metrics",
    "--device": "--metric_device",
    "--batch_size": "--metric_batch_size",
    "--seed": "--diversity_seed",
    "--code_timeout": "--code_timeout_s",
}


def _add_metric_settings(p: argparse.ArgumentParser) -> None:
    """One flag per settings field, named as in ``run`` and ``--metadata`` (docs/settings.md)."""
    group = p.add_argument_group("diversity settings (the same flags as `lm-eval-diversity run`)")
    for field in settings_fields():
        if field == "baseline":
            continue  # the split against a baseline is `compare --baseline`
        group.add_argument(f"--{public_name(field)}", dest=field, default=None, metavar="VALUE", help=field_help(field))
    p.add_argument(
        "--confirm_run_unsafe_code",
        action="store_true",
        help="allow running model-generated code (sandboxed) to grade humaneval/mbpp, as lm-eval asks",
    )


def _undeprecate(argv: list[str], prog: str) -> list[str]:
    """Rewrite old flag spellings to the current ones, saying so on stderr."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name in DEPRECATED_FLAGS:
            new = DEPRECATED_FLAGS[name]
            print(f"{prog}: {name} is deprecated; use {new}", file=sys.stderr)
            arg = f"{new}{eq}{value}"
        out.append(arg)
    return out


def settings_from_args(args: argparse.Namespace) -> DiversitySettings:
    given = {public_name(f): getattr(args, f) for f in settings_fields() if getattr(args, f, None) is not None}
    # flags name the setting as the user typed it in errors
    try:
        return resolve_settings(given, COMMAND_DEFAULTS, environ={})[0]
    except ValueError as exc:
        raise ValueError(re.sub(r"--(\w+) / --metadata \1", r"--\1", str(exc))) from None


def build_score_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lm-eval-diversity score",
        description="Score lm-eval samples files (--log_samples output): diversity of the K responses per prompt.",
    )
    p.add_argument("paths", nargs="+", help="samples_<task>_<timestamp>.jsonl files or directories (recursive)")
    p.add_argument("--output_path", default=None, help="write the results JSON to this file")
    p.add_argument(
        "--estimate",
        action="store_true",
        help="print the metric work (unique texts, NLI pairs per level) and a calibrated time, then stop",
    )
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

    args = build_score_parser().parse_args(_undeprecate(argv, "lm-eval-diversity score"))
    settings = settings_from_args(args)
    files = read_samples(args.paths)
    out = None
    if args.output_path:
        out = check_output_path(args.output_path, [sf.path for sf in files.values()], "--output_path")
    if settings.quality_model and settings.quality_reference:  # every task's calibration, before any scoring
        from lm_eval_diversity.quality.reward import reference_calibration

        for task in files:
            reference_calibration(settings.quality_reference, task, settings)
    models = load_models(settings)
    if args.estimate:
        from lm_eval_diversity.estimate import estimate_samples

        print(estimate_samples({task: sf.groups for task, sf in files.items()}, settings, models))
        return {"settings": settings.to_dict(), "estimate": True}
    result: dict = {"settings": settings.to_dict(), "tasks": {}}
    for task, sf in files.items():
        logging.getLogger(__name__).info("scoring %s (%d prompts) from %s", task, len(sf.groups), sf.path)
        scores = score_task(
            task, sf.groups, settings, models,
            allow_code_execution=args.confirm_run_unsafe_code, progress=True,
        )  # fmt: skip
        entry = task_scores_to_json(scores)
        entry["source"] = str(sf.path)
        result["tasks"][task] = entry
    if out is not None:
        write_atomic(out, json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(format_table(result))
    return result


def _one_line(exc: BaseException) -> str:
    """The error's message, with the file name for OS errors."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        from lm_eval_diversity.compare import run_compare

        return run_compare(argv[1:])
    if argv and argv[0] == "judge":
        from lm_eval_diversity.judge.cli import run_judge_cli

        return run_judge_cli(argv[1:])
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
        except KeyboardInterrupt:
            print(f"lm-eval-diversity {argv[0]}: interrupted; no output written", file=sys.stderr)
            return 130
        except (ValueError, OSError, RuntimeError) as exc:
            print(f"lm-eval-diversity {argv[0]}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        return 0
    if not argv or "-h" in argv or "--help" in argv:
        return _help(argv)
    from lm_eval_diversity.lm_eval_cli import run_lm_eval_cli

    return run_lm_eval_cli(argv, OWN_COMMANDS)


def _help(argv: list[str]) -> int:
    """Help of lm-eval's subcommands and ours, with our flags under ``run`` (built without the task glue)."""
    from lm_eval_diversity.lm_eval_cli import build_cli, parse_cli_args

    cli = build_cli(OWN_COMMANDS)
    try:
        if not argv:
            cli._parser.print_help()
            return 0
        parse_cli_args(cli, argv)  # prints the help and exits
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
