"""lm-eval-diversity: how much a language model's sampled outputs vary, and where that variety is lost."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__version__ = "0.1.0"


def _task_dir() -> Path:
    """Directory holding the task YAMLs (``task_configs/`` in the source tree, shipped inside the wheel)."""
    return Path(str(resources.files("lm_eval_diversity.task_configs")))


TASK_DIR: Path = _task_dir()

__all__ = ["TASK_DIR", "__version__"]
