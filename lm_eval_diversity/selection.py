"""Which docs of a split a task evaluates: the reference's prompt subset (docs/tasks.md, "Prompt selection").

``random.Random(42)`` shuffles the split indices and the first ``min(N, n)`` are kept (N = the ``max_docs`` setting,
500 by default), each doc tagged with its ``split_index``. The task YAMLs name :func:`select_docs` as lm-eval's
``process_docs`` hook; lm-eval calls it with the split only, so the run's N reaches it through
:func:`docs_per_task`, which the task class wraps around lm-eval's calls (``max_docs`` is a setting of the settings
object: flag, ``--metadata`` key, environment variable).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

MAX_DOCS = 500  # N: prompts per task, as in the reference protocol
SELECTION_SEED = 42  # lighteval's shuffle seed for the N-prompt subset
SPLIT_INDEX = "split_index"

_DOCS_PER_TASK: ContextVar[int] = ContextVar("docs_per_task", default=MAX_DOCS)


@contextmanager
def docs_per_task(n: int) -> Iterator[int]:
    """Within the block, :func:`select_docs` keeps ``n`` docs (the run's ``max_docs`` setting)."""
    token = _DOCS_PER_TASK.set(n)
    try:
        yield n
    finally:
        _DOCS_PER_TASK.reset(token)


def max_docs() -> int:
    """N, the number of prompts kept per task: the run's ``max_docs`` setting (500 outside a run)."""
    return _DOCS_PER_TASK.get()


def selected_indices(n: int, max_n: int = MAX_DOCS, seed: int = SELECTION_SEED) -> list[int]:
    """Split indices of the kept docs, in processing order: ``Random(seed)`` shuffle of ``range(n)``, first max_n."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    return idx[: min(max_n, n)]


def select_docs(dataset: datasets.Dataset, max_n: int | None = None) -> datasets.Dataset:
    """The reference's prompt subset of ``dataset`` (in split order), each doc with its ``split_index``."""
    n = len(dataset)
    keep = selected_indices(n, max_docs() if max_n is None else max_n)
    if SPLIT_INDEX in dataset.column_names:
        dataset = dataset.remove_columns(SPLIT_INDEX)
    return dataset.add_column(SPLIT_INDEX, list(range(n))).select(keep)


# lm-eval's ``process_docs`` hook of every task whose record keeps the default selection.
process_docs: Callable[[datasets.Dataset], datasets.Dataset] = select_docs
