"""``python -m lm_eval_diversity.compare``: the same as ``lm-eval-diversity compare``."""

import sys

from lm_eval_diversity.compare.cli import run_compare

sys.exit(run_compare(sys.argv[1:]))
