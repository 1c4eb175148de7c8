"""Code-task verifiers: programs run against their tests in the sandbox (HumanEval's prompt-completion format and
MBPP's assert-list format), CRUXEval's predicted outputs by comparison.

Differences from the reference, all deliberate (docs/metrics.md, "Graders: default and compat"):

* no first-``def`` renaming: a helper defined before the target function keeps its name.  Instead, when the extracted
  code parses, defines no ``entry_point`` function and defines exactly one top-level function, the line
  ``entry_point = that_function`` is appended (an alias: nothing is renamed, call sites are untouched);
* standalone HumanEval solutions get the prompt's import lines prepended (the reference drops them);
* MBPP's ``test_setup_code`` is run after the solution, before the asserts (the reference ignores it; the one
  non-empty setup in the test split builds trees from the solution's ``Node`` class);
* the solution runs in a sandboxed candidate process and the tests in a separate judge process that calls the
  solution's functions over a plain-data channel, so a solution cannot swallow, skip or forge the tests
  (see :mod:`.sandbox`).

``mode="compat"`` (:func:`completion_program_compat`, :func:`assert_program_compat`) builds the reference's program
instead, rule by rule: the output is CoT-stripped *and whitespace-stripped*; the code block is chosen as above
(``code_execution.py``'s rule, which ``compute_code_quality.py`` uses; the QFD script takes the longest block first,
which can differ only for outputs with fenced blocks); the first top-level ``def NAME(`` is renamed to the entry point
(definition and every ``NAME(`` call); a HumanEval completion that then lacks ``def entry_point`` is appended to the
prompt (stripped, so an indented body loses its first indent); the program is one text (solution, tests, ``check``)
and it passes when its process exits with status 0 (the sandbox's ``verdict="exit-status"``). It still runs in the
sandbox.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from lm_eval_diversity.modes import CodeMode, choices
from lm_eval_diversity.preprocess import strip_cot
from lm_eval_diversity.quality.sandbox import Program, run_programs
from lm_eval_diversity.quality.types import ProgramFormat, Verdict

_FENCE_RE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)
_MBPP_NAME_RE = re.compile(r"assert\s+(\w+)\s*\(")
_FIRST_DEF_RE = re.compile(r"^def\s+(\w+)\s*\(", re.MULTILINE)
CODE_MODES = choices(CodeMode)
_IMPORT_RE = re.compile(r"^(?:import\s+\S.*|from\s+\S+\s+import\s+.*)$", re.MULTILINE)


class CodeExecutionNotAllowedError(RuntimeError):
    """Raised when code execution is requested without the explicit opt-in."""


def _defines(code: str, name: str) -> bool:
    return re.search(rf"\bdef\s+{re.escape(name)}\s*\(", code) is not None


def extract_code(text: str, entry_point: str | None) -> str:
    """Extract the solution code from one model output (the reference's rule, without the renaming).

    After CoT stripping: the fenced blocks (triple backticks, optional ``python`` tag, optional whitespace, newline,
    shortest text up to the next fence); none -> the whole text; else the first block defining ``entry_point``, else
    the longest block; stripped.  If the result parses, does not define ``entry_point`` and defines exactly one
    top-level function, ``entry_point = <that function>`` is appended.
    """
    code = code_block(strip_cot(text), entry_point)
    if entry_point and code and not _defines(code, entry_point):
        code = _alias_single_function(code, entry_point)
    return code


def code_block(text: str, entry_point: str | None = None) -> str:
    """The code of an already CoT-stripped output: the fenced blocks as in :func:`extract_code`; none -> the whole
    text; else the first block defining ``entry_point`` (when given), else the longest block; stripped."""
    blocks = _FENCE_RE.findall(text)
    if not blocks:
        code = text
    else:
        chosen = None
        if entry_point:
            chosen = next((b for b in blocks if f"def {entry_point}" in b), None)
        code = chosen if chosen is not None else max(blocks, key=len)
    return code.strip()


def _alias_single_function(code: str, entry_point: str) -> str:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    funcs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(funcs) == 1:
        return f"{code}\n\n{entry_point} = {funcs[0]}\n"
    return code


def _prompt_imports(prompt: str) -> str:
    return "\n".join(m.group(0) for m in _IMPORT_RE.finditer(prompt))


def mbpp_entry_point(test_list: Sequence[str]) -> str | None:
    """The expected MBPP function name: the first ``assert NAME(`` in the tests (reference rule)."""
    m = _MBPP_NAME_RE.search("\n".join(test_list))
    return m.group(1) if m else None


def completion_program(doc: dict, output: str) -> Program:
    """The (solution, tests) pair of one output of a prompt-completion doc (HumanEval's format: ``prompt``,
    ``entry_point``, ``test`` defining ``check``).

    A solution defining ``entry_point`` -> prompt imports + code; otherwise continuation style -> prompt + the raw
    completion (CoT removed only when think tags are present, so leading indentation survives). Tests: ``test`` +
    ``check(entry_point)``.
    """
    entry_point = doc["entry_point"]
    code = extract_code(output, entry_point)
    tests = f"{doc['test']}\n\ncheck({entry_point})\n"
    if _defines(code, entry_point):
        imports = _prompt_imports(doc["prompt"])
        return Program(f"{imports}\n\n{code}\n" if imports else f"{code}\n", tests)
    completion = strip_cot(output) if ("<think>" in output or "</think>" in output) else output
    return Program(doc["prompt"] + completion, tests)


def assert_program(doc: dict, output: str) -> Program:
    """The (solution, tests) pair of one output of an assert-list doc (MBPP's format: ``test_list`` asserts calling
    the function, optional ``test_setup_code``): the code; tests: ``test_setup_code`` + the asserts."""
    entry_point = mbpp_entry_point(doc["test_list"])
    code = extract_code(output, entry_point)
    setup = doc.get("test_setup_code") or ""
    tests = "\n".join(doc["test_list"]) + "\n"
    return Program(f"{code}\n", f"{setup}\n\n{tests}" if setup.strip() else tests)


def _compat_extract_and_align(text: str, entry_point: str) -> str:
    """The reference's code extraction and first-``def`` renaming (no CoT stripping here)."""
    blocks = _FENCE_RE.findall(text)
    if blocks:
        chosen = next((b for b in blocks if entry_point and f"def {entry_point}" in b), None)
        code = (chosen if chosen is not None else max(blocks, key=len)).strip()
    else:
        code = text
    if entry_point:
        m = _FIRST_DEF_RE.search(code)
        if m and m.group(1) != entry_point:
            old = re.escape(m.group(1))
            code = re.sub(rf"\bdef\s+{old}\b", f"def {entry_point}", code)
            code = re.sub(rf"\b{old}\s*\(", f"{entry_point}(", code)
    return code


def completion_program_compat(doc: dict, output: str) -> str:
    """The whole program the reference runs for one output of a prompt-completion doc (module docstring,
    ``mode="compat"``)."""
    completion = strip_cot(output)  # CoT removed and surrounding whitespace stripped, as the reference does
    entry_point = doc["entry_point"]
    tests = f"{doc['test']}\n\ncheck({entry_point})\n"
    code = _compat_extract_and_align(completion, entry_point)
    if f"def {entry_point}" in code:
        return f"{code}\n\n{tests}"
    return f"{doc['prompt']}{completion}\n\n{tests}"


def assert_program_compat(doc: dict, output: str) -> str:
    """The whole program the reference runs for one output of an assert-list doc (module docstring,
    ``mode="compat"``)."""
    completion = strip_cot(output)  # CoT removed and surrounding whitespace stripped, as the reference does
    code = _compat_extract_and_align(completion, mbpp_entry_point(doc["test_list"]) or "")
    return f"{code}\n\n" + "\n".join(doc["test_list"]) + "\n"


def check_docs(programs: ProgramFormat, docs: Sequence[object], label: str) -> None:
    """Refuse a doc that lacks what its program needs (``programs.required``), naming the doc and the key, before
    anything runs."""
    for index, doc in enumerate(docs):
        name = f"{label} doc {index}" + (f" ({doc['task_id']})" if isinstance(doc, dict) and "task_id" in doc else "")
        if not isinstance(doc, dict):
            raise ValueError(f"{name}: expected an object, got {type(doc).__name__}")
        for key, typ in programs.required:
            value = doc.get(key)
            if not isinstance(value, typ) or (typ is str and not value.strip() and key != "prompt"):
                raise ValueError(f"{name}: key {key!r} must be a non-empty {typ.__name__}, got {value!r:.60}")
            if typ is list and not all(isinstance(t, str) for t in value):
                raise ValueError(f"{name}: key {key!r} must hold strings")


def grade_code_task(
    programs: ProgramFormat,
    docs: list[dict],
    outputs: list[list[str]],
    *,
    timeout_s: float = 10.0,
    workers: int | None = None,
    allow_execution: bool = False,
    mode: str = "official",
    behaviour: bool = False,
    label: str = "code",
) -> list[list[Verdict]]:
    """Grade every output of a whole code task by running it against the task's tests; ``programs`` says how a
    doc and an output become a program (the task record's :class:`ProgramFormat`), ``label`` names the task in
    errors.

    ``mode``: "official" (``programs.build``, a pass needs evidence that the tests completed) or "compat"
    (``programs.build_compat``, a pass is exit status 0; every output runs, even an empty one).

    All programs of the task go to the sandbox in one parallel batch.  ``allow_execution`` must be True (it mirrors
    lm-eval's ``--confirm_run_unsafe_code``); otherwise nothing runs and :class:`CodeExecutionNotAllowedError` is
    raised.  Verdicts have ``answer=None`` and, on failure, ``reason`` from the sandbox (``timeout``,
    ``assertion``, ``syntax``, ``exit-before-tests``, ``unencodable-result``, ``memory``, ``output-limit``, ...) or
    ``no-code``.  A doc missing what its program needs (``programs.required``) is refused first.
    ``behaviour=True`` (official mode only) adds each program's behaviour signature (``Verdict.behaviour``, None
    for an empty output); the verdicts are the same either way.
    """
    if not allow_execution:
        raise CodeExecutionNotAllowedError(
            f"grading {label!r} executes model-generated code, which is opt-in. It runs in a sandbox "
            "(lm_eval_diversity.quality.sandbox), but you must confirm it: pass --confirm_run_unsafe_code on the "
            "command line (as with lm-eval), or allow_execution=True in Python."
        )
    if mode not in CODE_MODES:
        raise ValueError(f"unknown code mode {mode!r}; expected one of {CODE_MODES}")
    if len(docs) != len(outputs):
        raise ValueError(f"{len(docs)} docs but {len(outputs)} output groups")
    check_docs(programs, docs, label)
    compat = mode == "compat"
    verdicts: list[list[Verdict | None]] = [[None] * len(group) for group in outputs]
    built: list[Program | str] = []
    where: list[tuple[int, int]] = []
    for i, (doc, group) in enumerate(zip(docs, outputs, strict=True)):
        for j, out in enumerate(group):
            if compat:
                built.append(programs.build_compat(doc, out))
            elif not strip_cot(out):
                verdicts[i][j] = Verdict(False, None, "no-code")
                continue
            else:
                built.append(programs.build(doc, out))
            where.append((i, j))
    results = run_programs(
        built,
        timeout_s=timeout_s,
        workers=workers,
        verdict="exit-status" if compat else "trusted-tests",
        behaviour=behaviour and not compat,
    )
    for (i, j), res in zip(where, results, strict=True):
        verdicts[i][j] = Verdict(res.passed, None, res.reason, behaviour=res.behaviour)
    return [[v for v in group if v is not None] for group in verdicts]


# ----------------------------------------------------------------------------------------------------------------
# CRUXEval (output prediction), the reference's QFD-script grader: no execution at all.
# ----------------------------------------------------------------------------------------------------------------
_CRUX_BOLD_RE = re.compile(r"\*\*Answer:\*\*\s*(.+?)(?:\n\s*\n|\Z)", re.DOTALL)
_CRUX_LINE_RE = re.compile(r"^\s*(?:Answer|Output)\s*:\s*(.+?)\s*$", re.MULTILINE)
_CRUX_BLOCK_RE = re.compile(r"```(?:\w+)?\s*\n?(.*?)```", re.DOTALL)
_CRUX_TICK_RE = re.compile(r"`([^`\n]+)`")


def _literal(text: str) -> tuple[bool, object]:
    if len(text) > 100_000:
        return False, None
    try:
        return True, ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def extract_cruxeval_answer(text: str) -> str | None:
    """The predicted output: ``**Answer:**`` block; ``Answer:``/``Output:`` line; last code block; last backtick
    span that parses as a Python literal; first non-empty line (the reference's QFD-script order)."""
    text = strip_cot(text)
    m = _CRUX_BOLD_RE.search(text)
    if m and m.group(1).strip():
        return m.group(1).strip()
    m = _CRUX_LINE_RE.search(text)
    if m and m.group(1).strip():
        return m.group(1).strip()
    blocks = [b.strip() for b in _CRUX_BLOCK_RE.findall(text) if b.strip()]
    if blocks:
        return blocks[-1]
    for span in reversed(_CRUX_TICK_RE.findall(text)):
        if _literal(span.strip())[0]:
            return span.strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def normalize_cruxeval(text: str) -> str:
    """Strip trailing ``.:;,``, one pair of matching surrounding quotes, and collapse whitespace."""
    s = text.strip().rstrip(".:;,").strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        s = s[1:-1]
    return " ".join(s.split())


def cruxeval_equal(pred: str, gold: str) -> bool:
    """Equal normalised strings, or equal ``ast.literal_eval`` values of the raw strings (never ``eval``)."""
    if normalize_cruxeval(pred) == normalize_cruxeval(gold):
        return True
    ok_p, vp = _literal(pred.strip().rstrip(".:;,").strip())
    ok_g, vg = _literal(gold.strip())
    if not (ok_p and ok_g):
        return False
    try:
        return bool(vp == vg)
    except Exception:  # noqa: BLE001 - exotic comparisons count as unequal
        return False


def grade_cruxeval(doc: dict, outputs: list[str]) -> list[Verdict]:
    """Grade the outputs of one CRUXEval doc against ``doc["output"]``; ``answer`` = the normalised prediction."""
    gold = str(doc["output"])
    verdicts = []
    for out in outputs:
        pred = extract_cruxeval_answer(out)
        if pred is None:
            verdicts.append(Verdict(False, None, "unparseable"))
            continue
        ok = cruxeval_equal(pred, gold)
        verdicts.append(Verdict(ok, normalize_cruxeval(pred), "" if ok else "wrong-answer"))
    return verdicts
