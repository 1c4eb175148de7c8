"""lm-eval-diversity: how much a language model's sampled outputs vary, and where that variety is lost."""

from __future__ import annotations

from importlib import resources, util
from pathlib import Path

__version__ = "0.1.0"

_MARKER = "diversity.yaml"  # the group file: present wherever the task YAMLs are


def _installed_task_dir() -> Path | None:
    """``lm_eval/tasks/diversity`` as a regular install lays it out, located without importing lm-eval."""
    spec = util.find_spec("lm_eval")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "tasks" / "diversity"
        if (candidate / _MARKER).is_file():
            return candidate
    return None


def _task_dir(installed: Path | None) -> Path:
    """Directory holding the task YAMLs.

    A source checkout or editable install: ``task_configs/`` (lm-eval does not scan it; the ``lm-eval-diversity``
    command adds it, plain ``lm_eval`` needs ``--include_path``). A wheel install: ``lm_eval/tasks/diversity/``
    inside lm-eval's own task tree, which lm-eval scans by itself.
    """
    source = Path(str(resources.files("lm_eval_diversity.task_configs")))
    if (source / _MARKER).is_file():
        return source
    return installed or source


_INSTALLED = _installed_task_dir()
TASK_DIR: Path = _task_dir(_INSTALLED)
# True when lm-eval finds the tasks without --include_path (a regular install into lm-eval's task tree)
TASKS_DISCOVERED: bool = _INSTALLED == TASK_DIR

__all__ = ["TASKS_DISCOVERED", "TASK_DIR", "__version__"]
