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
import signal
import sys

from lm_eval_diversity.atomic import check_output_path, write_atomic
from lm_eval_diversity.settings import (
    COMMAND_DEFAULTS,
    DiversitySettings,
    field_help,
    public_name,
    resolve_settings,
    score_fields,
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
    for field in score_fields():
        # score reads flags only (no LM_EVAL_DIVERSITY_* variables): its help names none
        group.add_argument(
            f"--{public_name(field)}", dest=field, default=None, metavar="VALUE", help=field_help(field, env=False)
        )
    p.add_argument(
        "--confirm_run_unsafe_code",
        action="store_true",
        help="allow running model-generated code (sandboxed) to grade the code tasks, as lm-eval asks",
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


def settings_from_args(args: argparse.Namespace, base: DiversitySettings = COMMAND_DEFAULTS) -> DiversitySettings:
    """The flags given, over ``base`` (the defaults, or what the run recorded)."""
    given = {public_name(f): getattr(args, f) for f in score_fields() if getattr(args, f, None) is not None}
    # flags name the setting as the user typed it in errors
    try:
        return resolve_settings(given, base, environ={})[0]
    except ValueError as exc:
        raise ValueError(re.sub(r"--(\w+) / --metadata \1", r"--\1", str(exc))) from None


# settings of where and how scoring runs, not of what a number means: never taken from the run
_MACHINE_FIELDS = frozenset({"device", "batch_size", "baseline"})


def recorded_settings(files: dict, given: frozenset[str] = frozenset()) -> tuple[dict, list[str]]:
    """The diversity settings the run recorded for these samples (``configs.<task>.metadata.diversity_settings`` of
    the results JSON lm-eval wrote beside each samples file), less :data:`_MACHINE_FIELDS`, and notes for the user.

    Tasks that recorded different values of a setting not ``given`` as a flag are an error naming it: one score
    output has one settings.
    """
    from lm_eval_diversity.runs import recorded_run

    notes: list[str] = []
    merged: dict = {}
    origin: dict[str, str] = {}
    for task, sf in files.items():
        found = recorded_run(sf.path, task)
        recorded = (found[1].get("metadata") or {}).get("diversity_settings") if found else None
        if not isinstance(recorded, dict):
            notes.append(f"{task}: no recorded settings (no results JSON with this task beside {sf.path.name}); "
                         "defaults and flags apply")  # fmt: skip
            continue
        path, config = found
        k = max((len(g.outputs) for g in sf.groups), default=0)
        if config.get("repeats") not in (None, k):
            notes.append(f"{task}: the run recorded repeats={config['repeats']}, its samples hold K={k} responses "
                         "per prompt; scored with those")  # fmt: skip
        for field, value in recorded.items():
            if field in _MACHINE_FIELDS or field not in settings_fields():
                continue
            if field in merged and merged[field] != value and field not in given:
                raise ValueError(
                    f"the runs recorded different {public_name(field)}: {merged[field]!r} ({origin[field]}) and "
                    f"{value!r} ({path}); score them separately, or choose with --{public_name(field)}"
                )
            merged[field], origin[field] = value, str(path)
    if origin:
        notes.append(f"settings as the run recorded them ({', '.join(sorted(set(origin.values())))})")
    return merged, notes


def score_settings(args: argparse.Namespace, files: dict) -> tuple[DiversitySettings, list[str]]:
    """What the run recorded, the flags given overriding it (each override noted)."""
    given = frozenset(f for f in score_fields() if getattr(args, f, None) is not None)
    recorded, notes = recorded_settings(files, given)
    try:
        as_recorded = DiversitySettings.from_dict(recorded)
        base = COMMAND_DEFAULTS.replace(**{f: getattr(as_recorded, f) for f in recorded})
    except ValueError as exc:
        raise ValueError(f"the run's recorded settings: {exc}; override with the flag") from None
    settings = settings_from_args(args, base)
    for f in sorted(given & set(recorded)):
        if getattr(settings, f) != getattr(base, f):
            notes.append(f"--{public_name(f)} {getattr(settings, f)!r} overrides the run's {getattr(base, f)!r}")
    return settings, notes


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
    from lm_eval_diversity.preflight import check_tasks_before_generation
    from lm_eval_diversity.samples import read_samples
    from lm_eval_diversity.scoring import load_models, score_task, task_scores_to_json

    args = build_score_parser().parse_args(_undeprecate(argv, "lm-eval-diversity score"))
    files = read_samples(args.paths)
    settings, notes = score_settings(args, files)
    for note in notes:
        print(f"lm-eval-diversity score: {note}", file=sys.stderr)
    out = None
    if args.output_path is not None:
        out = check_output_path(args.output_path, [sf.path for sf in files.values()], "--output_path")
    flags = {field: f"--{public_name(field)}" for field in settings_fields()}  # errors name the flag as typed
    check_tasks_before_generation(files, settings, flags, code_execution=args.confirm_run_unsafe_code)
    models = load_models(settings)
    if args.estimate:
        from lm_eval_diversity.estimate import estimate_samples

        print(estimate_samples({task: sf.groups for task, sf in files.items()}, settings, models))
        return {"settings": settings.to_dict(), "estimate": True}
    result: dict = {"settings": settings.to_dict(), "settings_notes": notes, "tasks": {}}
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` runs: running sandboxes are killed and their scratch
    space removed before the process exits."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated(signum)


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
        previous = signal.signal(signal.SIGTERM, _raise_terminated)  # clean up (sandboxes, scratch) as on Ctrl-C
        try:
            run_score(argv[1:])
        except KeyboardInterrupt as exc:
            what = "terminated" if isinstance(exc, Terminated) else "interrupted"
            print(f"lm-eval-diversity {argv[0]}: {what}; no output written", file=sys.stderr)
            return 128 + exc.signum if isinstance(exc, Terminated) else 130
        except (ValueError, OSError, RuntimeError) as exc:
            print(f"lm-eval-diversity {argv[0]}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        finally:
            signal.signal(signal.SIGTERM, previous)
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
