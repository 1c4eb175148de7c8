"""The sample viewer's data: per task, the prompts whose diversity dropped most, with each run's K outputs.

The outputs come from the runs' samples files (read by :func:`lm_eval_diversity.samples.read_samples_file`, the one
reader), CoT-stripped by the rule scoring uses (:func:`lm_eval_diversity.preprocess.strip_cot_with_diagnostics`);
the per-prompt values are the rows :mod:`lm_eval_diversity.runs` already read, so the viewer shows exactly the numbers
behind the report's cells. The amount is bounded (docs/report.md, "Size"): ``per_task`` prompts per task, each
output cut to :data:`MAX_OUTPUT_CHARS` and the prompt to :data:`MAX_PROMPT_CHARS` characters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_diversity.analysis import as_float
from lm_eval_diversity.catalogue.metrics import record
from lm_eval_diversity.compare.names import CORPUS_SUFFIXES, metric_higher_is_better
from lm_eval_diversity.runs import Run, TaskData

VIEWER_PROMPTS = 8  # default prompts per task (--viewer_prompts)
MAX_VIEWER_PROMPTS = 50  # the most --viewer_prompts allows (the page's size bound, docs/report.md)
MAX_OUTPUT_CHARS = 1200  # characters of one output shown (the rest is cut, and the cut is said)
MAX_PROMPT_CHARS = 1500  # characters of a prompt shown (its start and its end; the middle is cut)
EXTRA_VALUES = ("dup_rate", "k_correct", "acc")  # shown with the report's metrics when a prompt's row has them


@dataclass
class ShownOutput:
    """One output as shown: CoT-stripped text (cut), its full length, the earlier identical output, its verdict."""

    text: str
    chars: int
    duplicate_of: int | None  # 0-based index of the first output with the same stripped text (dup_rate's rule)
    correct: bool | None  # None: not graded (or the run did not log verdicts)


@dataclass
class RunOutputs:
    """One run's K outputs of one prompt and that prompt's per-prompt values."""

    run: str
    outputs: list[ShownOutput]
    values: dict[str, float]


@dataclass
class ShownPrompt:
    """One prompt: its doc id, a one-line title, the rendered prompt as the model saw it (cut), its drop, and each
    run's outputs (runs without the doc left out)."""

    doc_id: int
    title: str
    prompt: str
    drop: float
    runs: list[RunOutputs]


@dataclass
class TaskSamples:
    """The shown prompts of one task, in order (largest drop of ``metric`` first)."""

    task: str
    metric: str | None
    n_prompts: int
    prompts: list[ShownPrompt]
    notes: list[str] = field(default_factory=list)


