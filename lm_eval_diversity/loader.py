"""Dataset loading: a task's docs from local JSON lines or the HuggingFace Hub (docs/tasks.md, "Data").

Every task YAML names :func:`load_dataset_for` as lm-eval's ``custom_dataset`` hook and the catalogue record whose
data to load (``dataset_kwargs.task_record``). Local files are used when a data directory is set (the ``data_dir``
setting: ``--metadata data_dir`` or ``LM_EVAL_DIVERSITY_DATA_DIR``, several directories separated by
``os.pathsep``); otherwise the record's HF dataset, then its fallback file. A record without an HF dataset is
local-only. ``datasets`` is imported where it is used, so that importing this module costs nothing heavy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_eval_diversity.catalogue.tasks import DatasetSpec, get_task
from lm_eval_diversity.settings import env_name

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

DATA_DIR_ENV = env_name("data_dir")
DEMO_DATA_DIR: Path = Path(__file__).resolve().parent / "demo_data"
TASK_RECORD_KEY = "task_record"  # the ``dataset_kwargs`` key that names a task's catalogue record


class DatasetUnavailableError(RuntimeError):
    """A task's data could be found neither in the local data directories nor on the HuggingFace Hub."""


def data_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Directories listed in ``LM_EVAL_DIVERSITY_DATA_DIR`` (``os.pathsep``-separated), in search order."""
    raw = (os.environ if environ is None else environ).get(DATA_DIR_ENV, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def find_local_file(spec: DatasetSpec, dirs: list[Path] | None = None) -> Path | None:
    """First ``<dir>/<local_path>`` that exists for the dataset ``spec``, or None."""
    for d in data_dirs() if dirs is None else dirs:
        candidate = d / spec.local_path
        if candidate.is_file():
            return candidate
    return None


def read_jsonl(path: str | Path) -> datasets.Dataset:
    """Load a JSON-lines file (optionally ``.gz``) as one ``datasets.Dataset``, rows in file order."""
    import datasets

    return datasets.load_dataset("json", data_files=str(path), split="train")


def _local_hint(spec: DatasetSpec) -> str:
    return (
        f"To run from local files, set {DATA_DIR_ENV}=/path/to/data (several directories separated by "
        f"{os.pathsep!r}; the first that has the file wins) so that /path/to/data/{spec.local_path} is a JSON-lines "
        f"copy of the split, with the HF dataset's field names."
    )


def load_dataset_for(**kwargs: Any) -> dict[str, datasets.Dataset]:
    """lm-eval's ``custom_dataset`` hook of every task: the data of the record named by ``task_record``.

    lm-eval calls it with the task metadata, all model args and the YAML's ``dataset_kwargs``; the generated
    YAMLs set ``dataset_kwargs: {task_record: <name>}``. See :func:`load_task_dataset` for where the data comes from.
    """
    name = kwargs.get(TASK_RECORD_KEY)
    if not name:
        raise DatasetUnavailableError(
            f"custom_dataset lm_eval_diversity.loader.load_dataset_for: the task YAML sets no "
            f"dataset_kwargs.{TASK_RECORD_KEY} (the catalogue task whose data to load); a YAML that include:s one "
            f"of ours and replaces dataset_kwargs must keep that key, or name its own data with dataset_path/"
            f"dataset_kwargs.data_files"
        )
    return load_task_dataset(get_task(str(name)).name, **kwargs)


def load_task_dataset(task: str, /, **kwargs: Any) -> dict[str, datasets.Dataset]:
    """Return ``{split: Dataset}`` for ``task``: local JSON lines if a data dir is set, else the HF dataset.

    ``kwargs`` are the task metadata and all model args (lm-eval passes them); of these only ``data_dir`` is read
    (the ``--metadata data_dir`` setting, which takes precedence over ``LM_EVAL_DIVERSITY_DATA_DIR``).
    """
    record = get_task(task)
    spec, label = record.dataset, record.task_name
    given = kwargs.get("data_dir")
    dirs = data_dirs({DATA_DIR_ENV: str(given)}) if given else data_dirs()
    if dirs or spec.hf_path is None:
        return {spec.split: read_jsonl(_local_file(spec, label, dirs, "--metadata data_dir" if given else None))}
    import datasets

    try:
        ds = datasets.load_dataset(spec.hf_path, spec.hf_name, split=spec.split)
    except Exception as exc:  # offline hub, missing cache, network error: all mean "not available"
        if spec.fallback is not None and (fallback := spec.fallback()) is not None:
            log.warning("%s: %s unavailable (%s); using %s", label, spec.hf_path, exc, fallback)
            return {spec.split: read_jsonl(fallback)}
        config = f" (config {spec.hf_name!r})" if spec.hf_name else ""
        raise DatasetUnavailableError(
            f"{label}: could not load the HF dataset {spec.hf_path}{config}, split {spec.split!r}, "
            f"from the Hub or the local HF cache ({type(exc).__name__}: {exc}). {_local_hint(spec)}"
        ) from exc
    return {spec.split: ds}


def _local_file(spec: DatasetSpec, label: str, dirs: list[Path], given: str | None) -> Path:
    """The local file of ``spec`` in ``dirs`` (or its fallback); a clear error when there is none."""
    path = find_local_file(spec, dirs)
    if path is None and spec.fallback is not None:
        path = spec.fallback()
    if path is None:
        if not dirs:  # a local-only record and no data directory
            raise DatasetUnavailableError(f"{label}: the task has no HF dataset (local only). {_local_hint(spec)}")
        searched = ", ".join(str(d / spec.local_path) for d in dirs)
        source = f"{given or DATA_DIR_ENV} is set but no data file was found"
        raise DatasetUnavailableError(
            f"{label}: {source} for {spec.hf_path or 'the task'} (expected relative path {spec.local_path!r}; "
            f"searched: {searched})."
        )
    log.info("%s: loading %s", label, path)
    return path
