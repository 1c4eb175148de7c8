"""The names ``compare`` relies on: task prefix, group, metrics shown by default and split, compared settings.

Kept in one block so that they can follow the metric catalogue when it exists.
"""

from __future__ import annotations

import dataclasses

from lm_eval_diversity.settings import DiversitySettings

TASK_PREFIX = "diversity_"
GROUP = "diversity"
DEFAULT_METRICS = ("sbert", "vendi", "ead", "nli", "acc")
SPLIT_METRICS = ("sbert", "vendi")  # the metrics with a QC/residual split (they have ``<metric>_correct`` values)
GEN_KEYS = ("temperature", "top_p", "top_k", "min_p", "do_sample", "max_gen_toks")
# every metric setting that changes a number (not which metrics run, the device, batch size or the baseline path)
SETTING_KEYS = tuple(
    f.name
    for f in dataclasses.fields(DiversitySettings)
    if f.name not in ("metrics", "corpus_metrics", "device", "batch_size", "baseline")
)
CORPUS_SUFFIXES = ("_across_input", "_overall")  # corpus-level metric names: one value per task, no per-prompt values


def short_task(task: str) -> str:
    """A task name without the ``diversity_`` prefix."""
    return task[len(TASK_PREFIX) :] if task.startswith(TASK_PREFIX) else task
