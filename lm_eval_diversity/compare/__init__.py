"""``lm-eval-diversity compare``: leaderboard, change vs a baseline, QC/residual split, CI gate and lineage plots.

The package's modules, one job each:

* :mod:`~lm_eval_diversity.compare.runs` resolves the command line into runs, baseline, lineages and common tasks
  (the runs themselves are read by :mod:`lm_eval_diversity.runs`, with per-prompt values from the samples files or a
  score JSON; without them a cell has no CI and the split is "unavailable", never 0);
* :mod:`~lm_eval_diversity.compare.model` is the typed report, built by :mod:`~lm_eval_diversity.compare.build`;
* :mod:`~lm_eval_diversity.compare.gate` parses and evaluates ``--fail_if_drop`` (docs/ci_gating.md);
* :mod:`~lm_eval_diversity.compare.render` writes text, Markdown, CSV and JSON, and
  :mod:`~lm_eval_diversity.compare.page` the HTML page (docs/report.md) from its template in ``page_assets/``, with
  the figures of :mod:`~lm_eval_diversity.compare.plot` and the samples :mod:`~lm_eval_diversity.compare.viewer`
  picks from the runs' samples files;
* :mod:`~lm_eval_diversity.compare.cli` is the command line; :mod:`~lm_eval_diversity.compare.names` holds the task
  and metric names compare relies on.
"""

from lm_eval_diversity.compare.cli import build_parser, run_compare
from lm_eval_diversity.compare.errors import CompareError
from lm_eval_diversity.compare.runs import load_lineages

__all__ = ["CompareError", "build_parser", "load_lineages", "run_compare"]
