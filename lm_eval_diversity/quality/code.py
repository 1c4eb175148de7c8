"""Code-task verifiers: HumanEval and MBPP by sandboxed execution, CRUXEval by comparison.

Differences from the reference, all deliberate (docs/metrics.md, "Graders: default and compat"):

* no first-``def`` renaming: a helper defined before the target function keeps its name.  Instead, when the extracted
  code parses, defines no ``entry_point`` function and defines exactly one top-level function, the line
  ``entry_point = that_function`` is appended (an alias: nothing is renamed, call sites are untouched);
* standalone HumanEval solutions get the prompt's import lines prepended (the reference drops them);
* MBPP's ``test_setup_code`` is run after the solution, before the asserts (the reference ignores it; the one
  non-empty setup in the test split builds trees from the solution's ``Node`` class);
* the solution runs in a sandboxed candidate process and the tests in a separate judge process that calls the
  solution's functions over a plain-data channel, so a solution cannot swallow, skip or forge the tests
  (see :mod:`.sandbox`);
* the tests use the judge's own names: builtins, modules, and (HumanEval) the prompt's helpers, defined by the judge
  from the prompt text.  Only the entry point comes from the solution, so a solution that redefines ``abs`` or the
  prompt's ``poly`` changes its own code, not the checker (HumanEval's harness runs everything in one namespace).

``mode="compat"`` (:func:`build_compat_program`) builds the reference's program instead, rule by rule: the output
is CoT-stripped *and whitespace-stripped*; the code block is chosen as above (``code_execution.py``'s rule, which
``compute_code_quality.py`` uses; the QFD script takes the longest block first, which can differ only for outputs
with fenced blocks); the first top-level ``def NAME(`` is
renamed to the entry point (definition and every ``NAME(`` call); a HumanEval completion that then lacks
``def entry_point`` is appended to the prompt (stripped, so an indented body loses its first indent); the program
is one text (solution, tests, ``check``) and it passes when its process exits with status 0 (the sandbox's
``verdict="exit-status"``). It still runs in the sandbox.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from lm_eval_diversity.catalogue.tasks import CODE_TASKS
from lm_eval_diversity.preprocess import strip_cot
from lm_eval_diversity.quality.sandbox import Program, run_programs
from lm_eval_diversity.quality.types import Verdict

_FENCE_RE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)
_MBPP_NAME_RE = re.compile(r"assert\s+(\w+)\s*\(")
_FIRST_DEF_RE = re.compile(r"^def\s+(\w+)\s*\(", re.MULTILINE)
CODE_MODES = ("official", "compat")
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


def _prelude(prompt: str) -> str:
    """The prompt as code the judge can run: as it is (a HumanEval prompt ends with the entry point's docstring,
    a valid body), else with ``pass`` as the unfinished function's body; "" when neither compiles."""
    for text in (prompt, prompt.rstrip() + "\n    pass\n"):
        try:
            compile(text, "<prompt>", "exec")
        except (SyntaxError, ValueError):
            continue
        return text
    return ""


def _prompt_imports(prompt: str) -> str:
    return "\n".join(m.group(0) for m in _IMPORT_RE.finditer(prompt))


def mbpp_entry_point(test_list: Sequence[str]) -> str | None:
    """The expected MBPP function name: the first ``assert NAME(`` in the tests (reference rule)."""
    m = _MBPP_NAME_RE.search("\n".join(test_list))
    return m.group(1) if m else None


def build_program_parts(task: str, doc: dict, output: str) -> Program:
    """The (solution, tests) pair for one output of a HumanEval or MBPP doc.

    HumanEval: a solution defining ``entry_point`` -> prompt imports + code; otherwise continuation style ->
    prompt + the raw completion (CoT removed only when think tags are present, so leading indentation survives).
    Tests: ``test`` + ``check(entry_point)``.  MBPP: the code; tests: ``test_setup_code`` + the ``test_list``
    asserts.
    """
    if task == "humaneval":
        entry_point = doc["entry_point"]
        code = extract_code(output, entry_point)
        tests = f"{doc['test']}\n\ncheck({entry_point})\n"
        # the judge runs the prompt itself (its imports and helpers, e.g. ``poly`` or ``encode_cyclic``, are the
        # judge's own); only the entry point comes from the solution
        judged = {"prelude": _prelude(doc["prompt"]), "entry_points": (entry_point,)}
        if _defines(code, entry_point):
            imports = _prompt_imports(doc["prompt"])
            return Program(f"{imports}\n\n{code}\n" if imports else f"{code}\n", tests, **judged)
        completion = strip_cot(output) if ("<think>" in output or "</think>" in output) else output
        return Program(doc["prompt"] + completion, tests, **judged)
    if task == "mbpp":
        entry_point = mbpp_entry_point(doc["test_list"])
        code = extract_code(output, entry_point)
        setup = doc.get("test_setup_code") or ""
        tests = "\n".join(doc["test_list"]) + "\n"
        tests = f"{setup}\n\n{tests}" if setup.strip() else tests
        return Program(f"{code}\n", tests, entry_points=(entry_point,) if entry_point else ())
    raise ValueError(f"unknown code task {task!r}; expected one of {CODE_TASKS}")


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


