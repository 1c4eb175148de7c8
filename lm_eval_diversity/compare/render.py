"""Rendering of a ``compare`` report: terminal table, Markdown, CSV, JSON and self-contained HTML.

Every table is built once (:func:`tables`, one function per table) and written by each format. NaN means undefined
and is shown as ``n/a`` (``null`` in JSON, empty in CSV), never as 0.

The writers are kept by hand rather than taken from pytablewriter (which lm-eval installs): its Markdown and
space-aligned writers pad every cell and change the separator row, so reports would no longer be byte-identical to
earlier ones, and its HTML writer needs a package (``dominate``) that lm-eval does not install.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from typing import Any, NamedTuple

from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.compare.model import Cell, Report, Split
from lm_eval_diversity.compare.names import GROUP

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


def leaderboard_columns(report: Report) -> list[tuple[str, str]]:
    """(task, metric) columns of the leaderboard: the group first, then each task; only those with a value."""
    have = {(c.task, c.metric) for c in report.cells}
    return [(t, m) for t in [GROUP, *report.tasks] for m in report.metrics if (t, m) in have]


def _leaderboard_entry(c: Cell | None) -> str:
    if c is None:
        return ""
    return fmt(c.value) + (f" ({fmt_pct(c.change.change_pct)})" if c.change else "")


def leaderboard_table(report: Report) -> Table:
    cols = leaderboard_columns(report)
    cells = {(c.run, c.task, c.metric): c for c in report.cells}
    rows = [[r.label, *[_leaderboard_entry(cells.get((r.label, t, m))) for t, m in cols]] for r in report.runs]
    note = "diversity = unweighted mean over the compared tasks where the metric is defined"
    note += " ; (x%) = change vs baseline" if report.baseline else ""
    return Table("Leaderboard", ["run", *[f"{short_name(t)}/{m}" for t, m in cols]], rows, [note])


def _detail_row(c: Cell) -> list[str]:
    ch = c.change
    ci = fmt_ci(c.ci_low, c.ci_high) or f"no CI: {c.ci_note or 'n/a'}"
    diff = f"{fmt(ch.diff)} {fmt_ci(ch.diff_low, ch.diff_high)} ({ch.diff_method})" if ch else ""
    change = fmt_pct(ch.change_pct) if ch else ""
    return [c.run, short_name(c.task), c.metric, fmt(c.value), ci, fmt(c.n), change, diff]


def details_table(report: Report) -> Table:
    cols = set(leaderboard_columns(report))
    rows = [_detail_row(c) for c in report.cells if c.task == GROUP or (c.task, c.metric) in cols]
    ci_head = f"{100 * (1 - report.bootstrap.alpha):.0f}% CI (bootstrap over prompts)"
    head = ["run", "task", "metric", "value", ci_head, "n", "change", "diff vs baseline [CI]"]
    return Table("Details", head, rows, [])


def comparability_table(report: Report) -> Table:
    head = ["task", "run", "setting", f"{report.reference} (reference)", "this run"]
    rows = [[short_name(c.task), c.run, c.field, str(c.reference_value), str(c.value)] for c in report.checks]
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
    out = [runs_table(report), leaderboard_table(report), details_table(report), comparability_table(report)]
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


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;white-space:nowrap}
th{background:#f0f0f0} tr:nth-child(even){background:#fafafa}
.note{color:#555;font-size:12px;margin:0.2em 0} .fail{color:#b00;font-weight:bold}
img{max-width:100%;border:1px solid #ddd}
"""


_FAIL_CLASS = ' class="fail"'


def _html_table(t: Table) -> list[str]:
    parts = [f"<h2>{html.escape(t.title)}</h2>"]
    if t.rows:
        parts.append(
            "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in t.header) + "</tr></thead><tbody>"
        )
        for r in t.rows:
            tds = [f"<td{_FAIL_CLASS if c == 'FAIL' else ''}>{html.escape(str(c))}</td>" for c in r]
            parts.append("<tr>" + "".join(tds) + "</tr>")
        parts.append("</tbody></table>")
    return parts + [f'<p class="note">{html.escape(n)}</p>' for n in t.notes]


def _html(report: Report, plot_png: bytes | None) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>lm-eval-diversity compare</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>lm-eval-diversity compare</h1>",
    ]
    for t in tables(report):
        parts += _html_table(t)
    if plot_png:
        b64 = base64.b64encode(plot_png).decode("ascii")
        parts.append("<h2>Lineages</h2>")
        parts.append(f'<img alt="diversity along lineages" src="data:image/png;base64,{b64}">')
    parts.append("</body></html>")
    return "\n".join(parts)


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


def render(report: Report, fmt_name: str, plot_png: bytes | None = None) -> str:
    """The report in one of ``table``, ``markdown``, ``csv`` (one row per run x task x metric), ``json``, ``html``."""
    if fmt_name == "json":
        return json.dumps(_jsonable(report.to_dict()), indent=2, allow_nan=False) + "\n"
    if fmt_name == "csv":
        return _csv(report)
    if fmt_name == "html":
        return _html(report, plot_png)
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
