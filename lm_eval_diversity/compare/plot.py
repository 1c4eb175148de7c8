"""The figures of a ``compare`` report (matplotlib, imported only when a figure is asked for).

* :func:`lineage_figure`: diversity along each lineage (or along the runs in order), also written as ``--plot`` PNG;
* :func:`change_figure`: each task's change against the baseline with its CI (a forest plot);
* :func:`split_figure`: the QC/residual split of the loss per verifiable task.

The HTML page embeds them as inline SVG (:func:`svg_text`), so it needs no file next to it.
"""

from __future__ import annotations

import io
import math
import re
from typing import TYPE_CHECKING, NamedTuple

from lm_eval_diversity.atomic import write_atomic
from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.compare.model import Report
from lm_eval_diversity.compare.names import GROUP, task_groups
from lm_eval_diversity.compare.render import candidates, ci_excludes_zero, undefined
from lm_eval_diversity.runs import Run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WORSE, BETTER, NEUTRAL = "#c0392b", "#2166ac", "#777777"  # the page's colour scale ends (report.css)


class PageFigure(NamedTuple):
    """A figure of the HTML page: its title, what it shows, and the inline SVG."""

    title: str
    caption: str
    svg: str


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def lineage_figure(
    report: Report, lineages: list[tuple[str, list[tuple[str, Run]]]], metrics: list[str], per_task: bool = False
) -> Figure:
    """Line plot, one panel per metric, x = stage, y = value, one line per lineage (per lineage x task if ``per_task``).

    ``lineages`` is ``[(name, [(stage_label, Run), ...]), ...]``. y is the task-averaged ``diversity`` value, or each
    task's value when ``per_task``; shaded bands are the bootstrap CIs when available. With one stage per lineage
    there is nothing to draw along stages: each task's value per run is drawn instead.
    """
    plt = _pyplot()
    cells = {(c.run, c.task, c.metric): c for c in report.cells}
    tasks = report.tasks if per_task else [GROUP]
    n = len(metrics)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    max_len = max(len(st) for _, st in lineages)
    if max_len == 1:
        return _task_bars(cells, report.tasks, [st[0][1].label for _, st in lineages], metrics)
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
                    if c is None or undefined(c.value):
                        continue
                    xs.append(x)
                    ys.append(c.value)
                    lo.append(c.ci_low if not undefined(c.ci_low) else c.value)
                    hi.append(c.ci_high if not undefined(c.ci_high) else c.value)
                if not xs:
                    continue
                label = name if not per_task else f"{name} · {short_name(t)}"
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
    fig.suptitle(
        "Diversity along post-training lineages"
        if len(lineages) > 1 or lineages[0][0] != "runs"
        else "Diversity along the compared runs (mean over tasks, band: bootstrap CI)"
    )
    fig.tight_layout()
    return fig


def _task_bars(cells: dict, tasks: list[str], runs: list[str], metrics: list[str]) -> Figure:
    """Horizontal bars per task (one bar per run), bootstrap CIs as error bars; one panel per metric."""
    plt = _pyplot()
    rows = [GROUP, *tasks]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 0.28 * len(rows) * len(runs) + 1.4))
    axes = [axes] if len(metrics) == 1 else list(axes)
    height = 0.8 / max(len(runs), 1)
    for ax, m in zip(axes, metrics):
        for j, run in enumerate(runs):
            ys, xs, err = [], [], [[], []]
            for i, t in enumerate(rows):
                c = cells.get((run, t, m))
                if c is None or undefined(c.value):
                    continue
                ys.append(i + j * height)
                xs.append(c.value)
                lo = c.ci_low if not undefined(c.ci_low) else c.value
                hi = c.ci_high if not undefined(c.ci_high) else c.value
                err[0].append(max(c.value - lo, 0.0))
                err[1].append(max(hi - c.value, 0.0))
            ax.barh(ys, xs, height=height, xerr=err, label=run, capsize=2)
        ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
        ax.set_yticklabels([short_name(t) for t in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(m)
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Diversity per task (bars: 95% bootstrap CI over prompts)")
    fig.tight_layout()
    return fig


def _rows(report: Report) -> list[str]:
    """The group, then the tasks by category (the leaderboard's order)."""
    return [GROUP, *[t for _, ts in task_groups(report.tasks) for t in ts]]


def change_figure(report: Report, metrics: list[str]) -> Figure | None:
    """Forest plot, one panel per metric: each task's change (candidate - baseline) with its CI; a filled marker
    where the CI excludes 0, red where the change is a loss. None without a baseline."""
    from lm_eval_diversity.compare.names import metric_higher_is_better

    cands = candidates(report)
    cells = {(c.run, c.task, c.metric): c for c in report.cells if c.change is not None}
    metrics = [m for m in metrics if any(k[2] == m for k in cells)]
    if not cands or not metrics:
        return None
    plt = _pyplot()
    rows = _rows(report)
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.2 * len(metrics) + 1.2, 0.26 * len(rows) * len(cands) + 1.3),
        sharey=True,
        squeeze=False,
    )
    step = 0.7 / len(cands)
    for ax, m in zip(axes[0], metrics):
        up = metric_higher_is_better(m)
        for j, run in enumerate(cands):
            for i, t in enumerate(rows):
                c = cells.get((run, t, m))
                if c is None or undefined(c.change.diff):
                    continue
                ch, y = c.change, i + (j - (len(cands) - 1) / 2) * step
                colour = NEUTRAL if ch.diff == 0 else (WORSE if (ch.diff < 0) == up else BETTER)
                if not (undefined(ch.diff_low) or undefined(ch.diff_high)):
                    ax.plot([ch.diff_low, ch.diff_high], [y, y], color=colour, lw=1.4)
                filled = ci_excludes_zero(c)
                ax.plot([ch.diff], [y], "o", ms=4.5, color=colour, mfc=colour if filled else "white")
        ax.axvline(0, color="#444", lw=0.8)
        ax.set_title(m, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0][0].set_yticks(range(len(rows)))
    axes[0][0].set_yticklabels([f"{GROUP} (mean)" if t == GROUP else short_name(t) for t in rows], fontsize=7)
    axes[0][0].invert_yaxis()
    who = ", ".join(cands) if len(cands) <= 3 else f"{len(cands)} runs"
    fig.suptitle(f"Change vs {report.baseline} ({who}); filled: CI excludes 0", fontsize=10)
    fig.tight_layout()
    return fig


