"""The names ``compare`` relies on: task prefix, group, metrics shown by default and split, compared settings.

Task names and the split metrics come from the catalogues; the rest are the report's own choices.
"""

from __future__ import annotations

import dataclasses

from lm_eval_diversity.catalogue.metrics import split_metrics
from lm_eval_diversity.settings import DiversitySettings

GROUP = "diversity"
DEFAULT_METRICS = ("sbert", "vendi", "ead", "nli", "acc")  # the report's default columns, in display order
SPLIT_METRICS = split_metrics()  # the metrics with a QC/residual split (they have ``<metric>_correct`` values)
GEN_KEYS = ("temperature", "top_p", "top_k", "min_p", "do_sample", "max_gen_toks")
# every metric setting that changes a number (not which metrics run, the device, batch size or the baseline path)
# (``quality_reference`` names where the reward calibration came from; the calibration itself is compared instead:
# ``reward_calibration``, read per task from a score JSON by lm_eval_diversity.runs)
SETTING_KEYS = tuple(
    f.name
    for f in dataclasses.fields(DiversitySettings)
    if f.name not in ("metrics", "corpus_metrics", "device", "batch_size", "baseline", "quality_reference")
) + ("reward_calibration",)
# the judge's settings that change its numbers (recorded by lm_eval_diversity.judge.run.JudgeSettings.recorded)
JUDGE_SETTING_KEYS = ("judge_model", "judge_outputs", "judge_temperature")
CORPUS_SUFFIXES = ("_across_input", "_overall")  # corpus-level metric names: one value per task, no per-prompt values

