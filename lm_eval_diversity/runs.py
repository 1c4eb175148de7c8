"""Finished runs read back from disk: lm-eval results JSONs (with their samples files) and ``score`` JSONs.

A RUN is an lm-eval output directory (searched recursively for ``results_*.json``; one run per model folder), one
results JSON file, or a ``lm-eval-diversity score`` JSON (top-level ``settings`` and ``tasks``). Per-prompt values
come from the ``samples_<task>_<datetime>.jsonl`` files next to a results file (read by
:mod:`lm_eval_diversity.samples`) or from the score JSON's ``per_prompt`` lists. ``compare`` reads its runs here, and
so does a run given a baseline for its QC/residual split; nothing here knows of reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_diversity.analysis import as_float, nanmean
from lm_eval_diversity.samples import SamplesFormatError, is_regular, read_samples_file, task_name_from_filename

_RESULTS_RE = re.compile(r"^results_(.+)\.json$")


class RunFormatError(ValueError):
    """A run cannot be read; the message names the path at fault."""


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


def _datetime_from_name(name: str) -> str:
    stem = Path(name).stem
    return stem[stem.rfind("_") + 1 :]


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


def _read_results_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFormatError(f"{path}: cannot read results JSON ({exc})") from exc
    if not isinstance(data, dict) or "results" not in data:
        raise RunFormatError(f"{path}: not an lm-eval results JSON (no 'results' key)")
    if not isinstance(data["results"], dict):
        raise RunFormatError(f"{path}: key 'results' must be an object of tasks, got {type(data['results']).__name__}")
    for key in ("configs", "task_hashes", "n-samples"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise RunFormatError(f"{path}: key {key!r} must be an object, got {type(data[key]).__name__}")
    for name, entry in data["results"].items():
        if not isinstance(entry, dict):
            raise RunFormatError(f"{path}: results[{name!r}] must be an object, got {type(entry).__name__}")
    return data


def load_results_file(path: Path) -> tuple[str, dict[str, TaskData], list[str]]:
    """(model name, tasks, notes) from one lm-eval results JSON and the samples files next to it."""
    data = _read_results_json(path)
    notes: list[str] = []
    groups = set(data.get("groups") or {}) | set(data.get("group_subtasks") or {})
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
            try:
                sf = read_samples_file(samples, task=name)
            except SamplesFormatError as exc:
                raise RunFormatError(str(exc)) from None
            td.per_prompt, td.doc_hashes = sf.values, sf.doc_hashes
            td.samples_source = str(samples)
            if stamp and _datetime_from_name(samples.name) != stamp:
                notes.append(f"{name}: samples taken from {samples.name} (timestamp differs from {path.name})")
        tasks[name] = td
    return run_model_name(data, path.parent.name), tasks, notes


def _model_arg(model_args: Any, key: str) -> str | None:
    """One key of lm-eval's recorded ``model_args`` (a ``k=v,k2=v2`` string or a mapping)."""
    if isinstance(model_args, dict):
        value = model_args.get(key)
        return str(value) if value else None
    if isinstance(model_args, str):
        for part in model_args.split(","):
            k, sep, v = part.partition("=")
            if sep and k.strip() == key and v.strip():
                return v.strip()
    return None


def run_model_name(data: dict, fallback: str) -> str:
    """The model of a results JSON as a person names it: a GGUF model by its file (``SmolLM2-135M-Instruct.Q4_1``:
    the folder it sits in names the package, not the model), else :func:`short_model_name`."""
    gguf = _model_arg((data.get("config") or {}).get("model_args"), "gguf_file")
    if gguf:
        return re.split(r"[/\\]", gguf)[-1].removesuffix(".gguf")
    return short_model_name(data.get("model_name"), fallback)


def recorded_run(samples: Path, task: str) -> tuple[Path, dict] | None:
    """The results JSON lm-eval wrote with a samples file (``results_<stamp>.json`` beside
    ``samples_<task>_<stamp>.jsonl``) and the task's config in it; None when there is none or it lacks the task."""
    stamp = _datetime_from_name(samples.name)
    path = samples.parent / f"results_{stamp}.json"
    if not is_regular(path):
        return None
    config = (_read_results_json(path).get("configs") or {}).get(task)
    return (path, config) if isinstance(config, dict) else None


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


