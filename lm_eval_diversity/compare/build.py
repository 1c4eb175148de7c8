"""Build the :class:`~lm_eval_diversity.compare.model.Report` from loaded runs: per-cell bootstrap CIs, changes vs
the baseline (paired bootstrap over prompts, else a normal interval from lm-eval's stderrs, else the point estimate),
the task-averaged ``diversity`` group cells, comparability checks and the QC/residual splits.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

from lm_eval_diversity.analysis import (
    as_float,
    bootstrap_ci,
    nanmean,
    paired_bootstrap_diff,
    split_from_prompts,
    stratified_bootstrap_mean,
    stratified_paired_diff,
)
from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.catalogue.tasks import verifiable_task_names
from lm_eval_diversity.compare.model import Bootstrap, Cell, Change, Check, Report, RunInfo, Split
from lm_eval_diversity.compare.names import (
    CORPUS_SUFFIXES,
    GEN_KEYS,
    GROUP,
    JUDGE_SETTING_KEYS,
    SETTING_KEYS,
    SPLIT_METRICS,
)
from lm_eval_diversity.runs import Run, TaskData, display_path


def is_verifiable(task: str, runs: list[Run]) -> bool:
    """A task with graded outputs: a known verifiable task, or one whose runs carry ``sbert_correct`` values."""
    if short_name(task) in verifiable_task_names():
        return True
    return any("sbert_correct" in r.tasks[task].values for r in runs if task in r.tasks)


def per_prompt_values(td: TaskData, metric: str) -> dict[Any, float] | None:
    """``{doc_id: value}`` of a per-prompt metric; None when there are none (corpus-level metrics never have any:
    every doc carries the same task-level number, so resampling docs would give a false zero-width CI)."""
    if td.per_prompt is None or metric.endswith(CORPUS_SUFFIXES):
        return None
    if not any(metric in row for row in td.per_prompt.values()):
        return None
    return {d: as_float(row.get(metric)) for d, row in td.per_prompt.items()}


def _no_ci_reason(td: TaskData, metric: str) -> str:
    if metric.endswith(CORPUS_SUFFIXES):
        return "corpus-level value: no per-prompt CI"
    if td.per_prompt is None:
        return "no per-prompt values (samples file not found)"
    return f"no per-prompt values of {metric}"


def task_value(td: TaskData, metric: str) -> float:
    """The task's value of a metric: the results JSON's, else the NaN-mean of the per-prompt values, else NaN."""
    v = as_float(td.values.get(metric))
    if math.isnan(v):
        vals = per_prompt_values(td, metric)
        if vals is not None:
            v = nanmean(vals.values())
    return v


def _pct(v: float, b: float) -> float:
    return 100.0 * (v - b) / abs(b) if not (math.isnan(v) or math.isnan(b) or b == 0) else math.nan


def _setting_pairs(a: TaskData, b: TaskData) -> list[tuple[str, Any, Any]]:
    """(setting, reference value, run value) of every setting compared, then the prompt-set differences."""
    fields: list[tuple[str, Any, Any]] = [
        ("task_hash", a.task_hash, b.task_hash),
        ("task_version", a.version, b.version),
        ("n_docs", a.n_docs, b.n_docs),
        ("K", a.repeats, b.repeats),
    ]
    fields += [(k, a.generation_kwargs.get(k), b.generation_kwargs.get(k)) for k in GEN_KEYS]
    fields += [(k, a.settings.get(k), b.settings.get(k)) for k in (*SETTING_KEYS, *JUDGE_SETTING_KEYS)]
    if a.per_prompt is not None and b.per_prompt is not None:
        ia, ib = set(a.per_prompt), set(b.per_prompt)
        if ia != ib:
            fields.append(("doc_ids", f"{len(ia - ib)} only here", f"{len(ib - ia)} only here"))
        diff_hash = [
            d for d in ia & ib if d in a.doc_hashes and d in b.doc_hashes and a.doc_hashes[d] != b.doc_hashes[d]
        ]
        if diff_hash:
            fields.append(("doc_hash", "", f"{len(diff_hash)} common doc ids with a different doc"))
    return fields


def comparability(runs: list[Run], ref: Run, tasks: list[str]) -> list[Check]:
    """Per task, every setting in which a run differs from the reference run (only where both values are known)."""
    out = []
    for run in runs:
        if run is ref:
            continue
        for t in tasks:
            for name, va, vb in _setting_pairs(ref.tasks[t], run.tasks[t]):
                if name in ("doc_ids", "doc_hash") or (va is not None and vb is not None and va != vb):
                    out.append(
                        Check(task=t, run=run.label, reference=ref.label, field=name, reference_value=va, value=vb)
                    )
    return out


def _cell(run: Run, td: TaskData, metric: str, boot: Bootstrap) -> Cell:
    cell = Cell(
        run=run.label,
        task=td.name,
        metric=metric,
        value=td.values.get(metric, math.nan),
        stderr=td.stderr.get(metric, math.nan),
        ci_low=math.nan,
        ci_high=math.nan,
        n=None,
        ci_note="",
    )
    vals = per_prompt_values(td, metric)
    if vals is None:
        cell.ci_note = _no_ci_reason(td, metric)
    else:
        ci = bootstrap_ci(vals.values(), iters=boot.iters, seed=boot.seed, alpha=boot.alpha)
        cell.ci_low, cell.ci_high, cell.n = ci["low"], ci["high"], ci["n"]
        if math.isnan(cell.value):
            cell.value = ci["estimate"]
    return cell


def _change(value: float, td: TaskData, bd: TaskData, m: str, boot: Bootstrap) -> Change:
    """Change of a task cell vs the baseline's task."""
    v, b = as_float(value), task_value(bd, m)
    va, vb = per_prompt_values(td, m), per_prompt_values(bd, m)
    if va is not None and vb is not None:
        d = paired_bootstrap_diff(va, vb, iters=boot.iters, seed=boot.seed, alpha=boot.alpha)
        return Change(b, _pct(v, b), d["estimate"], d["low"], d["high"], d["n"], "paired bootstrap")
    sa, sb = as_float(td.stderr.get(m)), as_float(bd.stderr.get(m))
    if not (math.isnan(sa) or math.isnan(sb)):
        half = NormalDist().inv_cdf(1 - boot.alpha / 2) * math.sqrt(sa * sa + sb * sb)
        return Change(b, _pct(v, b), v - b, v - b - half, v - b + half, None, "normal approx. from stderr")
    return Change(b, _pct(v, b), v - b, math.nan, math.nan, None, "point estimate (no CI)")


