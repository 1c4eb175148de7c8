"""``lm-eval-diversity compare``: leaderboard, change vs a baseline, QC/residual split, CI gate and lineage plots.

A RUN is an lm-eval output directory (searched recursively for ``results_*.json``; one run per model folder), one
results JSON file, or a ``lm-eval-diversity score`` JSON (top-level ``settings`` and ``tasks``). Per-prompt values
come from the ``samples_<task>_<datetime>.jsonl`` files next to a results file or from the score JSON's
``per_prompt`` lists; they give the bootstrap CIs, the paired differences and the QC/residual split. Without them a
cell has no CI and the split is "unavailable" (never 0).

Exit codes of :func:`run_compare`: 0 ok, 1 a ``--fail_if_drop`` gate failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
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
from lm_eval_diversity.atomic import check_output_path, write_atomic
from lm_eval_diversity.quality import VERIFIABLE_TASKS
from lm_eval_diversity.samples import SamplesFormatError, is_regular, iter_sample_records, task_name_from_filename
from lm_eval_diversity.settings import DiversitySettings

TASK_PREFIX = "diversity_"
GROUP = "diversity"
DEFAULT_METRICS = ("sbert", "vendi", "ead", "nli", "acc")
SPLIT_METRICS = ("sbert", "vendi")
GEN_KEYS = ("temperature", "top_p", "top_k", "min_p", "do_sample", "max_gen_toks")
# every metric setting that changes a number (not which metrics run, the device, batch size or the baseline path)
SETTING_KEYS = tuple(
    f.name
    for f in dataclasses.fields(DiversitySettings)
    if f.name not in ("metrics", "corpus_metrics", "device", "batch_size", "baseline")
)
_NON_METRIC_SAMPLE_KEYS = {
    "doc_id",
    "doc",
    "target",
    "arguments",
    "resps",
    "filtered_resps",
    "filter",
    "metrics",
    "doc_hash",
    "prompt_hash",
    "target_hash",
}
_RESULTS_RE = re.compile(r"^results_(.+)\.json$")


MAX_BOOTSTRAP_ITERS = 100_000  # a bound on run time and memory (docs/ci_gating.md)


class CompareError(ValueError):
    """Bad input for ``compare`` (exit code 2); the message names the path or option at fault."""


@dataclass
class TaskData:
    """One task of one run: aggregated values, the settings that matter for comparability, per-prompt rows."""

    name: str
    values: dict[str, float] = field(default_factory=dict)
    stderr: dict[str, float] = field(default_factory=dict)
    repeats: int | None = None
    generation_kwargs: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    task_hash: str | None = None
    version: Any = None
    n_docs: int | None = None
    per_prompt: dict[Any, dict] | None = None
    doc_hashes: dict[Any, str] = field(default_factory=dict)
    source: str = ""
    samples_source: str | None = None


@dataclass
class Run:
    """One model's results (possibly merged from several results files)."""

    label: str
    path: str
    model_name: str
    tasks: dict[str, TaskData]
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- loading


def _datetime_from_name(name: str) -> str:
    stem = Path(name).stem
    return stem[stem.rfind("_") + 1 :]


def read_samples_file(path: Path) -> tuple[dict[Any, dict], dict[Any, str]]:
    """Per-doc numeric values (top-level metric keys; None -> NaN) and doc hashes from one samples JSONL file.

    lm-eval writes one line per doc per filter; when several lines share a doc id the ``div`` filter's line wins,
    otherwise the first.
    """
    rows: dict[Any, dict] = {}
    hashes: dict[Any, str] = {}
    preferred: set = set()
    try:
        records = list(iter_sample_records(path))
    except SamplesFormatError as exc:
        raise CompareError(str(exc)) from None
    for _where, rec in records:
        did = rec["doc_id"]
        is_div = rec.get("filter") == "div"
        if did in rows and (did in preferred or not is_div):
            continue
        if is_div:
            preferred.add(did)
        row = {"doc_id": did}
        for k, v in rec.items():
            if k in _NON_METRIC_SAMPLE_KEYS:
                continue
            if v is None or isinstance(v, (int, float)):
                row[k] = as_float(v)
        rows[did] = row
        if rec.get("doc_hash") is not None:
            hashes[did] = rec["doc_hash"]
    return rows, hashes


