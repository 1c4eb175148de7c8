"""The self-contained HTML page of a ``compare`` report (docs/report.md).

The page is ``page_assets/report.html`` (a :class:`string.Template`) with ``report.css`` and ``report.js`` inlined and
these parts filled in, top to bottom: the headline (each candidate's change of the task average, per metric), the
runs, the leaderboard (one table per metric: runs as rows, tasks grouped by the paper's categories as columns,
coloured by the change against the baseline), the figures (inline SVG from :mod:`~lm_eval_diversity.compare.plot`),
the sample viewer (its data as JSON that ``report.js`` shows), the comparability notes and the detail tables.

Nothing is fetched: the page's Content-Security-Policy allows no request at all, and model outputs enter the page
only as JSON that the script writes with ``textContent`` (never as markup), so an output cannot add an element.
"""

from __future__ import annotations

import html
import json
import math
from importlib import resources
from string import Template
from typing import Any

from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.compare.model import Cell, Report
from lm_eval_diversity.compare.names import GROUP, metric_higher_is_better, task_groups
from lm_eval_diversity.compare.render import (
    GROUP_LABEL,
    Table,
    candidates,
    ci_excludes_zero,
    comparability_table,
    fmt,
    fmt_ci,
    fmt_pct,
    gate_table,
    runs_table,
    split_table,
    undefined,
)

FULL_SCALE_PCT = 50.0  # a relative change this large (or larger) gets the strongest colour
WORSE_RGB, BETTER_RGB = (192, 57, 43), (33, 102, 172)  # the colour scale's ends (plot.py uses the same)


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _asset(name: str) -> str:
    return resources.files("lm_eval_diversity.compare").joinpath("page_assets", name).read_text(encoding="utf-8")


def _metric_note(metric: str) -> str:
    from lm_eval_diversity.catalogue.metrics import record

    try:
        desc = record(metric).description
    except KeyError:
        desc = "a metric the catalogue does not describe"
    return f"{metric}: {desc}; {'higher' if metric_higher_is_better(metric) else 'lower'} is better"


def change_colour(change_pct: float, higher_is_better: bool) -> str | None:
    """The background of a cell with this relative change: red for a loss, blue for a gain, stronger as the change
    grows (full at :data:`FULL_SCALE_PCT` percent); None for no change or an undefined one."""
    if undefined(change_pct) or change_pct == 0:
        return None
    worse = (change_pct < 0) == higher_is_better
    r, g, b = WORSE_RGB if worse else BETTER_RGB
    strength = min(abs(change_pct), FULL_SCALE_PCT) / FULL_SCALE_PCT
    return f"rgba({r},{g},{b},{0.10 + 0.55 * strength:.2f})"


# ---------------------------------------------------------------- parts of the page


def _cell_title(c: Cell, alpha: float) -> str:
    lines = [f"{c.run} · {GROUP_LABEL if c.task == GROUP else short_name(c.task)} · {c.metric}: {fmt(c.value)}"]
    ci = fmt_ci(c.ci_low, c.ci_high)
    lines.append(f"{100 * (1 - alpha):.0f}% CI {ci} over {c.n} prompts" if ci else f"no CI: {c.ci_note or 'n/a'}")
    if c.change is not None:
        ch = c.change
        lines.append(f"change vs baseline {fmt(ch.baseline_value)}: {fmt(ch.diff)} ({fmt_pct(ch.change_pct)})")
        lines.append(f"CI of the change {fmt_ci(ch.diff_low, ch.diff_high) or 'none'} ({ch.diff_method})")
    return "\n".join(lines)


def _board_cell(c: Cell | None, up: bool, alpha: float) -> str:
    """A leaderboard cell: the value (``data-v`` sorts it), the change and its mark, coloured by the change."""
    if c is None or undefined(c.value):
        return '<td class="num na" data-v="">n/a</td>'
    style, extra = "", ""
    if c.change is not None:
        colour = change_colour(c.change.change_pct, up)
        style = f' style="background:{colour}"' if colour else ""
        mark = '<span class="sig" aria-label="CI excludes 0">*</span>' if ci_excludes_zero(c) else ""
        extra = f'<span class="chg">{_esc(fmt_pct(c.change.change_pct))}{mark}</span>'
    return (
        f'<td class="num" data-v="{float(c.value)!r}"{style} title="{_esc(_cell_title(c, alpha))}">'
        f"{_esc(fmt(c.value, 3))}{extra}</td>"
    )


