"""Rendering of a ``compare`` report: terminal table, Markdown, CSV, JSON; the HTML page is
:mod:`~lm_eval_diversity.compare.page`.

Every table is built once (:func:`tables`, one function per table) and written by the text and Markdown writers
(the page reuses the detail tables). Tasks are rows and there is one leaderboard table per metric, so that a report
of 15 tasks stays readable in a terminal. NaN means undefined and is shown as ``n/a`` (``null`` in JSON, empty in
CSV), never as 0.

The writers are kept by hand rather than taken from pytablewriter (which lm-eval installs): its Markdown and
space-aligned writers pad every cell and change the separator row, and its HTML writer needs a package
(``dominate``) that lm-eval does not install.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, NamedTuple

from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.compare.model import Cell, Report, Split
from lm_eval_diversity.compare.names import GROUP, task_groups

CSV_FIELDS = (
    "run",
    "task",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "ci_note",
    "stderr",
    "baseline_value",
    "change_pct",
    "diff",
    "diff_low",
    "diff_high",
    "diff_method",
)
FORMATS = ("table", "markdown", "csv", "json", "html")
GROUP_LABEL = f"{GROUP} (mean)"  # the task-averaged row


class Table(NamedTuple):
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]


def undefined(v: Any) -> bool:
    """None or NaN: a value that is not defined."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt(v: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals; ``n/a`` for None/NaN."""
    if undefined(v):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_pct(v: Any) -> str:
    return "n/a" if undefined(v) else f"{v:+.1f}%"


def fmt_ci(lo: Any, hi: Any) -> str:
    return "" if undefined(lo) or undefined(hi) else f"[{lo:.4f}, {hi:.4f}]"


# ---------------------------------------------------------------- tables


def runs_table(report: Report) -> Table:
    rows = [
        [r.label, r.model_name, r.path, f"{len(r.per_prompt_tasks)}/{len(report.tasks)} tasks", "; ".join(r.notes)]
        for r in report.runs
    ]
    note = f"baseline: {report.baseline}" if report.baseline else "no baseline (use --baseline for changes)"
    return Table("Runs", ["label", "model", "path", "per-prompt values", "notes"], rows, [note])


def ci_excludes_zero(c: Cell) -> bool:
    """The change's CI lies wholly on one side of 0 (the report marks it ``*``)."""
    ch = c.change
    return ch is not None and not undefined(ch.diff_low) and not undefined(ch.diff_high) and (
        ch.diff_low > 0 or ch.diff_high < 0
    )


def metric_rows(report: Report, metric: str) -> list[tuple[str, str]]:
    """(task, category) rows of a metric's table: the group first, then the tasks by category; only rows with a
    value."""
    have = {c.task for c in report.cells if c.metric == metric}
    rows = [(GROUP, "")] if GROUP in have else []
    return rows + [(t, cat) for cat, ts in task_groups(report.tasks) for t in ts if t in have]


def candidates(report: Report) -> list[str]:
    """The runs compared against the baseline (none without a baseline)."""
    return [r.label for r in report.runs if report.baseline and r.label != report.baseline]


def _value_entry(c: Cell | None) -> str:
    if c is None:
        return ""
    ci = fmt_ci(c.ci_low, c.ci_high)
    return f"{fmt(c.value)} {ci}" if ci else fmt(c.value)


def _change_entry(c: Cell | None) -> str:
    if c is None or c.change is None:
        return ""
    ch = c.change
    ci = fmt_ci(ch.diff_low, ch.diff_high) or "(no CI)"
    mark = " *" if ci_excludes_zero(c) else ""
    return f"{ch.diff:+.4f} {ci} ({fmt_pct(ch.change_pct)}){mark}" if not undefined(ch.diff) else "n/a"


def metric_table(report: Report, metric: str) -> Table:
    """One metric: tasks as rows, each run's value [CI], then each candidate's change vs the baseline [CI]."""
    cells = {(c.run, c.task): c for c in report.cells if c.metric == metric}
    runs = [r.label for r in report.runs]
    cands = candidates(report)
    rows = []
    for task, category in metric_rows(report, metric):
        name = GROUP_LABEL if task == GROUP else short_name(task)
        ns = [cells[(r, task)].n for r in runs if (r, task) in cells and cells[(r, task)].n is not None]
        entries = [_value_entry(cells.get((r, task))) for r in runs]
        changes = [_change_entry(cells.get((r, task))) for r in cands]
        rows.append([name, category, fmt(ns[0]) if ns else "", *entries, *changes])
    ci = f"{100 * (1 - report.bootstrap.alpha):.0f}%"
    head = ["task", "category", "prompts", *runs, *[f"{r} - {report.baseline}" for r in cands]]
    notes = [f"value [{ci} CI, bootstrap over prompts]; {GROUP} = unweighted mean over the tasks where it is defined"]
    if cands:
        notes.append(
            f"change = run - baseline [{ci} CI: paired bootstrap over prompts, stratified by task for {GROUP}; a "
            "normal interval from lm-eval's stderrs where a run has no per-prompt values (docs/ci_gating.md)] "
            "(relative change); * = the CI excludes 0"
        )
    return Table(f"Leaderboard: {metric}", head, rows, notes)


def metric_tables(report: Report) -> list[Table]:
    """One table per metric with a value, in the report's metric order."""
    have = {c.metric for c in report.cells}
    return [metric_table(report, m) for m in report.metrics if m in have]


