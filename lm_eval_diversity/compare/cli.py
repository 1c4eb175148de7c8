"""``lm-eval-diversity compare``: the command line over :func:`select`, :func:`build_report`, the gate and rendering.

Exit codes of :func:`run_compare`: 0 ok, 1 a ``--fail_if_drop`` gate failed, 2 bad input (docs/ci_gating.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from lm_eval_diversity.atomic import check_output_path, write_atomic
from lm_eval_diversity.compare.build import build_report
from lm_eval_diversity.compare.errors import CompareError
from lm_eval_diversity.compare.gate import evaluate_gates, parse_gate
from lm_eval_diversity.compare.model import Bootstrap, Lineage, Report
from lm_eval_diversity.compare.names import DEFAULT_METRICS
from lm_eval_diversity.compare.render import FORMATS, render, summary_lines
from lm_eval_diversity.compare.runs import Selection, select
from lm_eval_diversity.compare.viewer import MAX_VIEWER_PROMPTS, VIEWER_PROMPTS

MAX_BOOTSTRAP_ITERS = 100_000  # a bound on run time and memory (docs/ci_gating.md)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lm-eval-diversity compare",
        description="Compare diversity runs: leaderboard, change vs a baseline with bootstrap CIs, QC/residual split "
        "on verifiable tasks, comparability checks, lineage plots and a CI gate (exit 1 on a significant drop).",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="lm-eval output dir, results_*.json, or score JSON")
    p.add_argument(
        "--baseline",
        default=None,
        help="RUN path or label of the baseline (default: none; the gate uses the first run)",
    )
    p.add_argument(
        "--labels",
        default=None,
        help="comma list of labels for the positional RUNs (after expanding folders), in order",
    )
    p.add_argument("--tasks", default=None, help="comma list of tasks (with or without the diversity_ prefix)")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help="comma list of metrics (default %(default)s)")
    p.add_argument("--format", default="table", choices=FORMATS, help="report format")
    p.add_argument("--output", default=None, help="write the report here instead of stdout")
    p.add_argument("--lineage", default=None, help="YAML/JSON file of lineages (ordered stages label -> run path)")
    p.add_argument("--plot", default=None, help="PNG of diversity along each lineage (or along the RUNs in order)")
    p.add_argument(
        "--viewer_prompts",
        type=int,
        default=VIEWER_PROMPTS,
        help="html: prompts per task in the sample viewer, the largest diversity drop first (0: no viewer; "
        f"at most {MAX_VIEWER_PROMPTS}; default %(default)s)",
    )
    p.add_argument(
        "--fail_if_drop",
        action="append",
        default=[],
        metavar="METRIC=FRACTION",
        help="CI gate: exit 1 when METRIC (or TASK/METRIC) drops significantly by more than FRACTION; repeatable",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse (exit 2, naming them) runs that differ from the reference in K, sampling, task version, "
        "prompts/doc ids or metric settings, instead of only reporting the differences",
    )
    p.add_argument("--bootstrap_iters", type=int, default=2000, help="bootstrap resamples of the CIs (default 2000)")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level of the CIs (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return p


def _check_options(args: argparse.Namespace) -> list[str]:
    """The metrics asked for; bad ``--bootstrap_iters``, ``--alpha`` or ``--metrics`` raise."""
    if not 1 <= args.bootstrap_iters <= MAX_BOOTSTRAP_ITERS:
        raise CompareError(f"--bootstrap_iters {args.bootstrap_iters}: must be in [1, {MAX_BOOTSTRAP_ITERS}]")
    if not 0 < args.alpha < 1:
        raise CompareError("--alpha must be in (0, 1)")
    if not 0 <= args.seed < 2**32:
        raise CompareError(f"--seed {args.seed}: must be an integer in [0, 2**32 - 1]")
    if not 0 <= args.viewer_prompts <= MAX_VIEWER_PROMPTS:
        raise CompareError(f"--viewer_prompts {args.viewer_prompts}: must be in [0, {MAX_VIEWER_PROMPTS}]")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not metrics:
        raise CompareError(f"--metrics {args.metrics!r}: no metric given")
    gated = [parse_gate(spec).metric for spec in args.fail_if_drop or []]
    return list(dict.fromkeys([*metrics, *gated]))  # a gated metric is compared even when --metrics omits it


def _check_report(args: argparse.Namespace, report: Report, metrics: list[str]) -> None:
    """``--strict`` refuses runs that differ; metrics asked for by name must be found."""
    if args.strict and report.checks:
        raise CompareError(
            "--strict: the runs are not comparable: "
            + "; ".join(
                f"{c.run} vs {c.reference} {c.task}: {c.field} {c.reference_value!r} != {c.value!r}"
                for c in report.checks
            )
        )
    if args.metrics != ",".join(DEFAULT_METRICS):
        absent = [m for m in metrics if not any(c.metric == m for c in report.cells)]
        if absent:
            found_in = ", ".join(report.tasks)
            raise CompareError(f"--metrics: {', '.join(absent)} not found in any compared task ({found_in})")


def _inputs(args: argparse.Namespace, sel: Selection) -> list[str]:
    """Every file the report is read from (an output path must be none of them)."""
    inputs = [r.path for r in sel.runs] + [args.lineage or ""]
    return inputs + [p for r in sel.runs for td in r.tasks.values() for p in (td.source, td.samples_source) if p]


def _pictures(args: argparse.Namespace, sel: Selection, report: Report, metrics: list[str]) -> list | None:
    """Write ``--plot``; for the HTML page, its figures (None when matplotlib is missing: the page says so)."""
    figures = args.format == "html" and importlib.util.find_spec("matplotlib") is not None
    if not (args.plot or figures):
        return None
    import lm_eval_diversity.compare.plot as plot

    series = sel.lineages or [("runs", [(r.label, r) for r in sel.runs])]
    lineage = plot.lineage_figure(report, series, metrics, per_task=bool(args.tasks))
    if args.plot:
        plot.save_png(lineage, args.plot)
        report.plot = args.plot
    if not figures:
        plot.close(lineage)
        return None
    return plot.page_figures(report, lineage, metrics)


def _compare(args: argparse.Namespace) -> tuple[Report, str, bool]:
    """(report, rendered text, whether a gate failed); the report is written to ``--output`` when given."""
    metrics = _check_options(args)
    sel = select(args.runs, args.labels, args.lineage, args.baseline, args.tasks, gated=bool(args.fail_if_drop))
    inputs = _inputs(args, sel)
    out = check_output_path(args.output, inputs, "--output") if args.output is not None else None
    if args.plot is not None:
        check_output_path(args.plot, inputs, "--plot")
    boot = Bootstrap(iters=args.bootstrap_iters, seed=args.seed, alpha=args.alpha)
    report = build_report(sel.runs, sel.baseline, sel.tasks, metrics, boot, missing=sel.missing, notes=sel.notes)
    _check_report(args, report, metrics)
    failed = evaluate_gates(report, args.fail_if_drop, sel.baseline.label) if sel.baseline else False
    report.lineages = [Lineage(n, [(lbl, r.label) for lbl, r in st]) for n, st in sel.lineages]
    figures, viewer = _pictures(args, sel, report, metrics), None
    if args.format == "html" and args.viewer_prompts:
        from lm_eval_diversity.compare.viewer import build_viewer

        viewer = build_viewer(sel.runs, sel.baseline, sel.tasks, metrics, args.viewer_prompts)
    if args.format == "html":
        from lm_eval_diversity.compare.page import render_page

        text = render_page(report, figures, viewer)
    else:
        text = render(report, args.format)
    if out is not None:
        write_atomic(out, text)
    return report, text, failed


def run_compare(argv: list[str]) -> int:
    """The ``compare`` subcommand. Returns 0 (ok), 1 (a --fail_if_drop gate failed) or 2 (bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        report, text, failed = _compare(args)
    except KeyboardInterrupt:
        print("lm-eval-diversity compare: interrupted; no output written", file=sys.stderr)
        return 130
    except (ValueError, KeyError, OSError) as exc:  # CompareError and the runs' format errors are ValueErrors
        msg = f"{exc.filename}: {exc.strerror or exc}" if isinstance(exc, OSError) and exc.filename else str(exc)
        print(f"lm-eval-diversity compare: error: {msg}", file=sys.stderr)
        return 2
    if args.output:
        print(summary_lines(report), file=sys.stderr)
    else:
        print(text)
    for g in report.gate:
        if g.failed:
            print(
                f"GATE FAILED {g.spec}: {g.run} {g.task}/{g.metric} diff CI upper {g.diff_high:.4f} < "
                f"threshold {g.threshold:.4f} ({g.method})",
                file=sys.stderr,
            )
    return 1 if failed else 0