def _group_cell(run: Run, baseline: Run | None, tasks: list[str], m: str, boot: Bootstrap) -> Cell:
    """Unweighted mean over the tasks where the metric is defined; CI by bootstrap stratified by task."""
    vals = [(t, as_float(run.tasks[t].values.get(m))) for t in tasks]
    used = [t for t, v in vals if not math.isnan(v)]
    c = Cell(run.label, GROUP, m, nanmean(v for _, v in vals), math.nan, math.nan, math.nan, None, "", tasks_used=used)
    pp = {t: per_prompt_values(run.tasks[t], m) for t in used}
    lacking = [t for t in used if pp[t] is None]
    if used and not lacking:
        ci = stratified_bootstrap_mean(
            [pp[t].values() for t in used], iters=boot.iters, seed=boot.seed, alpha=boot.alpha
        )
        c.ci_low, c.ci_high, c.n = ci["low"], ci["high"], ci["n"]
    elif used:
        c.ci_note = f"no per-prompt values for {', '.join(lacking)}"
    if baseline is not None and run is not baseline:
        c.change = _group_change(run, baseline, tasks, used, pp, m, boot)
    return c


def _group_change(
    run: Run, baseline: Run, tasks: list[str], used: list[str], pp: dict, m: str, boot: Bootstrap
) -> Change:
    """Change of a group cell: mean over the tasks both runs define; paired bootstrap stratified by task."""
    bvals = {t: as_float(baseline.tasks[t].values.get(m)) for t in tasks}
    both = [t for t in used if not math.isnan(bvals[t])]
    b = nanmean(bvals[t] for t in both)
    v = nanmean(as_float(run.tasks[t].values.get(m)) for t in both)
    base_value, pct = nanmean(bvals.values()), _pct(v, b)
    bpp = {t: per_prompt_values(baseline.tasks[t], m) for t in both}
    if both and all(pp.get(t) is not None and bpp[t] is not None for t in both):
        d = stratified_paired_diff([(pp[t], bpp[t]) for t in both], iters=boot.iters, seed=boot.seed, alpha=boot.alpha)
        return Change(
            base_value, pct, d["estimate"], d["low"], d["high"], d["n"], "paired bootstrap, stratified by task"
        )
    return Change(base_value, pct, v - b, math.nan, math.nan, None, "point estimate (no CI)")


