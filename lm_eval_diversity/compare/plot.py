"""The lineage plot of a ``compare`` report (matplotlib, imported only when a plot is asked for)."""

from __future__ import annotations

import io
import math

from lm_eval_diversity.atomic import write_atomic
from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.compare.model import Report
from lm_eval_diversity.compare.names import GROUP
from lm_eval_diversity.compare.render import undefined
from lm_eval_diversity.runs import Run


def plot_lineages(
    report: Report,
    lineages: list[tuple[str, list[tuple[str, Run]]]],
    metrics: list[str],
    out_path: str,
    per_task: bool = False,
) -> bytes:
    """Line plot, one panel per metric, x = stage, y = value, one line per lineage (per lineage x task if ``per_task``).

    ``lineages`` is ``[(name, [(stage_label, Run), ...]), ...]``. y is the task-averaged ``diversity`` value, or each
    task's value when ``per_task``; shaded bands are the bootstrap CIs when available. Writes ``out_path`` (PNG) and
    returns its bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {(c.run, c.task, c.metric): c for c in report.cells}
    tasks = report.tasks if per_task else [GROUP]
    n = len(metrics)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    max_len = max(len(st) for _, st in lineages)
    if max_len == 1:  # one stage per lineage: nothing to draw along stages, show every task instead
        return _plot_task_bars(cells, report.tasks, [st[0][1].label for _, st in lineages], metrics, out_path)
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
    fig.suptitle("Diversity along post-training lineages")
    return _save_png(fig, out_path)


def _plot_task_bars(cells: dict, tasks: list[str], runs: list[str], metrics: list[str], out_path: str) -> bytes:
    """Horizontal bars per task (one bar per run), bootstrap CIs as error bars; one panel per metric."""
    import matplotlib.pyplot as plt

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
