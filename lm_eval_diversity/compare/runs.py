"""What ``compare`` compares: the runs of the RUN arguments, the baseline, the lineages and the common tasks.

Runs are read by :mod:`lm_eval_diversity.runs` (results JSONs with their samples files, score JSONs); this module
resolves the command line into them: labels, lineage files, the baseline, and the tasks every run has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_diversity.compare.errors import CompareError
from lm_eval_diversity.compare.gate import task_key
from lm_eval_diversity.runs import Run, load_runs


@dataclass
class Selection:
    """The runs to compare (baseline first when it was loaded from ``--baseline``), the lineages, the tasks."""

    runs: list[Run]
    baseline: Run | None
    lineages: list[tuple[str, list[tuple[str, Run]]]]
    tasks: list[str]
    missing: dict[str, list[str]] = field(default_factory=dict)  # task -> runs without it (left out)
    notes: list[str] = field(default_factory=list)


def _parse_lineage_file(path: Path) -> object:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is bad input
        raise CompareError(f"{path}: cannot parse lineage file ({exc})") from exc


def _stages(path: Path, name: str, stages: object) -> list[tuple[str, str]]:
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
    return items


def load_lineages(path_str: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Lineages from YAML/JSON: ``{lineages: {name: stages}}`` (or the mapping at top level).

    ``stages`` is an ordered mapping ``label: run path``, or a list of ``{label: path}`` /
    ``{label: ..., run: ...}`` items. Relative run paths are resolved against the lineage file's folder.
    """
    path = Path(path_str)
    if not path.is_file():
        raise CompareError(f"{path}: lineage file not found")
    data = _parse_lineage_file(path)
    if isinstance(data, dict) and "lineages" in data:
        data = data["lineages"]
    if not isinstance(data, dict) or not data:
        raise CompareError(f"{path}: expected a mapping 'lineages: {{name: stages}}'")
    out = []
    for name, stages in data.items():
        items = _stages(path, name, stages)
        resolved = [(lbl, str(p if Path(p).is_absolute() else (path.parent / p))) for lbl, p in items]
        out.append((str(name), resolved))
    return out


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


def _one_run(path: str, what: str) -> Run:
    loaded = load_runs(path)
    if len(loaded) != 1:
        raise CompareError(f"{what}: {path} holds {len(loaded)} models; point at one")
    return loaded[0]


def _lineage_runs(lineage_file: str, runs: list[Run]) -> list[tuple[str, list[tuple[str, Run]]]]:
    """The lineages with their runs: a stage's path already among ``runs`` is that run, else loaded and appended."""
    lineages = []
    for name, stages in load_lineages(lineage_file):
        staged = []
        for lbl, p in stages:
            run = next((r for r in runs if _same_path(r.path, p)), None)
            if run is None:
                run = _one_run(p, f"lineage {name!r} stage {lbl!r}")
                run.label = lbl
                runs.append(run)
            staged.append((lbl, run))
        lineages.append((name, staged))
    return lineages


def _baseline(spec: str, runs: list[Run]) -> Run:
    """``--baseline``: a run's label or path, else a path loaded and put first."""
    baseline = next((r for r in runs if r.label == spec or _same_path(r.path, spec)), None)
    if baseline is None:
        loaded = load_runs(spec)
        if len(loaded) != 1:
            raise CompareError(f"--baseline {spec}: holds {len(loaded)} models; point at one")
        baseline = loaded[0]
        runs.insert(0, baseline)
    return baseline


def select(
    run_paths: list[str],
    labels: str | None = None,
    lineage_file: str | None = None,
    baseline: str | None = None,
    tasks: str | None = None,
    gated: bool = False,
) -> Selection:
    """Load the runs, label them, add the lineages' and the baseline's, and choose the tasks every run has."""
    runs: list[Run] = [r for rp in run_paths for r in load_runs(rp)]
    if labels:
        names = [x.strip() for x in labels.split(",")]
        if len(names) != len(runs):
            raise CompareError(
                f"--labels has {len(names)} labels for {len(runs)} runs ({', '.join(r.path for r in runs)})"
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated or not all(names):
            what = f"repeats {', '.join(map(repr, repeated))}" if repeated else "has an empty label"
            raise CompareError(f"--labels {labels!r} {what}: give each run its own label")
        for r, lbl in zip(runs, names):
            r.label = lbl
    lineages = _lineage_runs(lineage_file, runs) if lineage_file else []
    base = _baseline(baseline, runs) if baseline else None
    if not runs:
        raise CompareError("no runs: give RUN paths or --lineage")
    if gated:
        if len(runs) < 2:
            raise CompareError("--fail_if_drop needs a baseline and at least one candidate run")
        base = base or runs[0]
    _unique_labels(runs)
    all_tasks = sorted({t for r in runs for t in r.tasks})
    if not all_tasks:
        raise CompareError(f"no tasks in {', '.join(r.path for r in runs)}")
    wanted = [task_key(x.strip(), all_tasks) for x in tasks.split(",") if x.strip()] if tasks else all_tasks
    missing = {t: [r.label for r in runs if t not in r.tasks] for t in wanted}
    missing = {t: v for t, v in missing.items() if v}
    chosen = [t for t in wanted if t not in missing]
    notes = [f"{t}: missing in {', '.join(v)}; left out of the comparison" for t, v in missing.items()]
    if not chosen:
        raise CompareError("no task is present in every run: " + "; ".join(notes))
    return Selection(runs, base, lineages, chosen, missing, notes)