def _split(run: Run, baseline: Run, t: str, m: str, matched: bool, subset: str = "correct") -> Split:
    b, r = baseline.tasks[t].per_prompt, run.tasks[t].per_prompt
    split = Split(run=run.label, task=t, metric=m, matched=matched, status="ok", subset=subset)
    key = f"{m}_{subset}"
    if b is None or r is None:
        who = [x.label for x, pp in ((baseline, b), (run, r)) if pp is None]
        split.status, split.reason = "unavailable", f"no per-prompt values (samples file missing) for {', '.join(who)}"
    elif not any(key in row for row in list(b.values()) + list(r.values())):
        split.status, split.reason = "unavailable", f"no per-prompt {key} values"
    else:
        split.values = split_from_prompts(b, r, metric=m, matched=matched, subset=subset)
    return split


def _split_listed(m: str, t: str, pair: list[Run], subset: str = "correct") -> bool:
    """A split row for metric ``m`` on task ``t``: over the correct outputs, the default metrics' always (an
    unavailable split says why) and an opt-in metric's (``code_sbert``...) on its tasks when a run holds its
    ``<m>_correct`` values; over the acceptable outputs, when a run holds ``<m>_acceptable`` values."""
    r = catalogue.record(m)
    if not catalogue.on_task(r, t):
        return False
    data = [run.tasks.get(t) for run in pair]
    rows = [row for td in data if td is not None and td.per_prompt for row in td.per_prompt.values()]
    held = any(f"{m}_{subset}" in row for row in rows)
    return held or (subset == "correct" and r.default)


def splits(runs: list[Run], baseline: Run, tasks: list[str]) -> list[Split]:
    """All-prompts and matched splits of every candidate vs the baseline: over the correct outputs on each
    verifiable task, and over the reward-acceptable outputs on every task scored with a reward model."""
    correct = [
        _split(run, baseline, t, m, matched)
        for run in runs
        if run is not baseline
        for t in tasks
        if is_verifiable(t, [run, baseline])
        for m in SPLIT_METRICS
        if _split_listed(m, t, [baseline, run])
        for matched in (False, True)
    ]
    acceptable = [
        _split(run, baseline, t, m, matched, subset="acceptable")
        for run in runs
        if run is not baseline
        for t in tasks
        for m in SPLIT_METRICS
        if _split_listed(m, t, [baseline, run], "acceptable")
        for matched in (False, True)
    ]
    return correct + acceptable


def build_report(
    runs: list[Run],
    baseline: Run | None,
    tasks: list[str],
    metrics: list[str],
    boot: Bootstrap,
    missing: dict[str, list[str]] | None = None,
    notes: list[str] | None = None,
) -> Report:
    """The report of ``runs`` on ``tasks`` x ``metrics`` (changes and splits vs ``baseline`` when given)."""
    ref = baseline or runs[0]
    cells: list[Cell] = []
    for run in runs:
        for t in tasks:
            td = run.tasks[t]
            for m in metrics:
                if m not in td.values and per_prompt_values(td, m) is None:
                    continue
                c = _cell(run, td, m, boot)
                if baseline is not None and run is not baseline:
                    c.change = _change(c.value, td, baseline.tasks[t], m, boot)
                cells.append(c)
        for m in metrics:
            if any(c.metric == m and c.run == run.label for c in cells):
                cells.append(_group_cell(run, baseline, tasks, m, boot))
    notes = list(notes or [])
    notes += [f"metric {m}: not found in any compared task" for m in metrics if not any(c.metric == m for c in cells)]
    return Report(
        runs=[
            RunInfo(
                label=r.label,
                path=display_path(r.path),
                model_name=r.model_name,
                per_prompt_tasks=[t for t in tasks if r.tasks[t].per_prompt is not None],
                notes=r.notes,
            )
            for r in runs
        ],
        baseline=baseline.label if baseline else None,
        reference=ref.label,
        tasks=tasks,
        metrics=metrics,
        missing_tasks=missing or {},
        cells=cells,
        checks=comparability(runs, ref, tasks),
        splits=splits(runs, baseline, tasks) if baseline is not None else [],
        notes=notes,
        bootstrap=boot,
    )
