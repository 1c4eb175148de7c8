import sys

from lm_eval_diversity.cli import main

sys.exit(main())