def _per_prompt_rows(where: str, rows_list: list) -> dict[Any, dict]:
    per_prompt: dict[Any, dict] = {}
    for i, row in enumerate(rows_list):
        if not isinstance(row, dict) or "doc_id" not in row:
            raise RunFormatError(f"{where}.per_prompt[{i}]: must be an object with a 'doc_id'")
        if row["doc_id"] in per_prompt:
            raise RunFormatError(f"{where}.per_prompt[{i}]: duplicate doc_id {row['doc_id']!r}")
        for k, v in row.items():
            if k != "doc_id" and not (v is None or isinstance(v, (int, float))):
                raise RunFormatError(
                    f"{where}.per_prompt[{i}].{k}: expected a number or null, got {type(v).__name__} {v!r:.40}"
                )
        per_prompt[row["doc_id"]] = {k: (v if k == "doc_id" else as_float(v)) for k, v in row.items()}
    return per_prompt


def load_score_json(path: Path, data: dict) -> tuple[str, dict[str, TaskData]]:
    """Tasks of a ``lm-eval-diversity score`` JSON (per-input means as the metric values, per-prompt rows kept)."""
    settings = data.get("settings") or {}
    if not isinstance(settings, dict) or not isinstance(data.get("tasks"), dict):
        raise RunFormatError(f"{path}: 'settings' and 'tasks' must be objects")
    tasks: dict[str, TaskData] = {}
    for name, entry in data["tasks"].items():
        where = f"{path}: tasks[{name!r}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics") or {}, dict):
            raise RunFormatError(f"{where}: must be an object with a 'metrics' object")
        if not all(isinstance(v, dict) for v in (entry.get("metrics") or {}).values()):
            raise RunFormatError(f"{where}.metrics: every metric must map levels to values")
        values: dict[str, float] = {}
        for metric, levels in (entry.get("metrics") or {}).items():
            values[metric] = as_float(levels.get("per_input_mean"))
            for lvl in ("across_input", "overall"):
                if lvl in levels:
                    values[f"{metric}_{lvl}"] = as_float(levels.get(lvl))
        rows_list = entry.get("per_prompt")
        per_prompt = None
        if isinstance(rows_list, list):
            per_prompt = _per_prompt_rows(where, rows_list)
            keys = {k for row in per_prompt.values() for k in row if k != "doc_id"}
            for k in sorted(keys - set(values)):
                values[k] = nanmean(r.get(k) for r in per_prompt.values())
        tasks[name] = TaskData(
            name=name,
            values=values,
            repeats=entry.get("k"),
            settings={**settings, **_reward_calibration(entry)},
            n_docs=entry.get("n_prompts"),
            per_prompt=per_prompt,
            source=str(path),
            samples_source=str(path) if per_prompt is not None else None,
        )
    return path.stem, tasks


def _reward_calibration(entry: dict) -> dict:
    """``{"reward_calibration": "<model>; threshold T; cut-offs <digest>"}`` from a score JSON task's recorded reward
    calibration (two runs are comparable on reward metrics only when these agree), else nothing."""
    import hashlib

    diagnostics = entry.get("diagnostics")
    reward = diagnostics.get("reward") if isinstance(diagnostics, dict) else None
    cal = reward.get("calibration") if isinstance(reward, dict) else None
    if not isinstance(cal, dict):
        return {}
    digest = hashlib.sha256(json.dumps(cal.get("cutoffs")).encode()).hexdigest()[:12]
    return {"reward_calibration": f"{cal.get('model')}; threshold {cal.get('threshold')!r}; cut-offs {digest}"}


def _load_folder(folder: Path, files: list[Path]) -> Run:
    """One model folder's results files merged by task, oldest first (newer files replace the tasks they share)."""
    group = sorted(files, key=lambda p: _RESULTS_RE.match(p.name).group(1))
    tasks: dict[str, TaskData] = {}
    notes: list[str] = []
    model = folder.name
    for f in group:
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
    return Run(label=model, path=str(folder), model_name=model, tasks=tasks, notes=notes)


def load_runs(path_str: str) -> list[Run]:
    """One or more runs from a RUN argument (a directory may hold several model folders: one run each)."""
    path = Path(path_str)
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunFormatError(f"{path}: cannot read JSON ({exc})") from exc
        if isinstance(data, dict) and "tasks" in data and "settings" in data:
            model, tasks = load_score_json(path, data)
            return [Run(label=model, path=str(path), model_name=model, tasks=tasks)]
        model, tasks, notes = load_results_file(path)
        return [Run(label=model, path=str(path), model_name=model, tasks=tasks, notes=notes)]
    if path.exists() and not path.is_dir():
        raise RunFormatError(f"{path}: not a regular file or directory")
    if not path.is_dir():
        raise RunFormatError(f"{path}: no such file or directory")
    files = [p for p in path.rglob("results_*.json") if _RESULTS_RE.match(p.name) and is_regular(p)]
    if not files:
        raise RunFormatError(f"{path}: no results_*.json under this directory (is it an lm-eval --output_path?)")
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    return [_load_folder(folder, by_folder[folder]) for folder in sorted(by_folder)]
