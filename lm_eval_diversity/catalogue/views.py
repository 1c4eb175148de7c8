"""What lm-eval and the docs show of the metric records (:mod:`lm_eval_diversity.catalogue.metrics`): the
``metric_list`` entries of the task YAMLs, the metrics the groups average, which rows a run's results table shows,
and the metrics table of ``docs/metrics.md``.
"""

from __future__ import annotations

from functools import lru_cache

from lm_eval_diversity.catalogue.metrics import (
    AGGREGATIONS,
    CORPUS_LEVELS,
    MetricRecord,
    builtin_records,
    metrics_using,
    on_task,
    record,
    registered_records,
    split_level,
    tasks_of,
)


def _entry(name: str, r: MetricRecord, aggregation: str | None = None) -> dict:
    return {
        "metric": name,
        "aggregation": AGGREGATIONS[aggregation or r.aggregation],
        "higher_is_better": r.higher_is_better,
    }


def harness_entries(rs: tuple[MetricRecord, ...], graded: bool, task: str | None = None) -> list[dict]:
    """lm-eval ``metric_list`` entries of some records: per-input values of the selectable ones, their corpus
    levels, the other ungraded records, then (``graded``) the graded ones; ``task`` adds that task's own."""
    rs = tuple(r for r in rs if r.harness and on_task(r, task))
    selectable = [r for r in rs if r.selectable]
    out = [_entry(r.name, r) for r in selectable]
    out += [_entry(f"{r.name}_{lvl}", r, "corpus") for r in selectable if r.corpus for lvl in CORPUS_LEVELS]
    out += [_entry(r.name, r) for r in rs if not r.selectable and not r.graded]
    if graded:
        out += [_entry(r.name, r) for r in rs if r.graded]
    return out


def harness_metric_list(graded: bool, task: str | None = None) -> list[dict]:
    """The ``metric_list`` of the plain (``graded=False``) or the graded task template, in order: ``metric``,
    ``aggregation`` (an lm-eval aggregation name or a function's dotted path, written ``!function <path>``),
    ``higher_is_better``. ``task`` (e.g. ``ifeval``) adds the metrics of that task only."""
    return harness_entries(builtin_records(), graded, task)


def group_aggregate_metrics() -> list[str]:
    """The metrics every group YAML averages over its tasks (per-input, mean-aggregated, on every task)."""
    return [
        r.name
        for r in builtin_records()
        if r.harness and not r.graded and r.aggregation == "mean" and r.requires is None and r.on is None
    ]


def mean_aggregated(names) -> frozenset[str]:
    """Of the harness metric names, those lm-eval aggregates with ``mean`` (their per-doc values must be numbers)."""
    return _mean_aggregated(tuple(names), tuple(r.name for r in registered_records()))


@lru_cache(maxsize=64)
def _mean_aggregated(names: tuple[str, ...], registered: tuple[str, ...]) -> frozenset[str]:
    out = set()
    for name in names:
        base, level = split_level(name)
        try:
            r = record(base)
        except KeyError:
            continue
        if level == "per_input" and r.aggregation == "mean":
            out.add(name)
    return frozenset(out)


def shown(name: str, run: set[str], corpus: set[str], *, verifiable: bool, repeats: int, baseline: bool) -> bool:
    """Whether a harness metric is defined for a run (the results table shows no row that is NaN by construction).

    Selectable metrics when run (corpus levels when also in ``corpus``), per-input ones only with K >= 2; on
    verifiable tasks ``pass@k`` for k <= K, the quality-filtered ones when their source metric runs (K >= 2), the
    QC/residual split with a baseline; every other listed metric always.
    """
    base, level = split_level(name)
    try:
        r = record(base)
    except KeyError:
        return True  # not a catalogue metric (a user's own YAML entry): lm-eval decides
    per_prompt = repeats >= 2  # diversity among one prompt's outputs needs K >= 2
    if level != "per_input":
        return r.name in run and r.name in corpus
    if r.selectable:
        return r.name in run and per_prompt
    if r.name.startswith("pass@"):
        return verifiable and int(r.name[5:]) <= repeats
    if r.kind == "baseline":
        return verifiable and baseline and r.requires in run
    if r.requires is not None:
        return verifiable and per_prompt and r.requires in run
    if r.model_setting is not None:  # derived from a model's pass: shown when a metric of that model runs
        return verifiable and per_prompt and bool(set(metrics_using(r.model_setting)) & run)
    return True


def docs_table() -> str:
    """The metrics table of docs/metrics.md (name, inputs, levels, higher_is_better, default)."""
    lines = [
        "| metric | inputs | levels | higher is better | default |",
        "|---|---|---|---|---|",
    ]
    for r in builtin_records():
        tasks = tasks_of(r)
        inputs = r.inputs or r.kind + (f" (`{r.model_setting}`)" if r.model_setting else "")
        levels = ", ".join(r.levels) if r.kind not in ("baseline",) else "task"
        if r.selectable:
            corpus = ", corpus levels on" if r.corpus_default else ", corpus levels opt-in" if r.corpus else ""
            default = f"on{corpus}" if r.default else "off"
            if tasks is not None:
                default += "; " + ", ".join(tasks) + " only"
        else:
            default = "graded tasks" if r.graded else "always"
            if tasks is not None and r.kind == "verdicts":
                default = ", ".join(tasks) + " only"
            elif tasks is not None:
                default = ", ".join(tasks) + f", with `{r.requires}`"
            elif r.requires:
                default += f", with `{r.requires}`"
            elif r.model_setting:
                default += ", with " + " or ".join(f"`{m}`" for m in metrics_using(r.model_setting))
        if r.model_setting == "quality_model" or "quality_model" in r.inputs:  # run when a reward model is given
            default = "with `quality_model`" + (f" and `{r.requires}`" if r.requires else "")
        arrow = "↑" if r.higher_is_better else "↓"
        lines.append(f"| `{r.name}` | {inputs} | {levels} | {arrow} | {default} |")
    return "\n".join(lines) + "\n"
