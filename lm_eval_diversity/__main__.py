from lm_eval_diversity.cli import main
import sys

sys.exit(main())