def build_compat_program(task: str, doc: dict, output: str) -> str:
    """The whole program the reference runs for one output (module docstring, ``mode="compat"``)."""
    completion = strip_cot(output)  # CoT removed and surrounding whitespace stripped, as the reference does
    if task == "humaneval":
        entry_point = doc["entry_point"]
        tests = f"{doc['test']}\n\ncheck({entry_point})\n"
        code = _compat_extract_and_align(completion, entry_point)
        if f"def {entry_point}" in code:
            return f"{code}\n\n{tests}"
        return f"{doc['prompt']}{completion}\n\n{tests}"
    if task == "mbpp":
        code = _compat_extract_and_align(completion, mbpp_entry_point(doc["test_list"]) or "")
        return f"{code}\n\n" + "\n".join(doc["test_list"]) + "\n"
    raise ValueError(f"unknown code task {task!r}; expected one of {CODE_TASKS}")


_REQUIRED = {"humaneval": {"prompt": str, "test": str, "entry_point": str}, "mbpp": {"test_list": list}}


def _check_doc(task: str, index: int, doc: object) -> None:
    """Refuse a doc that lacks what its program needs, naming the doc and the key (before anything runs)."""
    name = f"{task} doc {index}" + (f" ({doc['task_id']})" if isinstance(doc, dict) and "task_id" in doc else "")
    if not isinstance(doc, dict):
        raise ValueError(f"{name}: expected an object, got {type(doc).__name__}")
    for key, typ in _REQUIRED[task].items():
        if not isinstance(doc.get(key), typ) or (typ is str and not doc[key].strip() and key != "prompt"):
            raise ValueError(f"{name}: key {key!r} must be a non-empty {typ.__name__}, got {doc.get(key)!r:.60}")
    if task == "mbpp" and not all(isinstance(t, str) for t in doc["test_list"]):
        raise ValueError(f"{name}: key 'test_list' must hold strings")


def grade_code_task(
    task: str,
    docs: list[dict],
    outputs: list[list[str]],
    *,
    timeout_s: float = 10.0,
    workers: int | None = None,
    allow_execution: bool = False,
    mode: str = "official",
    behaviour: bool = False,
) -> list[list[Verdict]]:
    """Grade every output of a whole HumanEval or MBPP task by running it against the task's tests.

    ``mode``: "official" (:func:`build_program_parts`, a pass needs evidence that the tests completed) or
    "compat" (:func:`build_compat_program`, a pass is exit status 0; every output runs, even an empty one).

    All programs of the task go to the sandbox in one parallel batch.  ``allow_execution`` must be True (it mirrors
    lm-eval's ``--confirm_run_unsafe_code``); otherwise nothing runs and :class:`CodeExecutionNotAllowedError` is
    raised.  Verdicts have ``answer=None`` and, on failure, ``reason`` from the sandbox (``timeout``,
    ``assertion``, ``syntax``, ``exit-before-tests``, ``unencodable-result``, ``memory``, ``output-limit``, ...) or
    ``no-code``.  A doc missing what its program needs (``entry_point``, ``test``, ``test_list``) is refused first.
    ``behaviour=True`` (official mode only) adds each program's behaviour signature (``Verdict.behaviour``, None
    for an empty output); the verdicts are the same either way.
    """
    if task not in CODE_TASKS:
        raise ValueError(f"unknown code task {task!r}; expected one of {CODE_TASKS}")
    if not allow_execution:
        raise CodeExecutionNotAllowedError(
            f"grading {task!r} executes model-generated code, which is opt-in. It runs in a sandbox "
            "(lm_eval_diversity.quality.sandbox), but you must confirm it: pass --confirm_run_unsafe_code on the "
            "command line (as with lm-eval), or allow_execution=True in Python."
        )
    if mode not in CODE_MODES:
        raise ValueError(f"unknown code mode {mode!r}; expected one of {CODE_MODES}")
    if len(docs) != len(outputs):
        raise ValueError(f"{len(docs)} docs but {len(outputs)} output groups")
    for i, doc in enumerate(docs):
        _check_doc(task, i, doc)
    compat = mode == "compat"
    verdicts: list[list[Verdict | None]] = [[None] * len(group) for group in outputs]
    programs: list[Program | str] = []
    where: list[tuple[int, int]] = []
    for i, (doc, group) in enumerate(zip(docs, outputs, strict=True)):
        for j, out in enumerate(group):
            if compat:
                programs.append(build_compat_program(task, doc, out))
            elif not strip_cot(out):
                verdicts[i][j] = Verdict(False, None, "no-code")
                continue
            else:
                programs.append(build_program_parts(task, doc, out))
            where.append((i, j))
    results = run_programs(
        programs,
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
