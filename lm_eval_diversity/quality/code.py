"""Code-task verifiers: programs run against their tests in the sandbox (HumanEval's prompt-completion format and
MBPP's assert-list format), CRUXEval's predicted outputs by comparison.

Differences from the reference, all deliberate (docs/metrics.md, "Graders: default and compat"):

* no first-``def`` renaming: a helper defined before the target function keeps its name.  Instead, when the extracted
  code (from a fenced block of any usual tag, the whole text, or cut out of the prose around it) parses, defines no
  ``entry_point`` function and defines exactly one top-level function, the line ``entry_point = that_function`` is
  appended (an alias: nothing is renamed, call sites are untouched), and the program is the solution, not a
  continuation of the prompt;
* a thought never closed holds no code (:func:`~lm_eval_diversity.preprocess.final_text`);
* standalone HumanEval solutions get the prompt's import lines prepended (the reference drops them);
* MBPP's ``test_setup_code`` is run after the solution, before the asserts (the reference ignores it; the one
  non-empty setup in the test split builds trees from the solution's ``Node`` class);
* the solution runs in a sandboxed candidate process and the tests in a separate judge process that calls the
  solution's functions over a plain-data channel, so a solution cannot swallow, skip or forge the tests
  (see :mod:`.sandbox`);
* the tests use the judge's own names: builtins, modules, and (HumanEval) the prompt's helpers, defined by the judge
  from the prompt text.  Only the entry point comes from the solution, so a solution that redefines ``abs`` or the
  prompt's ``poly`` changes its own code, not the checker (HumanEval's harness runs everything in one namespace).

``mode="compat"`` (:func:`completion_program_compat`, :func:`assert_program_compat`) builds the reference's program
instead, rule by rule, on either of its two grading paths (``compat_path``: "accuracy" = ``compute_code_quality.py``,
"subsets" = the QFD script, which takes the longest block first and renames nothing in HumanEval code that defines
the entry point): the output is CoT-stripped *and whitespace-stripped*; the code block is the first defining the
entry point, else the longest (``code_execution.py``); the first top-level ``def NAME(`` is renamed to the entry point
(definition and every ``NAME(`` call); a HumanEval completion that then lacks ``def entry_point`` is appended to the
prompt (stripped, so an indented body loses its first indent); the program is one text (solution, tests, ``check``)
and it passes when its process exits with status 0 (the sandbox's ``verdict="exit-status"``). It still runs in the
sandbox, with the reference runner's preloaded ``resource`` and ``sys``, its 256 MB and each path's timeout.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from lm_eval_diversity.modes import CodeMode, choices
from lm_eval_diversity.preprocess import THINK_CLOSE, THINK_OPEN, final_text, strip_cot
from lm_eval_diversity.quality.sandbox import Program, run_programs
from lm_eval_diversity.quality.types import ProgramFormat, Verdict

# the reference's fence rule (``code_execution.py``): compat mode and the code-diversity extraction
_FENCE_RE = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)
# default mode also reads the tags models write besides ``python`` (``py``, ``python3``, ``Python``)
_ANY_FENCE_RE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)
_CODE_START_RE = re.compile(r"^(?:def|async\s+def|class|import|from|@)\b")
_MBPP_NAME_RE = re.compile(r"assert\s+(\w+)\s*\(")
_FIRST_DEF_RE = re.compile(r"^def\s+(\w+)\s*\(", re.MULTILINE)
CODE_MODES = choices(CodeMode)
_IMPORT_RE = re.compile(r"^(?:import\s+\S.*|from\s+\S+\s+import\s+.*)$", re.MULTILINE)


class CodeExecutionNotAllowedError(RuntimeError):
    """Raised when code execution is requested without the explicit opt-in."""


def _defines(code: str, name: str) -> bool:
    return re.search(rf"\bdef\s+{re.escape(name)}\s*\(", code) is not None


def extract_code(text: str, entry_point: str | None) -> str:
    """The solution code of one raw model output (default mode; the rule in docs/metrics.md, "Graders").

    After CoT removal (a thought never closed is dropped, :func:`~lm_eval_diversity.preprocess.final_text`), the
    fenced blocks (tagged ``python``, ``py``, ``python3`` or untagged): the first one defining ``entry_point``,
    else the longest that parses and defines exactly one top-level function, else the longest; without fences the
    whole text, or, when it does not parse, the code inside the prose (from the first line that starts Python code
    to the longest run of lines that parses).  If the code does not define ``entry_point`` and defines exactly one
    top-level function, ``entry_point = <that function>`` is appended (an alias: nothing is renamed).
    """
    code = _solution_block(final_text(text), entry_point)
    if entry_point and code and not _defines(code, entry_point):
        code = _alias_single_function(code, entry_point)
    return code


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _functions(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _solution_block(text: str, entry_point: str | None) -> str:
    blocks = [b for b in _ANY_FENCE_RE.findall(text) if b.strip()]
    if blocks:
        if entry_point:
            chosen = next((b for b in blocks if _defines(b, entry_point)), None)
            if chosen is not None:
                return chosen.strip()
        lone = [b for b in blocks if (tree := _parse(b.strip())) is not None and len(_functions(tree)) == 1]
        return max(lone or blocks, key=len).strip()
    text = text.strip()
    if _parse(text) is not None:
        return text
    return _code_in_prose(text) or text


_MAX_CUTS = 200  # ends tried, from the text's end backwards (bounds the work on very long outputs)


def _code_in_prose(text: str) -> str | None:
    """Unfenced code with prose around it: from the first line that starts Python code at column 0, the longest
    run of lines that parses (ending at the text's end or before a later unindented line)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _CODE_START_RE.match(line)), None)
    if start is None:
        return None
    cuts = [j for j in range(len(lines) - 1, start, -1) if lines[j].strip() and not lines[j][0].isspace()]
    for end in [len(lines), *cuts][:_MAX_CUTS]:  # longest first
        code = "\n".join(lines[start:end]).strip()
        if code and _parse(code) is not None:
            return code
    return None


def _completion(output: str) -> str:
    """The completion a HumanEval continuation appends to the prompt: the raw output, or, after a closed thought,
    the text after it with only its leading blank lines removed (the body keeps its indentation)."""
    if THINK_OPEN not in output and THINK_CLOSE not in output:
        return output
    text = final_text(output)
    if not text:
        return ""
    tail = output.rsplit(THINK_CLOSE, 1)[-1]
    return tail.lstrip("\r\n") if tail.strip() == text else text


def _continuation(text: str) -> bool:
    """A HumanEval output written as the function body (a base model continuing the prompt): no fence, and its
    first non-blank line is indented."""
    if "```" in text:
        return False
    first = next((line for line in text.splitlines() if line.strip()), "")
    return first[:1].isspace()


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
    tree = _parse(code)
    funcs = _functions(tree) if tree is not None else []
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


def _provides(code: str, entry_point: str) -> bool:
    """The extracted code defines ``entry_point`` itself or through the appended alias."""
    return _defines(code, entry_point) or re.search(rf"\n{re.escape(entry_point)} = \w+\n\Z", code) is not None


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
    tests = f"{doc['test']}\n\ncheck({entry_point})\n"
    # the judge runs the prompt itself (its imports and helpers, e.g. ``poly`` or ``encode_cyclic``, are the
    # judge's own); only the entry point comes from the solution
    judged = {"prelude": _prelude(doc["prompt"]), "entry_points": (entry_point,)}
    completion = _completion(output)
    code = "" if _continuation(completion) else extract_code(output, entry_point)
    if code and _provides(code, entry_point):
        imports = _prompt_imports(doc["prompt"])
        return Program(f"{imports}\n\n{code}\n" if imports else f"{code}\n", tests, **judged)
    return Program(doc["prompt"] + completion, tests, **judged)


def assert_program(doc: dict, output: str) -> Program:
    """The (solution, tests) pair of one output of an assert-list doc (MBPP's format: ``test_list`` asserts calling
    the function, optional ``test_setup_code``): the code; tests: ``test_setup_code`` + the asserts."""
    entry_point = mbpp_entry_point(doc["test_list"])
    code = extract_code(output, entry_point)
    setup = doc.get("test_setup_code") or ""
    tests = "\n".join(doc["test_list"]) + "\n"
    tests = f"{setup}\n\n{tests}" if setup.strip() else tests
    return Program(f"{code}\n", tests, entry_points=(entry_point,) if entry_point else ())


def _compat_extract_and_align(text: str, entry_point: str) -> str:
    """The reference's code extraction and first-``def`` renaming (no CoT stripping here)."""
    blocks = _FENCE_RE.findall(text)
    if blocks:
        chosen = next((b for b in blocks if entry_point and f"def {entry_point}" in b), None)
        code = (chosen if chosen is not None else max(blocks, key=len)).strip()
    else:
        code = text
    return _compat_rename_first_def(code, entry_point) if entry_point else code


def _compat_rename_first_def(code: str, entry_point: str) -> str:
    """The reference's rename: the first ``def NAME(`` at a line start, when NAME is not the entry point, becomes
    the entry point, definition and every ``NAME(`` call."""
    m = _FIRST_DEF_RE.search(code)
    if m and m.group(1) != entry_point:
        old = re.escape(m.group(1))
        code = re.sub(rf"\bdef\s+{old}\b", f"def {entry_point}", code)
        code = re.sub(rf"\b{old}\s*\(", f"{entry_point}(", code)
    return code


# The reference's runner (code_execution.py) writes ``import resource`` and ``import sys`` above every program (then
# caps its memory at 256 MB): a program that uses ``sys`` without importing it runs there. Compat mode preloads the
# same two modules and caps the sandbox at the same memory; its timeouts are the scripts' own (docs/metrics.md).
COMPAT_PRELOAD = "import resource\nimport sys\n\n"
COMPAT_MEMORY_MB = 256
COMPAT_TIMEOUT_S = {"accuracy": 5.0, "subsets": 10.0}  # compute_code_quality.py; quality_filtered_diversity.py


def _compat_completion(output: str, compat_path: str) -> str:
    """The output as the reference's path reads it: CoT removed and surrounding whitespace stripped; the QFD script
    (``"subsets"``) first takes the longest fenced block, with no entry-point preference."""
    completion = strip_cot(output)
    return _compat_extract_and_align(completion, "") if compat_path == "subsets" else completion


def completion_program_compat(doc: dict, output: str, compat_path: str = "accuracy") -> str:
    """The whole program the reference runs for one output of a prompt-completion doc (module docstring,
    ``mode="compat"``), without the preloaded modules (:data:`COMPAT_PRELOAD`). ``compat_path="accuracy"``:
    ``compute_code_quality.py``; ``"subsets"``: ``quality_filtered_diversity.py``, where code that defines the entry
    point runs as it is (no renaming)."""
    completion = _compat_completion(output, compat_path)
    entry_point = doc["entry_point"]
    tests = f"{doc['test']}\n\ncheck({entry_point})\n"
    if compat_path == "subsets" and f"def {entry_point}" in completion:
        return f"{completion}\n\n{tests}"
    code = _compat_extract_and_align(completion, entry_point)
    if f"def {entry_point}" in code:
        return f"{code}\n\n{tests}"
    return f"{doc['prompt']}{completion}\n\n{tests}"


def assert_program_compat(doc: dict, output: str, compat_path: str = "accuracy") -> str:
    """The whole program the reference runs for one output of an assert-list doc (module docstring,
    ``mode="compat"``), without the preloaded modules; on the QFD path (``"subsets"``) the code is renamed once
    before the same preparation."""
    completion = _compat_completion(output, compat_path)
    expected = mbpp_entry_point(doc["test_list"]) or ""
    if compat_path == "subsets" and expected:
        completion = _compat_rename_first_def(completion, expected)
    code = _compat_extract_and_align(completion, expected)
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
    compat_path: str = "subsets",
) -> list[list[Verdict]]:
    """Grade every output of a whole code task by running it against the task's tests; ``programs`` says how a
    doc and an output become a program (the task record's :class:`ProgramFormat`), ``label`` names the task in
    errors.

    ``mode``: "official" (``programs.build``, a pass needs evidence that the tests completed) or "compat"
    (``programs.build_compat`` for ``compat_path``, a pass is exit status 0; every output runs, even an empty one;
    the reference's preloaded modules, memory cap and timeout of that path replace ``timeout_s``).

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
                built.append(COMPAT_PRELOAD + programs.build_compat(doc, out, compat_path))
            elif not final_text(out):
                verdicts[i][j] = Verdict(False, None, "no-code")
                continue
            else:
                built.append(programs.build(doc, out))
            where.append((i, j))
    results = run_programs(
        built,
        timeout_s=COMPAT_TIMEOUT_S[compat_path] if compat else timeout_s,
        memory_mb=COMPAT_MEMORY_MB if compat else 512,
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