def leaderboard(report: Report, metric: str, shown: bool) -> str:
    """One metric's leaderboard: runs as rows; the task average, then the tasks under their category."""
    cells = {(c.run, c.task): c for c in report.cells if c.metric == metric}
    groups = [
        (cat, [t for t in ts if any((r.label, t) in cells for r in report.runs)])
        for cat, ts in task_groups(report.tasks)
    ]
    groups = [(cat, ts) for cat, ts in groups if ts]
    cols = [GROUP, *[t for _, ts in groups for t in ts]]
    up = metric_higher_is_better(metric)
    top = [
        '<th rowspan="2" class="sortable" data-col="0" scope="col">run</th>',
        f'<th rowspan="2" class="sortable num" data-col="1" scope="col">{_esc(GROUP)}<br><small>mean of tasks'
        "</small></th>",
    ]
    top += [f'<th colspan="{len(ts)}" class="cat" scope="colgroup">{_esc(cat)}</th>' for cat, ts in groups]
    sub = [
        f'<th class="sortable num" data-col="{i}" scope="col">{_esc(short_name(t))}</th>'
        for i, t in enumerate(cols[1:], start=2)
    ]
    body = []
    for r in report.runs:
        tag = ' <span class="tag">baseline</span>' if r.label == report.baseline else ""
        tds = "".join(_board_cell(cells.get((r.label, t)), up, report.bootstrap.alpha) for t in cols)
        body.append(
            f'<tr data-run="{_esc(r.label)}"><th scope="row" data-v="{_esc(r.label)}">{_esc(r.label)}{tag}'
            f"</th>{tds}</tr>"
        )
    hidden = "" if shown else " hidden"
    return (
        f'<div class="board-wrap" data-metric="{_esc(metric)}"{hidden}>'
        f'<p class="note">{_esc(_metric_note(metric))}</p>'
        f'<table class="board" data-metric="{_esc(metric)}"><thead><tr>{"".join(top)}</tr><tr>{"".join(sub)}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _leaderboards(report: Report) -> str:
    metrics = [m for m in report.metrics if any(c.metric == m for c in report.cells)]
    if not metrics:
        return '<p class="note">No metric has a value in these runs.</p>'
    tabs = "".join(
        f'<button type="button" class="metric-tab" data-metric="{_esc(m)}" aria-pressed="{str(i == 0).lower()}">'
        f"{_esc(m)}</button>"
        for i, m in enumerate(metrics)
    )
    boards = "".join(leaderboard(report, m, i == 0) for i, m in enumerate(metrics))
    ci = f"{100 * (1 - report.bootstrap.alpha):.0f}%"
    legend = (
        f"Click a column to sort. Each cell: the value, and for a run compared with the baseline its change; the "
        f"colour is the change (red: worse than the baseline, blue: better; full colour at ±{FULL_SCALE_PCT:.0f}%); "
        f"* = the {ci} CI of the paired difference (bootstrap over prompts) excludes 0. Hover a cell for its CI."
        if report.baseline
        else "Click a column to sort. No baseline was given (--baseline), so there are no changes to colour."
    )
    return (
        f'<div class="tabs" role="group" aria-label="metric">{tabs}</div>{boards}'
        f'<p class="note legend"><span class="swatch worse"></span><span class="swatch better"></span>{_esc(legend)}'
        "</p>"
    )


def headline(report: Report) -> str:
    """Each candidate's change of the task average per metric, the first thing on the page."""
    if not report.baseline:
        return (
            '<p class="headline-none">No baseline: the runs are listed side by side. Give <code>--baseline RUN</code> '
            "to see each run's change, its confidence interval and the QC/residual split.</p>"
        )
    cards = []
    for run in candidates(report):
        items = []
        for m in report.metrics:
            c = report.cell(run, GROUP, m)
            if c is None or c.change is None or undefined(c.change.diff):
                continue
            up = metric_higher_is_better(m)
            colour = change_colour(c.change.change_pct, up)
            style = f' style="background:{colour}"' if colour else ""
            mark = " *" if ci_excludes_zero(c) else ""
            ci = fmt_ci(c.change.diff_low, c.change.diff_high) or "no CI"
            change = f"{fmt_pct(c.change.change_pct)}{mark}"
            values = f"{fmt(c.change.baseline_value, 3)} → {fmt(c.value, 3)}, Δ CI {ci}"
            items.append(f"<li{style}><b>{_esc(m)}</b> {_esc(change)}<small>{_esc(values)}</small></li>")
        gates = [g for g in report.gate if g.run == run]
        verdict = ""
        if gates:
            failed = [g for g in gates if g.failed]
            verdict = (
                f'<p class="gate {"fail" if failed else "pass"}">gate: '
                f"{'FAIL (' + ', '.join(_esc(g.spec) for g in failed) + ')' if failed else 'pass'}</p>"
            )
        cards.append(
            f'<div class="card"><h3>{_esc(run)} <small>vs {_esc(report.baseline)} (baseline), mean over '
            f"{len(report.tasks)} tasks</small></h3><ul>{''.join(items)}</ul>{verdict}</div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def html_table(t: Table) -> str:
    """A :class:`~lm_eval_diversity.compare.render.Table` as HTML (the detail tables)."""
    parts = [f"<h3>{_esc(t.title)}</h3>"] if t.title else []
    if t.rows:
        parts.append(
            '<div class="scroll"><table class="plain"><thead><tr>'
            + "".join(f"<th>{_esc(h)}</th>" for h in t.header)
            + "</tr></thead><tbody>"
        )
        for r in t.rows:
            parts.append(
                "<tr>" + "".join(f"<td{' class=fail' if c == 'FAIL' else ''}>{_esc(c)}</td>" for c in r) + "</tr>"
            )
        parts.append("</tbody></table></div>")
    return "".join(parts) + "".join(f'<p class="note">{_esc(n)}</p>' for n in t.notes)


def comparability(report: Report) -> str:
    """The settings in which runs differ from the reference, and the report's notes."""
    intro = (
        f"<p>These runs differ from <b>{_esc(report.reference)}</b> (the reference) in the settings below. A "
        "difference you did not intend makes the comparison unfair; <code>--strict</code> refuses such runs.</p>"
        if report.checks
        else ""
    )
    return intro + html_table(comparability_table(report)._replace(title=""))


def _json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: NaN as null, and ``<`` escaped so that no output can
    close the element."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    text = json.dumps(clean(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _figures(figures: list | None) -> str:
    if figures is None:
        return '<p class="note">Figures need matplotlib: <code>pip install "lm-eval-diversity[plot]"</code>.</p>'
    return "".join(
        f"<figure><h3>{_esc(f.title)}</h3>{f.svg}<figcaption>{_esc(f.caption)}</figcaption></figure>" for f in figures
    )


def _viewer(viewer) -> tuple[str, str]:
    if viewer is None or not any(t.prompts for t in viewer.tasks):
        why = "no samples files were found (run lm_eval with --log_samples)" if viewer else "turned off"
        return f'<p class="note">The sample viewer is empty: {_esc(why)}.</p>', "null"
    intro = (
        f"Pick a task and a prompt to see each run's outputs side by side: CoT-stripped as the metrics saw them, an "
        f"output identical to an earlier one marked as a duplicate, ✓/✗ where the task is graded. Up to "
        f"{viewer.per_task} prompts per task, {viewer.order}."
    )
    controls = (
        '<div class="controls"><label>Task <select id="viewer-task"></select></label> '
        '<label>Prompt <select id="viewer-prompt"></select></label></div>'
        '<p class="note" id="viewer-notes"></p><div id="viewer-prompt-text" class="prompt"></div>'
        '<div id="viewer-runs" class="runs"></div>'
    )
    return f'<p class="note">{_esc(intro)}</p>{controls}', _json_for_script(viewer.to_dict())


def render_page(report: Report, figures: list | None, viewer) -> str:
    """The whole page (``figures``: :class:`~lm_eval_diversity.compare.plot.PageFigure` list, None without
    matplotlib; ``viewer``: :class:`~lm_eval_diversity.compare.viewer.Viewer` or None)."""
    viewer_html, viewer_json = _viewer(viewer)
    runs_line = ", ".join(r.label + (" (baseline)" if r.label == report.baseline else "") for r in report.runs)
    return Template(_asset("report.html")).substitute(
        css=_asset("report.css"),
        script=_asset("report.js"),
        summary=_esc(f"{len(report.runs)} runs ({runs_line}) on {len(report.tasks)} tasks"),
        headline=headline(report),
        gate=html_table(gate_table(report)) if report.gate else "",
        runs=html_table(runs_table(report)._replace(title="")),
        leaderboard=_leaderboards(report),
        figures=_figures(figures),
        viewer=viewer_html,
        viewer_json=viewer_json,
        comparability=comparability(report),
        details=html_table(split_table(report)) if report.splits else "",
    )
