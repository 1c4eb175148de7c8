"""The names and display rules ``compare`` relies on: group, metrics shown by default and split, compared settings,
metric directions and the tasks' categories.

Task names, categories, directions and the split metrics come from the catalogues; the rest are the report's own
choices.
"""

from __future__ import annotations

from lm_eval_diversity.catalogue.metrics import higher_is_better, split_metrics
from lm_eval_diversity.settings import settings_fields

GROUP = "diversity"
DEFAULT_METRICS = ("sbert", "vendi", "ead", "nli", "acc")  # the report's default columns, in display order
SPLIT_METRICS = split_metrics()  # the metrics with a QC/residual split (they have ``<metric>_correct`` values)
GEN_KEYS = ("temperature", "top_p", "top_k", "min_p", "do_sample", "max_gen_toks")
# every metric setting that changes a number (not which metrics run, the device, batch size or the baseline path)
# (``quality_reference`` names where the reward calibration came from; the calibration itself is compared instead:
# ``reward_calibration``, read per task from a score JSON by lm_eval_diversity.runs)
SETTING_KEYS = tuple(
    f
    for f in settings_fields()
    if f not in ("metrics", "corpus_metrics", "device", "batch_size", "baseline", "quality_reference")
) + ("reward_calibration",)
# the judge's settings that change its numbers (recorded by lm_eval_diversity.judge.run.JudgeSettings.recorded)
JUDGE_SETTING_KEYS = ("judge_model", "judge_outputs", "judge_temperature")
CORPUS_SUFFIXES = ("_across_input", "_overall")  # corpus-level metric names: one value per task, no per-prompt values



def metric_higher_is_better(metric: str) -> bool:
    """The metric's direction from the catalogue (a name it does not know counts as higher-is-better)."""
    try:
        return higher_is_better(metric)
    except KeyError:
        return True


def task_groups(tasks: list[str]) -> list[tuple[str, list[str]]]:
    """``tasks`` grouped by the paper's categories (the catalogue's titles and order); tasks the catalogue does not
    know come last, as ``Other``."""
    from lm_eval_diversity.catalogue.tasks import find_task, task_records

    order = {r.task_name: i for i, r in enumerate(task_records())}
    groups: dict[str, list[str]] = {}
    for t in sorted(tasks, key=lambda t: (order.get(t, len(order)), t)):
        rec = find_task(t)
        groups.setdefault(rec.category.title if rec else "Other", []).append(t)
    return list(groups.items())
