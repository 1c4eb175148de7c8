"""Rendering of a ``compare`` report: terminal table, Markdown, CSV, JSON, self-contained HTML, and the lineage plot.

The report is the plain dict built by :func:`lm_eval_diversity.compare.build_report`; NaN means undefined and is
shown as ``n/a`` (``null`` in JSON, empty in CSV), never as 0.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from typing import Any

from lm_eval_diversity.atomic import write_atomic

Table = tuple[str, list[str], list[list[str]], list[str]]  # title, header, rows, notes

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


def _isnan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt(v: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals; ``n/a`` for None/NaN."""
    if _isnan(v):
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_pct(v: Any) -> str:
    return "n/a" if _isnan(v) else f"{v:+.1f}%"


def fmt_ci(lo: Any, hi: Any) -> str:
    return "" if _isnan(lo) or _isnan(hi) else f"[{lo:.4f}, {hi:.4f}]"


def _short(task: str) -> str:
    return task[len("diversity_") :] if task.startswith("diversity_") else task


def tables(report: dict) -> list[Table]:
    """The report as titled tables (shared by the text, Markdown and HTML renderers)."""
    out: list[Table] = []
    runs = report["runs"]
    out.append(
        (
            "Runs",
            ["label", "model", "path", "per-prompt values", "notes"],
            [
                [
                    r["label"],
                    r["model_name"],
                    r["path"],
                    f"{len(r.get('per_prompt_tasks', []))}/{len(report['tasks'])} tasks",
                    "; ".join(r["notes"]),
                ]
                for r in runs
            ],
            [f"baseline: {report['baseline']}" if report["baseline"] else "no baseline (use --baseline for changes)"],
        )
    )
    cells = {(c["run"], c["task"], c["metric"]): c for c in report["cells"]}
    cols = [(t, m) for t in ["diversity", *report["tasks"]] for m in report["metrics"]]
    cols = [(t, m) for t, m in cols if any((r["label"], t, m) in cells for r in runs)]
    rows = []
    for r in runs:
        row = [r["label"]]
        for t, m in cols:
            c = cells.get((r["label"], t, m))
            if c is None:
                row.append("")
                continue
            s = fmt(c["value"])
            if "change_pct" in c:
                s += f" ({fmt_pct(c['change_pct'])})"
            row.append(s)
        rows.append(row)
    group_note = "diversity = unweighted mean over the compared tasks where the metric is defined"
    base_note = " ; (x%) = change vs baseline" if report["baseline"] else ""
    out.append(("Leaderboard", ["run", *[f"{_short(t)}/{m}" for t, m in cols]], rows, [group_note + base_note]))
    alpha = report.get("bootstrap", {}).get("alpha", 0.05)
    detail = []
    for c in report["cells"]:
        if c["task"] != "diversity" and (c["task"], c["metric"]) not in cols:
            continue
        ci = fmt_ci(c["ci_low"], c["ci_high"]) or f"no CI: {c.get('ci_note') or 'n/a'}"
        diff = ""
        if "diff" in c:
            diff = f"{fmt(c['diff'])} {fmt_ci(c.get('diff_low'), c.get('diff_high'))} ({c.get('diff_method', '')})"
        detail.append(
            [
                c["run"],
                _short(c["task"]),
                c["metric"],
                fmt(c["value"]),
                ci,
                fmt(c.get("n")),
                fmt_pct(c.get("change_pct")) if "change_pct" in c else "",
                diff,
            ]
        )
    out.append(
        (
            "Details",
            [
                "run",
                "task",
                "metric",
                "value",
                f"{100 * (1 - alpha):.0f}% CI (bootstrap over prompts)",
                "n",
                "change",
                "diff vs baseline [CI]",
            ],
            detail,
            [],
        )
    )
    notes = list(report.get("notes") or [])
    checks = report["checks"]
    out.append(
        (
            "Comparability",
            ["task", "run", "setting", f"{report['reference']} (reference)", "this run"],
            [[_short(c["task"]), c["run"], c["field"], str(c["reference_value"]), str(c["value"])] for c in checks],
            notes
            + ([] if checks else ["all checked settings agree (task hashes, doc ids, K, sampling, metric settings)"]),
        )
    )
    if report["splits"]:
        srows = []
        for s in report["splits"]:
            mode = "matched" if s["matched"] else "all"
            if s["status"] != "ok":
                srows.append(
                    [s["run"], _short(s["task"]), s["metric"], mode, "unavailable: " + s["reason"]] + [""] * 10
                )
                continue
            mism = f"{len(s['ids_only_base'])}/{len(s['ids_only_model'])}"
            srows.append(
                [
                    s["run"],
                    _short(s["task"]),
                    s["metric"],
                    mode,
                    fmt(s["d_all_base"]),
                    fmt(s["d_all_model"]),
                    fmt(s["d_corr_base"]),
                    fmt(s["d_corr_model"]),
                    fmt(s["loss"]),
                    fmt(s["qc"]),
                    fmt(s["residual"]),
                    fmt(s["qc_share"], 2),
                    fmt(s["residual_share"], 2),
                    f"{s['n_prompts']} ({s['n_corr_base']}/{s['n_corr_model']})",
                    mism,
                ]
            )
        out.append(
            (
                "QC / residual split (vs baseline)",
                [
                    "run",
                    "task",
                    "metric",
                    "prompts",
                    "D_all(B)",
                    "D_all(M)",
                    "D_corr(B)",
                    "D_corr(M)",
                    "loss",
                    "QC",
                    "residual",
                    "QC share",
                    "R share",
                    "n (corr B/M)",
                    "ids only B/M",
                ],
                srows,
                [
                    "loss = D_all(B) - D_all(M); residual = D_corr(B) - D_corr(M); QC = loss - residual "
                    "(reference_spec §6.4, reconstruction). 'matched' = prompts computable in both runs. "
                    "Shares are unstable when loss is small."
                ],
            )
        )
    if report["gate"]:
        out.append(
            (
                "Gate (--fail_if_drop)",
                ["spec", "run", "target", "baseline", "diff", "CI", "threshold", "method", "result"],
                [
                    [
                        g["spec"],
                        g["run"],
                        f"{_short(g['task'])}/{g['metric']}",
                        fmt(g["baseline_value"]),
                        fmt(g["diff"]),
                        fmt_ci(g["diff_low"], g["diff_high"]),
                        fmt(g["threshold"]),
                        g["method"],
                        "FAIL" if g["failed"] else "pass",
                    ]
                    for g in report["gate"]
                ],
                ["FAIL iff the CI upper bound of (candidate - baseline) < -FRACTION x |baseline value|"],
            )
        )
    return out