def _metric_values(entry: dict) -> tuple[dict[str, float], dict[str, float]]:
    """``{"<metric>,<filter>": v}`` -> metric values and stderrs (the ``div`` filter wins when there are several)."""
    values: dict[str, float] = {}
    stderr: dict[str, float] = {}
    for key in sorted(entry, key=lambda k: k.endswith(",div")):  # ,div keys last so they win
        if "," not in key:
            continue
        metric = key.split(",", 1)[0]
        if metric.endswith("_stderr"):
            stderr[metric[: -len("_stderr")]] = as_float(entry[key])
        else:
            values[metric] = as_float(entry[key])
    return values, stderr


def _group_names(data: dict) -> set[str]:
    names = set(data.get("groups") or {}) | set(data.get("group_subtasks") or {})
    return names


def load_results_file(path: Path) -> tuple[str, dict[str, TaskData], list[str]]:
    """(model name, tasks, notes) from one lm-eval results JSON and the samples files next to it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"{path}: cannot read results JSON ({exc})") from exc
    if not isinstance(data, dict) or "results" not in data:
        raise CompareError(f"{path}: not an lm-eval results JSON (no 'results' key)")
    if not isinstance(data["results"], dict):
        raise CompareError(f"{path}: key 'results' must be an object of tasks, got {type(data['results']).__name__}")
    for key in ("configs", "task_hashes", "n-samples"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise CompareError(f"{path}: key {key!r} must be an object, got {type(data[key]).__name__}")
    for name, entry in data["results"].items():
        if not isinstance(entry, dict):
            raise CompareError(f"{path}: results[{name!r}] must be an object, got {type(entry).__name__}")
    notes: list[str] = []
    groups = _group_names(data)
    configs = data.get("configs") or {}
    hashes = data.get("task_hashes") or {}
    n_samples = data.get("n-samples") or {}
    m = _RESULTS_RE.match(path.name)
    stamp = m.group(1) if m else None
    tasks: dict[str, TaskData] = {}
    for name, entry in data["results"].items():
        if name in groups or (configs and name not in configs):
            continue
        values, stderr = _metric_values(entry)
        cfg = configs.get(name) or {}
        meta = cfg.get("metadata") or {}
        td = TaskData(
            name=name,
            values=values,
            stderr=stderr,
            repeats=cfg.get("repeats"),
            generation_kwargs=dict(cfg.get("generation_kwargs") or {}),
            settings=dict(meta.get("diversity_settings") or {}),
            task_hash=hashes.get(name),
            version=(data.get("versions") or {}).get(name),
            n_docs=(n_samples.get(name) or {}).get("effective"),
            source=str(path),
        )
        samples = _find_samples(path.parent, name, stamp)
        if samples is not None:
            td.per_prompt, td.doc_hashes = read_samples_file(samples)
            td.samples_source = str(samples)
            if stamp and _datetime_from_name(samples.name) != stamp:
                notes.append(f"{name}: samples taken from {samples.name} (timestamp differs from {path.name})")
        tasks[name] = td
    return short_model_name(data.get("model_name"), path.parent.name), tasks, notes


def short_model_name(model_name: str | None, fallback: str) -> str:
    """A label a person recognises: the last part of the model's name or path (``/ckpt/dpo/`` -> ``dpo``,
    ``allenai/Olmo-3-7B`` -> ``Olmo-3-7B``), never lm-eval's sanitised form (``__ckpt__dpo``)."""
    name = str(model_name or "").rstrip("/\\")
    short = re.split(r"[/\\]", name)[-1] if name else ""
    return short or fallback