@dataclass
class Viewer:
    """The sample viewer of a report: what is shown, and how the prompts were chosen."""

    per_task: int
    reference: str
    reference_role: str  # "baseline", or "first run" when the report has no baseline
    order: str
    tasks: list[TaskSamples]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN left as is; the page writer turns it into null)."""
        from dataclasses import asdict

        return asdict(self)


def ranking_metric(metrics: list[str], td: TaskData) -> str | None:
    """The metric that orders a task's prompts: the first of the report's diversity metrics (not a quality one, not
    corpus-level) with per-prompt values in ``td``."""
    rows = list((td.per_prompt or {}).values())
    for m in metrics:
        if m.endswith(CORPUS_SUFFIXES) or _is_quality(m):
            continue
        if any(not math.isnan(as_float(r.get(m))) for r in rows):
            return m
    return None


def _is_quality(metric: str) -> bool:
    try:
        return record(metric).graded
    except KeyError:
        return False


def _drop(ref_row: dict, rows: list[dict], metric: str) -> float:
    """How far the other runs fell below the reference on this prompt (the largest fall; a rise of a
    lower-is-better metric is a fall); NaN when no other run has the value."""
    sign = 1.0 if metric_higher_is_better(metric) else -1.0
    base = as_float(ref_row.get(metric))
    falls = [sign * (base - as_float(r.get(metric))) for r in rows]
    falls = [f for f in falls if not math.isnan(f)]
    return max(falls) if falls else math.nan


def _order(ref: Run, others: list[Run], task: str, metric: str | None) -> list[tuple[int, float]]:
    """(doc id, drop) of the task's prompts, the largest drop first (ties by doc id, undefined drops last); with one
    run, the least diverse first. Without the reference's per-prompt rows there is no drop: another run's prompts in
    doc id order."""
    rows = ref.tasks[task].per_prompt
    if not rows:
        fallback = next((r.tasks[task].per_prompt for r in others if r.tasks[task].per_prompt), {})
        return [(doc_id, math.nan) for doc_id in sorted(fallback)]
    scored = []
    for doc_id, row in rows.items():
        drop = math.nan
        if not metric:
            key = math.nan
        elif others:
            drop = _drop(row, [(r.tasks[task].per_prompt or {}).get(doc_id, {}) for r in others], metric)
            key = -drop
        else:
            key = (1.0 if metric_higher_is_better(metric) else -1.0) * as_float(row.get(metric))
        scored.append((math.inf if math.isnan(key) else key, doc_id, drop))
    scored.sort(key=lambda x: (x[0], x[1]))
    return [(doc_id, drop) for _, doc_id, drop in scored]


def cut_middle(text: str, limit: int) -> str:
    """``text`` when it fits, else its start and end around a note of how much was cut."""
    if len(text) <= limit:
        return text
    head, tail = (2 * limit) // 3, limit // 3
    return f"{text[:head]}\n[… {len(text) - head - tail} characters not shown …]\n{text[-tail:]}"


def shown_outputs(raw: list[str], think_opened: bool, verdicts: list[bool | None] | None) -> list[ShownOutput]:
    """The outputs as shown: CoT-stripped (scoring's rule), cut, duplicates and verdicts marked."""
    from lm_eval_diversity.preprocess import strip_cot_with_diagnostics

    first: dict[str, int] = {}
    shown = []
    for i, text in enumerate(raw):
        stripped = strip_cot_with_diagnostics(text, think_opened).text
        dup = first.setdefault(stripped, i)
        cut = stripped if len(stripped) <= MAX_OUTPUT_CHARS else stripped[:MAX_OUTPUT_CHARS]
        correct = verdicts[i] if verdicts is not None and i < len(verdicts) else None
        shown.append(ShownOutput(cut, len(stripped), dup if dup != i else None, correct))
    return shown


def prompt_title(task: str, doc: Any, rendered: str, limit: int = 90) -> str:
    """One line naming a prompt: the task's own prompt for the doc (the catalogue's ``doc_to_text``, without the chat
    template, whose opening is the same for every prompt), else the rendered prompt; whitespace folded, cut."""
    from lm_eval_diversity.catalogue.tasks import find_task

    text = rendered
    rec = find_task(task)
    if rec is not None and isinstance(doc, dict):
        try:
            text = rec.prompt(doc)
        except Exception:  # noqa: BLE001 - a doc logged in another shape: the rendered prompt names it instead
            text = rendered
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _samples_file(td: TaskData) -> Path | None:
    """The lm-eval samples file of a task (a score JSON's per-prompt rows carry no outputs)."""
    if td.samples_source and Path(td.samples_source).suffix == ".jsonl":
        return Path(td.samples_source)
    return None


def _values(row: dict, metrics: list[str]) -> dict[str, float]:
    names = [m for m in dict.fromkeys([*metrics, *EXTRA_VALUES]) if not m.endswith(CORPUS_SUFFIXES)]
    return {m: as_float(row[m]) for m in names if m in row}


def task_samples(runs: list[Run], ref: Run, task: str, metrics: list[str], per_task: int) -> TaskSamples:
    """The viewer's prompts of one task: ``per_task`` prompts of the reference, the largest drop first."""
    from lm_eval_diversity.samples import read_samples_file

    metric = ranking_metric(metrics, ref.tasks[task])
    others = [r for r in runs if r is not ref]
    order = _order(ref, others, task, metric)
    ts = TaskSamples(task=task, metric=metric, n_prompts=len(order), prompts=[])
    chosen = order[:per_task]
    shown: dict[int, ShownPrompt] = {d: ShownPrompt(d, "", "", drop, []) for d, drop in chosen}
    for run in runs:
        td = run.tasks[task]
        path = _samples_file(td)
        if path is None:
            ts.notes.append(
                f"{run.label}: no samples file (outputs are not logged in a score JSON); run lm_eval "
                "with --log_samples to see its outputs"
            )
            continue
        sf = read_samples_file(path, task=task)
        groups = {g.doc_id: g for g in sf.groups}
        for doc_id, sp in shown.items():
            g = groups.get(doc_id)
            if g is None:
                continue
            raw = g.outputs[: td.repeats] if td.repeats else g.outputs
            if not sp.title:
                rendered = sf.prompts.get(doc_id, "")
                sp.prompt = cut_middle(rendered, MAX_PROMPT_CHARS)
                sp.title = prompt_title(task, g.doc, rendered)
            row = (td.per_prompt or {}).get(doc_id, {})
            sp.runs.append(
                RunOutputs(run.label, shown_outputs(raw, g.think_opened, sf.correct.get(doc_id)), _values(row, metrics))
            )
    ts.prompts = [sp for sp in shown.values() if sp.runs]
    return ts


def build_viewer(runs: list[Run], baseline: Run | None, tasks: list[str], metrics: list[str], per_task: int) -> Viewer:
    """The viewer over ``tasks``: for each, up to ``per_task`` prompts, ordered by their drop against the baseline
    (else the first run)."""
    reference = baseline or runs[0]
    order = (
        f"largest drop against {reference.label} first (the task's first diversity metric shown, per prompt; with "
        "several runs, the largest of their drops)"
        if len(runs) > 1
        else "least diverse first"
    )
    return Viewer(
        per_task=per_task,
        reference=reference.label,
        reference_role="baseline" if baseline else "first run",
        order=order,
        tasks=[task_samples(runs, reference, t, metrics, per_task) for t in tasks],
    )
