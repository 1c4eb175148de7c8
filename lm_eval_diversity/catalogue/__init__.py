"""Catalogues: one record per task and per metric, from which YAMLs, flags, tables and docs derive.

The task-name convention both catalogues share lives here (no import cost: ``--help`` loads it).
"""

from __future__ import annotations

TASK_PREFIX = "diversity_"  # lm-eval task name = prefix + short name

__all__ = ["TASK_PREFIX", "short_name", "task_name"]


def short_name(task: str) -> str:
    """``"diversity_gsm8k"`` → ``"gsm8k"``; a name without the prefix is returned as is."""
    return task.removeprefix(TASK_PREFIX)


def task_name(short: str) -> str:
    """``"gsm8k"`` → ``"diversity_gsm8k"``; a name that already has the prefix is returned as is."""
    return short if short.startswith(TASK_PREFIX) else TASK_PREFIX + short