def display_path(path: str) -> str:
    """A path for reports: relative to the working directory when under it, else its last two parts, so that a
    report names no absolute path of the machine that produced it."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(Path("...", *p.parts[-2:]))


def _find_samples(folder: Path, task: str, stamp: str | None) -> Path | None:
    if stamp:
        exact = folder / f"samples_{task}_{stamp}.jsonl"
        if exact.is_file():
            return exact
    hits = [p for p in folder.glob(f"samples_{task}_*.jsonl") if is_regular(p) and _task_of(p) == task]
    return max(hits, key=lambda p: _datetime_from_name(p.name)) if hits else None


def _task_of(path: Path) -> str | None:
    try:
        return task_name_from_filename(path)
    except SamplesFormatError:
        return None


def load_score_json(path: Path, data: dict) -> tuple[str, dict[str, TaskData]]:
    """Tasks of a ``lm-eval-diversity score`` JSON (per-input means as the metric values, per-prompt rows kept)."""
    settings = data.get("settings") or {}
    if not isinstance(settings, dict) or not isinstance(data.get("tasks"), dict):
        raise CompareError(f"{path}: 'settings' and 'tasks' must be objects")
    tasks: dict[str, TaskData] = {}
    for name, entry in data["tasks"].items():
        where = f"{path}: tasks[{name!r}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics") or {}, dict):
            raise CompareError(f"{where}: must be an object with a 'metrics' object")
        if not all(isinstance(v, dict) for v in (entry.get("metrics") or {}).values()):
            raise CompareError(f"{where}.metrics: every metric must map levels to values")
        values: dict[str, float] = {}
        for metric, levels in (entry.get("metrics") or {}).items():
            values[metric] = as_float(levels.get("per_input_mean"))
            for lvl in ("across_input", "overall"):
                if lvl in levels:
                    values[f"{metric}_{lvl}"] = as_float(levels.get(lvl))
        rows_list = entry.get("per_prompt")
        per_prompt = None
        if isinstance(rows_list, list):
            per_prompt = {}
            for i, row in enumerate(rows_list):
                if not isinstance(row, dict) or "doc_id" not in row:
                    raise CompareError(f"{where}.per_prompt[{i}]: must be an object with a 'doc_id'")
                if row["doc_id"] in per_prompt:
                    raise CompareError(f"{where}.per_prompt[{i}]: duplicate doc_id {row['doc_id']!r}")
                per_prompt[row["doc_id"]] = {k: (v if k == "doc_id" else as_float(v)) for k, v in row.items()}
            keys = {k for row in per_prompt.values() for k in row if k != "doc_id"}
            for k in sorted(keys - set(values)):
                values[k] = nanmean(r.get(k) for r in per_prompt.values())
        tasks[name] = TaskData(
            name=name,
            values=values,
            repeats=entry.get("k"),
            settings=dict(settings),
            n_docs=entry.get("n_prompts"),
            per_prompt=per_prompt,
            source=str(path),
            samples_source=str(path) if per_prompt is not None else None,
        )
    return path.stem, tasks


def load_runs(path_str: str) -> list[Run]:
    """One or more runs from a RUN argument (a directory may hold several model folders: one run each)."""
    path = Path(path_str)
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CompareError(f"{path}: cannot read JSON ({exc})") from exc
        if isinstance(data, dict) and "tasks" in data and "settings" in data:
            model, tasks = load_score_json(path, data)
            return [Run(label=model, path=str(path), model_name=model, tasks=tasks)]
        model, tasks, notes = load_results_file(path)
        return [Run(label=model, path=str(path), model_name=model, tasks=tasks, notes=notes)]
    if path.exists() and not path.is_dir():
        raise CompareError(f"{path}: not a regular file or directory")
    if not path.is_dir():
        raise CompareError(f"{path}: no such file or directory")
    files = [p for p in path.rglob("results_*.json") if _RESULTS_RE.match(p.name) and is_regular(p)]
    if not files:
        raise CompareError(f"{path}: no results_*.json under this directory (is it an lm-eval --output_path?)")
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    runs = []
    for folder in sorted(by_folder):
        group = sorted(by_folder[folder], key=lambda p: _RESULTS_RE.match(p.name).group(1))
        tasks: dict[str, TaskData] = {}
        notes: list[str] = []
        model = folder.name
        for f in group:  # oldest first: newer files overwrite tasks they share
            model, ftasks, fnotes = load_results_file(f)
            notes.extend(fnotes)
            for t in ftasks:
                if t in tasks:
                    notes.append(f"{t}: newer {f.name} replaces {Path(tasks[t].source).name}")
            tasks.update(ftasks)
        if len(group) > 1:
            notes.insert(
                0, f"merged {len(group)} results files in {display_path(str(folder))} by task (newest wins per task)"
            )
        runs.append(Run(label=model, path=str(folder), model_name=model, tasks=tasks, notes=notes))
    return runs


def load_lineages(path_str: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Lineages from YAML/JSON: ``{lineages: {name: stages}}`` (or the mapping at top level).

    ``stages`` is an ordered mapping ``label: run path``, or a list of ``{label: path}`` /
    ``{label: ..., run: ...}`` items. Relative run paths are resolved against the lineage file's folder.
    """
    path = Path(path_str)
    if not path.is_file():
        raise CompareError(f"{path}: lineage file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is bad input
        raise CompareError(f"{path}: cannot parse lineage file ({exc})") from exc
    if isinstance(data, dict) and "lineages" in data:
        data = data["lineages"]
    if not isinstance(data, dict) or not data:
        raise CompareError(f"{path}: expected a mapping 'lineages: {{name: stages}}'")
    out = []
    for name, stages in data.items():
        items: list[tuple[str, str]] = []
        if isinstance(stages, dict):
            items = [(str(k), str(v)) for k, v in stages.items()]
        elif isinstance(stages, list):
            for st in stages:
                if isinstance(st, dict) and "run" in st:
                    items.append((str(st.get("label", st["run"])), str(st["run"])))
                elif isinstance(st, dict) and len(st) == 1:
                    ((k, v),) = st.items()
                    items.append((str(k), str(v)))
                else:
                    raise CompareError(f"{path}: lineage {name!r}: bad stage {st!r}")
        else:
            raise CompareError(f"{path}: lineage {name!r}: stages must be a mapping or a list")
        if not items:
            raise CompareError(f"{path}: lineage {name!r} has no stages")
        resolved = [(lbl, str(p if Path(p).is_absolute() else (path.parent / p))) for lbl, p in items]
        out.append((str(name), resolved))
    return out


# ---------------------------------------------------------------- analysis


def _task_key(name: str, known: list[str]) -> str:
    if name in known:
        return name
    if TASK_PREFIX + name in known:
        return TASK_PREFIX + name
    raise CompareError(f"--tasks / gate: unknown task {name!r}; tasks in these runs: {', '.join(known)}")


def is_verifiable(task: str, runs: list[Run]) -> bool:
    short = task[len(TASK_PREFIX) :] if task.startswith(TASK_PREFIX) else task
    if short in VERIFIABLE_TASKS:
        return True
    return any("sbert_correct" in r.tasks[task].values for r in runs if task in r.tasks)


def _per_prompt_values(td: TaskData, metric: str) -> dict[Any, float] | None:
    """``{doc_id: value}`` of a per-prompt metric; None when there are none (corpus-level metrics never have any:
    every doc carries the same task-level number, so resampling docs would give a false zero-width CI)."""
    if td.per_prompt is None or metric.endswith(("_across_input", "_overall")):
        return None
    if not any(metric in row for row in td.per_prompt.values()):
        return None
    return {d: as_float(row.get(metric)) for d, row in td.per_prompt.items()}


def _no_ci_reason(td: TaskData, metric: str) -> str:
    if metric.endswith(("_across_input", "_overall")):
        return "corpus-level value: no per-prompt CI"
    if td.per_prompt is None:
        return "no per-prompt values (samples file not found)"
    return f"no per-prompt values of {metric}"


def comparability(runs: list[Run], ref: Run, tasks: list[str]) -> list[dict]:
    """Per task, every setting in which a run differs from the reference run (only where both values are known)."""
    out = []
    for run in runs:
        if run is ref:
            continue
        for t in tasks:
            a, b = ref.tasks[t], run.tasks[t]
            fields: list[tuple[str, Any, Any]] = [
                ("task_hash", a.task_hash, b.task_hash),
                ("task_version", a.version, b.version),
                ("n_docs", a.n_docs, b.n_docs),
                ("K", a.repeats, b.repeats),
            ]
            fields += [(k, a.generation_kwargs.get(k), b.generation_kwargs.get(k)) for k in GEN_KEYS]
            fields += [(k, a.settings.get(k), b.settings.get(k)) for k in SETTING_KEYS]
            if a.per_prompt is not None and b.per_prompt is not None:
                ia, ib = set(a.per_prompt), set(b.per_prompt)
                if ia != ib:
                    fields.append(("doc_ids", f"{len(ia - ib)} only here", f"{len(ib - ia)} only here"))
                diff_hash = [
                    d for d in ia & ib if d in a.doc_hashes and d in b.doc_hashes and a.doc_hashes[d] != b.doc_hashes[d]
                ]
                if diff_hash:
                    fields.append(("doc_hash", "", f"{len(diff_hash)} common doc ids with a different doc"))
            for name, va, vb in fields:
                if name in ("doc_ids", "doc_hash") or (va is not None and vb is not None and va != vb):
                    out.append(
                        {
                            "task": t,
                            "run": run.label,
                            "reference": ref.label,
                            "field": name,
                            "reference_value": va,
                            "value": vb,
                        }
                    )
    return out


def _cell(td: TaskData, metric: str, iters: int, seed: int, alpha: float = 0.05) -> dict:
    value = td.values.get(metric, math.nan)
    cell: dict[str, Any] = {
        "value": value,
        "stderr": td.stderr.get(metric, math.nan),
        "ci_low": math.nan,
        "ci_high": math.nan,
        "n": None,
        "ci_note": "",
    }
    vals = _per_prompt_values(td, metric)
    if vals is None:
        cell["ci_note"] = _no_ci_reason(td, metric)
    else:
        ci = bootstrap_ci(vals.values(), iters=iters, seed=seed, alpha=alpha)
        cell.update(ci_low=ci["low"], ci_high=ci["high"], n=ci["n"])
        if math.isnan(value):
            cell["value"] = ci["estimate"]
    return cell


def build_report(
    runs: list[Run],
    baseline: Run | None,
    tasks: list[str],
    metrics: list[str],
    iters: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    missing: dict[str, list[str]] | None = None,
    notes: list[str] | None = None,
) -> dict:
    """Everything the outputs show, as plain data (NaN = undefined)."""
    ref = baseline or runs[0]
    cells: list[dict] = []
    for run in runs:
        for t in tasks:
            for m in metrics:
                td = run.tasks[t]
                if m not in td.values and _per_prompt_values(td, m) is None:
                    continue
                c = {"run": run.label, "task": t, "metric": m, **_cell(td, m, iters, seed, alpha)}
                if baseline is not None and run is not baseline:
                    _add_change(c, td, baseline.tasks[t], m, iters=iters, seed=seed, alpha=alpha)
                cells.append(c)
        for m in metrics:
            if any(c["metric"] == m and c["run"] == run.label for c in cells):
                cells.append(_group_cell(run, baseline, tasks, m, iters, seed, alpha))
    splits = _splits(runs, baseline, tasks) if baseline is not None else []
    notes = list(notes or [])
    for m in metrics:
        if not any(c["metric"] == m for c in cells):
            notes.append(f"metric {m}: not found in any compared task")
    return {
        "runs": [
            {
                "label": r.label,
                "path": display_path(r.path),
                "model_name": r.model_name,
                "per_prompt_tasks": [t for t in tasks if r.tasks[t].per_prompt is not None],
                "notes": r.notes,
            }
            for r in runs
        ],
        "baseline": baseline.label if baseline else None,
        "reference": ref.label,
        "tasks": tasks,
        "metrics": metrics,
        "missing_tasks": missing or {},
        "cells": cells,
        "checks": comparability(runs, ref, tasks),
        "splits": splits,
        "gate": [],
        "notes": notes,
        "bootstrap": {"iters": iters, "seed": seed, "alpha": alpha},
    }


def task_value(td: TaskData, metric: str) -> float:
    """The task's value of a metric: the results JSON's, else the NaN-mean of the per-prompt values, else NaN."""
    v = as_float(td.values.get(metric))
    if math.isnan(v):
        vals = _per_prompt_values(td, metric)
        if vals is not None:
            v = nanmean(vals.values())
    return v


def _add_change(c: dict, td: TaskData, bd: TaskData, m: str, iters: int, seed: int, alpha: float = 0.05) -> None:
    """Change vs baseline: ``change_pct = 100 (v - b) / |b|`` and the CI of the paired difference ``diff``."""
    v, b = as_float(c["value"]), task_value(bd, m)
    c["baseline_value"] = b
    c["change_pct"] = 100.0 * (v - b) / abs(b) if not (math.isnan(v) or math.isnan(b) or b == 0) else math.nan
    va, vb = _per_prompt_values(td, m), _per_prompt_values(bd, m)
    if va is not None and vb is not None:
        d = paired_bootstrap_diff(va, vb, iters=iters, seed=seed, alpha=alpha)
        c.update(
            diff=d["estimate"], diff_low=d["low"], diff_high=d["high"], diff_n=d["n"], diff_method="paired bootstrap"
        )
    else:
        sa, sb = as_float(td.stderr.get(m)), as_float(bd.stderr.get(m))
        c.update(diff=v - b, diff_n=None)
        if not (math.isnan(sa) or math.isnan(sb)):
            half = NormalDist().inv_cdf(1 - alpha / 2) * math.sqrt(sa * sa + sb * sb)
            c.update(diff_low=v - b - half, diff_high=v - b + half, diff_method="normal approx. from stderr")
        else:
            c.update(diff_low=math.nan, diff_high=math.nan, diff_method="point estimate (no CI)")


def _group_cell(
    run: Run, baseline: Run | None, tasks: list[str], m: str, iters: int, seed: int, alpha: float = 0.05
) -> dict:
    """Unweighted mean over the tasks where the metric is defined; CI by bootstrap stratified by task."""
    vals = [(t, as_float(run.tasks[t].values.get(m))) for t in tasks]
    used = [t for t, v in vals if not math.isnan(v)]
    value = nanmean(v for _, v in vals)
    c: dict[str, Any] = {
        "run": run.label,
        "task": GROUP,
        "metric": m,
        "value": value,
        "stderr": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "n": None,
        "ci_note": "",
        "tasks_used": used,
    }
    pp = {t: _per_prompt_values(run.tasks[t], m) for t in used}
    lacking = [t for t in used if pp[t] is None]
    if used and not lacking:
        ci = stratified_bootstrap_mean([pp[t].values() for t in used], iters=iters, seed=seed, alpha=alpha)
        c.update(ci_low=ci["low"], ci_high=ci["high"], n=ci["n"])
    elif used:
        c["ci_note"] = f"no per-prompt values for {', '.join(lacking)}"
    if baseline is not None and run is not baseline:
        bvals = {t: as_float(baseline.tasks[t].values.get(m)) for t in tasks}
        both = [t for t in used if not math.isnan(bvals[t])]
        b = nanmean(bvals[t] for t in both)
        v = nanmean(as_float(run.tasks[t].values.get(m)) for t in both)
        c["baseline_value"] = nanmean(bvals.values())
        c["change_pct"] = 100.0 * (v - b) / abs(b) if not (math.isnan(v) or math.isnan(b) or b == 0) else math.nan
        bpp = {t: _per_prompt_values(baseline.tasks[t], m) for t in both}
        if both and all(pp.get(t) is not None and bpp[t] is not None for t in both):
            d = stratified_paired_diff([(pp[t], bpp[t]) for t in both], iters=iters, seed=seed, alpha=alpha)
            c.update(
                diff=d["estimate"],
                diff_low=d["low"],
                diff_high=d["high"],
                diff_n=d["n"],
                diff_method="paired bootstrap, stratified by task",
            )
        else:
            c.update(
                diff=v - b, diff_low=math.nan, diff_high=math.nan, diff_n=None, diff_method="point estimate (no CI)"
            )
    return c


def _splits(runs: list[Run], baseline: Run, tasks: list[str]) -> list[dict]:
    out = []
    for run in runs:
        if run is baseline:
            continue
        for t in tasks:
            if not is_verifiable(t, [run, baseline]):
                continue
            for m in SPLIT_METRICS:
                for matched in (False, True):
                    row: dict[str, Any] = {"run": run.label, "task": t, "metric": m, "matched": matched}
                    b, r = baseline.tasks[t].per_prompt, run.tasks[t].per_prompt
                    reason = None
                    if b is None or r is None:
                        who = [x.label for x, pp in ((baseline, b), (run, r)) if pp is None]
                        reason = f"no per-prompt values (samples file missing) for {', '.join(who)}"
                    elif not any(f"{m}_correct" in row_ for row_ in list(b.values()) + list(r.values())):
                        reason = f"no per-prompt {m}_correct values"
                    if reason:
                        row.update(status="unavailable", reason=reason)
                    else:
                        row.update(status="ok", **split_from_prompts(b, r, metric=m, matched=matched))
                    out.append(row)
    return out


# ---------------------------------------------------------------- gate


def parse_gate(spec: str) -> tuple[str | None, str, float]:
    """``METRIC=FRACTION`` or ``TASK/METRIC=FRACTION`` -> (task or None for the group average, metric, fraction)."""
    if "=" not in spec:
        raise CompareError(f"--fail_if_drop {spec!r}: expected METRIC=FRACTION, e.g. sbert=0.05")
    target, frac_s = spec.rsplit("=", 1)
    try:
        frac = float(frac_s)
    except ValueError as exc:
        raise CompareError(f"--fail_if_drop {spec!r}: FRACTION must be a number") from exc
    if not 0 <= frac < math.inf:
        raise CompareError(f"--fail_if_drop {spec!r}: FRACTION must be a finite number >= 0 (a relative drop)")
    task, _, metric = target.rpartition("/")
    if not metric:
        raise CompareError(f"--fail_if_drop {spec!r}: empty metric")
    return (task or None), metric, frac


def evaluate_gates(report: dict, specs: list[str], runs: list[Run], baseline: Run, iters: int, seed: int) -> bool:
    """Fill ``report['gate']``; True when any gate fails.

    For every candidate run C (each run but the baseline B) and every ``METRIC=FRACTION``:
    let Δ = C − B (task metric or task-averaged group metric) with its (1−alpha) CI [lo, hi]; the gate FAILS iff
    ``hi < −FRACTION × |value(B)|``. The CI is a paired bootstrap over prompts (stratified by task for a group
    metric); without per-prompt values a normal interval from lm-eval's stderrs is used, and without those the
    point estimate (lo = hi = Δ), flagged in ``method``.
    """
    failed = False
    known = report["tasks"]
    for spec in specs:
        task, metric, frac = parse_gate(spec)
        tkey = GROUP if task is None or task == GROUP else _task_key(task, known)
        for run in runs:
            if run is baseline:
                continue
            cell = next(
                (c for c in report["cells"] if c["run"] == run.label and c["task"] == tkey and c["metric"] == metric),
                None,
            )
            if cell is None:
                raise CompareError(f"--fail_if_drop {spec!r}: no {metric} value for {tkey} in run {run.label}")
            if tkey == GROUP:
                bcell = next(
                    (
                        c
                        for c in report["cells"]
                        if c["run"] == baseline.label and c["task"] == GROUP and c["metric"] == metric
                    ),
                    None,
                )
                if bcell is None:
                    raise CompareError(f"--fail_if_drop {spec!r}: no {metric} value in the baseline {baseline.label}")
                base_v = as_float(bcell["value"])
            else:
                base_v = as_float(cell.get("baseline_value"))
            diff = as_float(cell.get("diff"))
            lo, hi = as_float(cell.get("diff_low")), as_float(cell.get("diff_high"))
            method = cell.get("diff_method", "")
            if math.isnan(hi):
                lo = hi = diff
            threshold = -frac * abs(base_v)
            if math.isnan(hi) or math.isnan(threshold):
                raise CompareError(
                    f"--fail_if_drop {spec!r}: {metric} of {tkey} is undefined for {run.label} or the baseline"
                )
            fail = hi < threshold
            failed = failed or fail
            report["gate"].append(
                {
                    "spec": spec,
                    "run": run.label,
                    "task": tkey,
                    "metric": metric,
                    "baseline_value": base_v,
                    "diff": diff,
                    "diff_low": lo,
                    "diff_high": hi,
                    "threshold": threshold,
                    "method": method,
                    "failed": fail,
                }
            )
    return failed


# ---------------------------------------------------------------- CLI


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
    p.add_argument(
        "--format", default="table", choices=("table", "markdown", "csv", "json", "html"), help="report format"
    )
    p.add_argument("--output", default=None, help="write the report here instead of stdout")
    p.add_argument("--lineage", default=None, help="YAML/JSON file of lineages (ordered stages label -> run path)")
    p.add_argument("--plot", default=None, help="PNG of diversity along each lineage (or along the RUNs in order)")
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


def _unique_labels(runs: list[Run]) -> None:
    seen: dict[str, int] = {}
    for r in runs:
        if r.label in seen:
            seen[r.label] += 1
            r.label = f"{r.label}#{seen[r.label]}"
        else:
            seen[r.label] = 1


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def prepare(
    args: argparse.Namespace,
) -> tuple[list[Run], Run | None, list[tuple[str, list[tuple[str, Run]]]], list[str], dict, list[str]]:
    """Load runs, baseline and lineages; choose the common tasks.

    Returns (runs, baseline, lineages, tasks, missing, notes).
    """
    runs: list[Run] = []
    for rp in args.runs:
        runs.extend(load_runs(rp))
    if args.labels:
        labels = [x.strip() for x in args.labels.split(",")]
        if len(labels) != len(runs):
            raise CompareError(
                f"--labels has {len(labels)} labels for {len(runs)} runs ({', '.join(r.path for r in runs)})"
            )
        for r, lbl in zip(runs, labels):
            r.label = lbl
    lineages: list[tuple[str, list[tuple[str, Run]]]] = []
    if args.lineage:
        for name, stages in load_lineages(args.lineage):
            staged = []
            for lbl, p in stages:
                run = next((r for r in runs if _same_path(r.path, p)), None)
                if run is None:
                    loaded = load_runs(p)
                    if len(loaded) != 1:
                        raise CompareError(
                            f"lineage {name!r} stage {lbl!r}: {p} holds {len(loaded)} models; point at one"
                        )
                    run = loaded[0]
                    run.label = lbl
                    runs.append(run)
                staged.append((lbl, run))
            lineages.append((name, staged))
    baseline = None
    if args.baseline:
        baseline = next((r for r in runs if r.label == args.baseline or _same_path(r.path, args.baseline)), None)
        if baseline is None:
            loaded = load_runs(args.baseline)
            if len(loaded) != 1:
                raise CompareError(f"--baseline {args.baseline}: holds {len(loaded)} models; point at one")
            baseline = loaded[0]
            runs.insert(0, baseline)
    if not runs:
        raise CompareError("no runs: give RUN paths or --lineage")
    if args.fail_if_drop:
        if len(runs) < 2:
            raise CompareError("--fail_if_drop needs a baseline and at least one candidate run")
        baseline = baseline or runs[0]
    _unique_labels(runs)
    all_tasks = sorted({t for r in runs for t in r.tasks})
    if not all_tasks:
        raise CompareError(f"no tasks in {', '.join(r.path for r in runs)}")
    if args.tasks:
        wanted = [_task_key(x.strip(), all_tasks) for x in args.tasks.split(",") if x.strip()]
    else:
        wanted = all_tasks
    missing = {t: [r.label for r in runs if t not in r.tasks] for t in wanted}
    missing = {t: v for t, v in missing.items() if v}
    tasks = [t for t in wanted if t not in missing]
    notes = [f"{t}: missing in {', '.join(v)}; left out of the comparison" for t, v in missing.items()]
    if not tasks:
        raise CompareError("no task is present in every run: " + "; ".join(notes))
    return runs, baseline, lineages, tasks, missing, notes


def run_compare(argv: list[str]) -> int:
    """The ``compare`` subcommand. Returns 0 (ok), 1 (a --fail_if_drop gate failed) or 2 (bad input)."""
    from lm_eval_diversity import report as rep

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        if not 1 <= args.bootstrap_iters <= MAX_BOOTSTRAP_ITERS:
            raise CompareError(f"--bootstrap_iters {args.bootstrap_iters}: must be in [1, {MAX_BOOTSTRAP_ITERS}]")
        if not 0 < args.alpha < 1:
            raise CompareError("--alpha must be in (0, 1)")
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        if not metrics:
            raise CompareError(f"--metrics {args.metrics!r}: no metric given")
        runs, baseline, lineages, tasks, missing, notes = prepare(args)
        inputs = [r.path for r in runs] + [args.lineage or ""]
        inputs += [p for r in runs for td in r.tasks.values() for p in (td.source, td.samples_source) if p]
        out = check_output_path(args.output, inputs, "--output") if args.output else None
        if args.plot:
            check_output_path(args.plot, inputs, "--plot")
        report = build_report(
            runs,
            baseline,
            tasks,
            metrics,
            iters=args.bootstrap_iters,
            seed=args.seed,
            alpha=args.alpha,
            missing=missing,
            notes=notes,
        )
        if args.strict and report["checks"]:
            raise CompareError(
                "--strict: the runs are not comparable: "
                + "; ".join(
                    f"{c['run']} vs {c['reference']} {c['task']}: {c['field']} "
                    f"{c['reference_value']!r} != {c['value']!r}"
                    for c in report["checks"]
                )
            )
        if args.metrics != ",".join(DEFAULT_METRICS):
            absent = [m for m in metrics if not any(c["metric"] == m for c in report["cells"])]
            if absent:
                found_in = ", ".join(tasks)
                raise CompareError(f"--metrics: {', '.join(absent)} not found in any compared task ({found_in})")
        failed = (
            evaluate_gates(report, args.fail_if_drop, runs, baseline, args.bootstrap_iters, args.seed)
            if baseline
            else False
        )
        explicit_tasks = bool(args.tasks)
        report["lineages"] = [
            {"name": n, "stages": [{"label": lbl, "run": r.label} for lbl, r in st]} for n, st in lineages
        ]
        plot_png = None
        if args.plot:
            series = lineages or [("runs", [(r.label, r) for r in runs])]
            plot_png = rep.plot_lineages(report, series, metrics, args.plot, per_task=explicit_tasks)
            report["plot"] = args.plot
        text = rep.render(report, args.format, plot_png=plot_png)
        if out is not None:
            write_atomic(out, text)
    except KeyboardInterrupt:
        print("lm-eval-diversity compare: interrupted; no output written", file=sys.stderr)
        return 130
    except (ValueError, KeyError, OSError) as exc:  # CompareError is a ValueError
        msg = f"{exc.filename}: {exc.strerror or exc}" if isinstance(exc, OSError) and exc.filename else str(exc)
        print(f"lm-eval-diversity compare: error: {msg}", file=sys.stderr)
        return 2
    if out is not None:
        print(rep.summary_lines(report), file=sys.stderr)
    else:
        print(text)
    for g in report["gate"]:
        if g["failed"]:
            print(
                f"GATE FAILED {g['spec']}: {g['run']} {g['task']}/{g['metric']} diff CI upper {g['diff_high']:.4f} < "
                f"threshold {g['threshold']:.4f} ({g['method']})",
                file=sys.stderr,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_compare(sys.argv[1:]))