def split_figure(report: Report) -> Figure | None:
    """The QC/residual split per verifiable task and split metric (all prompts): from 0, the QC bar, then the residual
    bar from its end; the tick is the loss = QC + residual. None when no split has values."""
    shown = [s for s in report.splits if s.status == "ok" and not s.matched and not undefined(s.values.get("loss"))]
    metrics = list(dict.fromkeys(s.metric for s in shown))
    if not metrics:
        return None
    plt = _pyplot()
    labels = list(dict.fromkeys((s.run, s.task) for s in shown))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.8 * len(metrics) + 1.2, 0.34 * len(labels) + 1.5), sharey=True, squeeze=False
    )
    for ax, m in zip(axes[0], metrics):
        for i, key in enumerate(labels):
            s = next((s for s in shown if (s.run, s.task) == key and s.metric == m), None)
            if s is None:
                continue
            qc, res, loss = s.values["qc"], s.values["residual"], s.values["loss"]
            if undefined(qc) or undefined(res):  # no prompt with >= 2 correct outputs in one of the runs
                ax.text(0, i, "  loss only: D_corr undefined", va="center", fontsize=6, color="#888")
            else:
                ax.barh(i, qc, color="#f4a582", height=0.6, label="QC (incorrect outputs removed)" if i == 0 else None)
                ax.barh(
                    i,
                    res,
                    left=qc,
                    color="#92c5de",
                    height=0.6,
                    label="residual (narrowing among correct)" if i == 0 else None,
                )
            ax.plot([loss, loss], [i - 0.38, i + 0.38], color="black", lw=1.6, label="loss" if i == 0 else None)
        ax.axvline(0, color="#444", lw=0.8)
        ax.set_title(f"{m}: loss = QC + residual", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0][0].set_yticks(range(len(labels)))
    multi = len({r for r, _ in labels}) > 1
    axes[0][0].set_yticklabels([f"{short_name(t)} · {r}" if multi else short_name(t) for r, t in labels], fontsize=7)
    axes[0][0].invert_yaxis()
    handles, names = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(f"Diversity lost vs {report.baseline}, split (docs/decomposition.md)", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def save_png(fig: Figure, out_path: str) -> bytes:
    """Write the figure as PNG to ``out_path`` (atomically) and return the bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    data = buf.getvalue()
    write_atomic(out_path, data)
    return data


_SVG_ID_RE = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def svg_text(fig: Figure, name: str) -> str:
    """The figure as an inline ``<svg>`` element: text kept as text (smaller, searchable), no date, the same bytes for
    the same figure, and every id (and reference to one) prefixed with ``name``, so that the figures of one page never
    share an id (matplotlib numbers ``figure_1``, ``axes_1``... afresh in each). The figure is closed."""
    plt = _pyplot()
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "lm-eval-diversity"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :] if "<svg" in text else text
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)  # the writer's RDF: names, no content
    return _SVG_ID_RE.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", text)


def close(fig: Figure) -> None:
    _pyplot().close(fig)


def page_figures(report: Report, lineage: Figure, metrics: list[str]) -> list[PageFigure]:
    """The HTML page's figures as inline SVG: the change per task, the lineage plot (``lineage``, closed here), the
    QC/residual split."""
    out = []
    fig = change_figure(report, metrics)
    if fig is not None:
        out.append(
            PageFigure(
                "Change per task against the baseline",
                f"Each candidate's change (run − {report.baseline}) with its {100 * (1 - report.bootstrap.alpha):.0f}% "
                "paired-bootstrap CI over prompts. Red: diversity (or accuracy) lost; blue: gained; a filled dot: "
                "the CI excludes 0.",
                svg_text(fig, "change"),
            )
        )
    title = "Lineages" if report.lineages else "Along the runs"
    caption = (
        "Each metric along the stages of each lineage (mean over tasks; band: bootstrap CI)."
        if report.lineages
        else "Each metric along the compared runs, in the order given (mean over tasks; band: bootstrap CI)."
    )
    out.append(PageFigure(title, caption, svg_text(lineage, "lineage")))
    fig = split_figure(report)
    if fig is not None:
        out.append(
            PageFigure(
                "Where the diversity went: QC / residual split",
                "On each verifiable task, the loss of diversity (tick) split into the part explained by incorrect "
                "outputs being gone (QC) and the narrowing among correct outputs (residual); all prompts, the "
                "paper's aggregation. The split table below has the matched variant and the counts.",
                svg_text(fig, "split"),
            )
        )
    return out