def _text_table(title: str, head: list[str], rows: list[list[str]], notes: list[str]) -> str:
    lines = [f"== {title} =="]
    if rows:
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|")


def _md_table(title: str, head: list[str], rows: list[list[str]], notes: list[str]) -> str:
    lines = [f"## {title}", ""]
    if rows:
        lines.append("| " + " | ".join(_md_escape(h) for h in head) + " |")
        lines.append("|" + "---|" * len(head))
        lines += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in rows]
        lines.append("")
    lines += [f"*{_md_escape(n)}*  " for n in notes]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;white-space:nowrap}
th{background:#f0f0f0} tr:nth-child(even){background:#fafafa}
.note{color:#555;font-size:12px;margin:0.2em 0} .fail{color:#b00;font-weight:bold}
img{max-width:100%;border:1px solid #ddd}
"""


def _html(report: dict, plot_png: bytes | None) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>lm-eval-diversity compare</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>lm-eval-diversity compare</h1>",
    ]
    for title, head, rows, notes in tables(report):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if rows:
            parts.append(
                "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
            )
            for r in rows:
                tds = []
                for c in r:
                    cls = ' class="fail"' if c == "FAIL" else ""
                    tds.append(f"<td{cls}>{html.escape(str(c))}</td>")
                parts.append("<tr>" + "".join(tds) + "</tr>")
            parts.append("</tbody></table>")
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
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


def _csv(report: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for c in report["cells"]:
        w.writerow({k: ("" if _isnan(c.get(k)) else c.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


def render(report: dict, fmt_name: str, plot_png: bytes | None = None) -> str:
    """The report in one of ``table``, ``markdown``, ``csv`` (one row per run x task x metric), ``json``, ``html``."""
    if fmt_name == "json":
        return json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n"
    if fmt_name == "csv":
        return _csv(report)
    if fmt_name == "html":
        return _html(report, plot_png)
    if fmt_name == "markdown":
        return "# lm-eval-diversity compare\n\n" + "\n\n".join(_md_table(*t) for t in tables(report)) + "\n"
    if fmt_name == "table":
        return "\n\n".join(_text_table(*t) for t in tables(report)) + "\n"
    raise ValueError(f"unknown format {fmt_name!r}")


def summary_lines(report: dict) -> str:
    """A short stderr summary when the report goes to a file."""
    lines = [f"compared {len(report['runs'])} run(s) on {len(report['tasks'])} task(s)"]
    lines += [f"note: {n}" for n in report.get("notes") or []]
    lines += [f"differs: {c['task']} {c['run']} {c['field']}" for c in report["checks"]]
    return "\n".join(lines)


def plot_lineages(report: dict, lineages: list, metrics: list[str], out_path: str, per_task: bool = False) -> bytes:
    """Line plot, one panel per metric, x = stage, y = value, one line per lineage (per lineage x task if ``per_task``).

    ``lineages`` is ``[(name, [(stage_label, Run), ...]), ...]``. y is the task-averaged ``diversity`` value, or each
    task's value when ``per_task``; shaded bands are the bootstrap CIs when available. Writes ``out_path`` (PNG) and
    returns its bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {(c["run"], c["task"], c["metric"]): c for c in report["cells"]}
    tasks = report["tasks"] if per_task else ["diversity"]
    n = len(metrics)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    max_len = max(len(st) for _, st in lineages)
    if max_len == 1:  # one stage per lineage: nothing to draw along stages, show every task instead
        return _plot_task_bars(cells, report["tasks"], [st[0][1].label for _, st in lineages], metrics, out_path)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    ticks = []
    for k in range(max_len):
        names = list(dict.fromkeys(st[k][0] for _, st in lineages if k < len(st)))
        ticks.append(" / ".join(names) if len(names) <= 2 else f"stage {k}")
    for i, m in enumerate(metrics):
        ax = axes[i // ncols][i % ncols]
        for name, stages in lineages:
            for t in tasks:
                xs, ys, lo, hi = [], [], [], []
                for x, (_lbl, run) in enumerate(stages):
                    c = cells.get((run.label, t, m))
                    if c is None or _isnan(c["value"]):
                        continue
                    xs.append(x)
                    ys.append(c["value"])
                    lo.append(c["ci_low"] if not _isnan(c["ci_low"]) else c["value"])
                    hi.append(c["ci_high"] if not _isnan(c["ci_high"]) else c["value"])
                if not xs:
                    continue
                label = name if not per_task else f"{name} · {_short(t)}"
                (line,) = ax.plot(xs, ys, marker="o", label=label)
                ax.fill_between(xs, lo, hi, alpha=0.15, color=line.get_color())
                for x, y in zip(xs, ys):
                    if not ticks[x].startswith("stage "):
                        continue  # the tick already names the stage
                    ax.annotate(stages[x][0], (x, y), fontsize=6, xytext=(2, 3), textcoords="offset points")
        ax.set_title(m if not per_task else f"{m} (per task)")
        ax.set_xticks(range(max_len))
        ax.set_xticklabels(ticks, fontsize=7, rotation=15)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes, color="#888")
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    fig.suptitle("Diversity along post-training lineages")
    return _save_png(fig, out_path)


def _plot_task_bars(cells: dict, tasks: list[str], runs: list[str], metrics: list[str], out_path: str) -> bytes:
    """Horizontal bars per task (one bar per run), bootstrap CIs as error bars; one panel per metric."""
    import matplotlib.pyplot as plt

    rows = ["diversity", *tasks]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 0.28 * len(rows) * len(runs) + 1.4))
    axes = [axes] if len(metrics) == 1 else list(axes)
    height = 0.8 / max(len(runs), 1)
    for ax, m in zip(axes, metrics):
        for j, run in enumerate(runs):
            ys, xs, err = [], [], [[], []]
            for i, t in enumerate(rows):
                c = cells.get((run, t, m))
                if c is None or _isnan(c["value"]):
                    continue
                ys.append(i + j * height)
                xs.append(c["value"])
                lo = c["ci_low"] if not _isnan(c["ci_low"]) else c["value"]
                hi = c["ci_high"] if not _isnan(c["ci_high"]) else c["value"]
                err[0].append(max(c["value"] - lo, 0.0))
                err[1].append(max(hi - c["value"], 0.0))
            ax.barh(ys, xs, height=height, xerr=err, label=run, capsize=2)
        ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
        ax.set_yticklabels([_short(t) for t in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(m)
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Diversity per task (bars: 95% bootstrap CI over prompts)")
    return _save_png(fig, out_path)


def _save_png(fig, out_path: str) -> bytes:
    """Write the figure as PNG to ``out_path`` and return the bytes (for embedding in HTML)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    data = buf.getvalue()
    write_atomic(out_path, data)
    return data