def comparability_table(report: Report) -> Table:
    """Every setting in which a run differs from the reference: one row per (run, setting, values), with the tasks
    it holds on (``all N`` when every compared task)."""
    groups: dict[tuple, list[str]] = {}
    for c in report.checks:
        groups.setdefault((c.run, c.field, str(c.reference_value), str(c.value)), []).append(c.task)
    head = ["run", "setting", f"{report.reference} (reference)", "this run", "tasks"]
    every = len(report.tasks)
    rows = [
        [*key, f"all {every}" if len(tasks) == every else ", ".join(map(short_name, tasks))]
        for key, tasks in groups.items()
    ]
    agree = "all checked settings agree (task hashes, doc ids, K, sampling, metric settings)"
    return Table("Comparability", head, rows, list(report.notes) + ([] if report.checks else [agree]))


SPLIT_HEAD = ["run", "task", "metric", "prompts", "D_all(B)", "D_all(M)", "D_corr(B)", "D_corr(M)", "loss", "QC"]
SPLIT_HEAD += ["residual", "QC share", "R share", "n (corr B/M)", "ids only B/M"]
SPLIT_NOTE = (
    "loss = D_all(B) - D_all(M); residual = D_corr(B) - D_corr(M); QC = loss - residual "
    "(a reconstruction: docs/decomposition.md). 'matched' = prompts computable in both runs. "
    "Shares are unstable when loss is small. 'metric (acceptable)': D_corr over the outputs the reward model "
    "accepts instead of the correct ones (docs/quality.md)."
)


def _split_row(s: Split) -> list[str]:
    metric = s.metric if s.subset == "correct" else f"{s.metric} ({s.subset})"
    lead = [s.run, short_name(s.task), metric, "matched" if s.matched else "all"]
    if s.status != "ok":
        return [*lead, f"unavailable: {s.reason}"] + [""] * 10
    v = s.values
    numbers = [
        fmt(v[k]) for k in ("d_all_base", "d_all_model", "d_corr_base", "d_corr_model", "loss", "qc", "residual")
    ]
    shares = [fmt(v["qc_share"], 2), fmt(v["residual_share"], 2)]
    counts = [f"{v['n_prompts']} ({v['n_corr_base']}/{v['n_corr_model']})"]
    return [*lead, *numbers, *shares, *counts, f"{len(v['ids_only_base'])}/{len(v['ids_only_model'])}"]


def split_table(report: Report) -> Table:
    return Table("QC / residual split (vs baseline)", SPLIT_HEAD, [_split_row(s) for s in report.splits], [SPLIT_NOTE])


def gate_table(report: Report) -> Table:
    head = ["spec", "run", "target", "baseline", "diff", "CI", "threshold", "method", "result"]
    rows = [
        [
            g.spec,
            g.run,
            f"{short_name(g.task)}/{g.metric}",
            fmt(g.baseline_value),
            fmt(g.diff),
            fmt_ci(g.diff_low, g.diff_high),
            fmt(g.threshold),
            g.method,
            "FAIL" if g.failed else "pass",
        ]
        for g in report.gate
    ]
    rule = (
        "FAIL iff the CI upper bound of (candidate - baseline) < -FRACTION x |baseline value| (lower-is-better "
        "metrics: the CI lower bound > FRACTION x |baseline value|)"
    )
    return Table("Gate (--fail_if_drop)", head, rows, [rule])


def tables(report: Report) -> list[Table]:
    """The report as titled tables (shared by the text, Markdown and HTML renderers)."""
    out = [runs_table(report), *metric_tables(report), comparability_table(report)]
    if report.splits:
        out.append(split_table(report))
    if report.gate:
        out.append(gate_table(report))
    return out


# ---------------------------------------------------------------- formats


def _text_table(t: Table) -> str:
    lines = [f"== {t.title} =="]
    if t.rows:
        widths = [max(len(str(r[i])) for r in [t.header, *t.rows]) for i in range(len(t.header))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(t.header, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in t.rows]
    lines += [f"note: {n}" for n in t.notes]
    return "\n".join(lines)


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|")


def _md_table(t: Table) -> str:
    lines = [f"## {t.title}", ""]
    if t.rows:
        lines.append("| " + " | ".join(_md_escape(h) for h in t.header) + " |")
        lines.append("|" + "---|" * len(t.header))
        lines += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in t.rows]
        lines.append("")
    lines += [f"*{_md_escape(n)}*  " for n in t.notes]
    return "\n".join(lines)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item"):  # numpy scalar
        return _jsonable(v.item())
    return v


def _csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for c in report.cells:
        d = c.to_dict()
        w.writerow({k: ("" if undefined(d.get(k)) else d.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


def render(report: Report, fmt_name: str) -> str:
    """The report in one of ``table``, ``markdown``, ``csv`` (one row per run x task x metric), ``json`` (the
    ``html`` page, built on these tables, is :func:`lm_eval_diversity.compare.page.render_page`)."""
    if fmt_name == "json":
        return json.dumps(_jsonable(report.to_dict()), indent=2, allow_nan=False) + "\n"
    if fmt_name == "csv":
        return _csv(report)
    if fmt_name == "markdown":
        return "# lm-eval-diversity compare\n\n" + "\n\n".join(_md_table(t) for t in tables(report)) + "\n"
    if fmt_name == "table":
        return "\n\n".join(_text_table(t) for t in tables(report)) + "\n"
    raise ValueError(f"unknown format {fmt_name!r}")


def summary_lines(report: Report) -> str:
    """A short stderr summary when the report goes to a file."""
    lines = [f"compared {len(report.runs)} run(s) on {len(report.tasks)} task(s)"]
    lines += [f"note: {n}" for n in report.notes]
    lines += [f"differs: {c.task} {c.run} {c.field}" for c in report.checks]
    return "\n".join(lines)
