r"""Math verifiers for GSM8K, MATH-algebra and MATH-geometry (docs/metrics.md, "Graders: default and compat").

Two modes:

``mode="compat"`` reproduces the reference grader (the QFD script's gold rule) rule by rule, with its own
regular expressions and no LaTeX awareness:

* prediction (after CoT stripping) = the first rule that matches:
  1. ``####\s*(.+?)(?:\n|$)``: the text after ``####`` up to the end of the line;
  2. ``\boxed\{([^}]+)\}``: the first non-empty ``\boxed{...}`` whose content holds no ``}`` (nested braces are
     cut at the first ``}``; ``\boxed{}`` is skipped);
  3. ``(?:the\s+)?answer\s*(?:is|:)\s*([\-\$]?[\d,]+\.?\d*)`` (case-insensitive): one optional ``-`` or ``$``,
     then digits and commas, an optional point and digits (``answer is $-5`` does not match);
  4. ``(?<!\w)([\-]?\d[\d,]*\.?\d*)(?!\w)``: the last standalone number (``.5`` reads as ``5``);
  5. otherwise None (unparseable).
* normalisation: strip, drop ``$ % ,``; a finite float that is integral becomes the int string, other floats
  use ``'g'`` (6 significant digits); a non-number string is kept as is.
* equivalence: both sides normalised again, then equal strings, or both floats within 1e-6. None never matches.
* gold: GSM8K = the text after the first ``####`` line; MATH = the content of the **first** ``\boxed{...}`` of the
  solution by rule 2 (the QFD script's ``extract_boxed_answer``), None when there is none (every output then
  fails).

``mode="math"`` (default) uses HuggingFace ``math_verify`` for LaTeX / symbolic / numeric equivalence:

* gold: GSM8K = the number after ``####`` (commas removed); MATH = the **last** ``\boxed{...}`` of the
  solution with balanced braces (``\fbox`` too), parsed by math-verify.
* prediction: one final answer of the CoT-stripped output (a thought never closed holds none), by
  :func:`_predict`: the boxed answers (several different boxes read as a set), else a ``#### x`` line, else the
  last "answer is / answer:" statement, else candidate numbers ending the text, else math-verify's anchors and last
  expression. Lists, ranges and several candidates become a set, never equal to one value; thousands separators
  in well-formed groups are part of the number (``1,600``), a malformed one makes a list (``1,6001``).
* correct iff ``verify(gold, prediction)``; ``Verdict.answer`` is a canonical string of the prediction
  (integers as ``"18"``, rationals as ``"1/2"``, otherwise sympy's ``str``), None when unparseable;
  ``Verdict.answer_text`` is the text math-verify extracted (what :func:`answers_equal` compares two outputs by).
* sympy can hang on adversarial LaTeX (``9^{9^{9^9}}``). Every math-mode grading therefore runs in a child
  worker process (fork) with math-verify's own signal timeouts inside it, and a hard wall-clock limit in the
  parent: a worker that overruns is killed and restarted, and the output gets ``Verdict(False, None,
  "timeout")``. This works from any thread of the caller. ``isolate=False`` grades in-process (signal timeouts
  only in the main thread).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import re
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lm_eval_diversity.modes import MathMode, choices
from lm_eval_diversity.preprocess import final_text, strip_cot
from lm_eval_diversity.quality.types import GoldFormat, Verdict

# ----------------------------------------------------------------------------------------------------------
# compat mode (the reference grader)
# ----------------------------------------------------------------------------------------------------------
_HASH_RE = re.compile(r"####\s*(.+?)(?:\n|$)")
_GOLD_HASH_RE = re.compile(r"####\s*(.+?)$", re.MULTILINE)
_BOXED_FLAT_RE = re.compile(r"\\boxed\{([^}]+)\}")
_ANSWER_IS_RE = re.compile(r"(?:the\s+)?answer\s*(?:is|:)\s*([\-\$]?[\d,]+\.?\d*)", re.IGNORECASE)
_LAST_NUMBER_RE = re.compile(r"(?<!\w)([\-]?\d[\d,]*\.?\d*)(?!\w)")


def compat_extract(text: str) -> str | None:
    """Extract a raw answer string from an already CoT-stripped text by reference rules 1–5 (see module
    doc)."""
    for rx in (_HASH_RE, _BOXED_FLAT_RE, _ANSWER_IS_RE):
        m = rx.search(text)
        if m:
            return m.group(1).strip()
    nums = _LAST_NUMBER_RE.findall(text)
    if nums:
        return nums[-1]
    return None


def compat_normalize(answer: str | None) -> str | None:
    """Reference normalisation: strip, drop ``$ % ,``; integral floats → int string, other floats →
    ``'g'``."""
    if answer is None:
        return None
    s = answer.strip().replace("$", "").replace("%", "").replace(",", "")
    try:
        v = float(s)
    except (ValueError, OverflowError):
        return s
    if not math.isfinite(v):
        return s
    if v == int(v):
        return str(int(v))
    return format(v, "g")


def compat_equal(pred: str | None, gold: str | None) -> bool:
    """Reference equivalence: both normalised (again), then string equality or floats within 1e-6; None never
    matches."""
    if pred is None or gold is None:
        return False
    pred, gold = compat_normalize(pred), compat_normalize(gold)
    if pred == gold:
        return True
    try:
        return abs(float(pred) - float(gold)) < 1e-6
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------------------
# gold answers
# ----------------------------------------------------------------------------------------------------------
def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces (None if there is none)."""
    best: str | None = None
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth = 1
        i = m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        if depth == 0:
            best = text[m.end() : i - 1]
    if best is None:
        plain = re.findall(r"\\boxed (\S+)", text)  # "\boxed 5" form
        if plain:
            best = plain[-1].rstrip("$.")
    return best


def gold_answer(
    gold: GoldFormat, doc: dict[str, Any], mode: MathMode = "math", compat_path: str = "subsets"
) -> str | None:
    """The gold answer string of one doc, from its ``gold.field`` in ``gold.style``.

    ``final_line`` (GSM8K's format; both modes): the text after the first ``####`` line (compat: normalised; math:
    commas removed). ``boxed`` (MATH's format) compat: the first ``\\boxed{...}`` without ``}`` inside, normalised
    (None without one) for the QFD path (``compat_path="subsets"``), and for the accuracy path the prediction rule
    applied to the solution (``compute_math_quality.py`` extracts the gold as it extracts an answer); math: the last
    balanced ``\\boxed{}`` content of the solution.
    """
    if gold.style == "final_line":
        m = (_GOLD_HASH_RE if mode == "compat" else _HASH_RE).search(str(doc.get(gold.field, "")).strip())
        if not m:
            return None
        raw = m.group(1).strip()
        return compat_normalize(raw) if mode == "compat" else raw.replace(",", "").strip()
    solution = str(doc.get(gold.field, ""))
    if mode == "compat" and compat_path == "accuracy":
        return compat_normalize(compat_extract(strip_cot(solution)))
    if mode == "compat":
        m = _BOXED_FLAT_RE.search(solution)
        return compat_normalize(m.group(1).strip()) if m else None
    return last_boxed(solution)


# ----------------------------------------------------------------------------------------------------------
# math-verify mode
# ----------------------------------------------------------------------------------------------------------
_FALLBACK_RES = (
    re.compile(r"^\s*####\s*(.+?)\s*$", re.MULTILINE),
    re.compile(r"answer\s*(?:is|:)\s*:?\s*(.+?)(?:\.\s|\.?$|\n)", re.IGNORECASE),
)
_SIGNAL_TIMEOUT_S = 3
_EQUAL_JOB = "equal"  # first item of a worker job comparing two answers (grading jobs start with a gold style)


def _canon(expr: Any) -> str:
    import sympy

    try:
        if isinstance(expr, sympy.Integer):
            return str(int(expr))
        if isinstance(expr, sympy.Rational):
            return f"{expr.p}/{expr.q}"
        if isinstance(expr, sympy.Float):
            v = float(expr)
            return str(int(v)) if v == int(v) else format(v, ".10g")
        return str(expr)
    except Exception:
        return str(expr)


def _mv_parse(text: str, signal_timeout: int | None, *, gold_kind: str | None = None) -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    if gold_kind == "number":
        cfg: list[Any] = [ExprExtractionConfig(), LatexExtractionConfig()]
    else:
        cfg = [LatexExtractionConfig(), ExprExtractionConfig()]
    try:  # timeouts (a BaseException) propagate; a parser error just means "nothing extracted"
        return parse(text, extraction_config=cfg, parsing_timeout=signal_timeout, raise_on_error=True)
    except Exception:
        return []


def _parse_gold(style: str, gold: str, signal_timeout: int | None) -> list[Any]:
    """A math-mode gold answer string parsed as the grader parses it (``final_line``: number first; ``boxed``: as
    ``\\boxed``)."""
    if style == "final_line":
        return _mv_parse(gold, signal_timeout, gold_kind="number")
    return _mv_parse("$\\boxed{" + gold + "}$", signal_timeout)


def _answers_equal_inprocess(style: str, a: str, b: str, signal_timeout: int | None) -> bool:
    """Both answer texts parsed as gold answers of the gold ``style``, then math-verify in both directions (each
    would be graded correct against the other as gold); unparseable, timed out or failing comparisons are not
    equal."""
    from math_verify import verify

    try:
        pa, pb = _parse_gold(style, a, signal_timeout), _parse_gold(style, b, signal_timeout)
        if not (pa and pb):
            return False
        return bool(verify(pa, pb, timeout_seconds=signal_timeout, raise_on_error=True)) and bool(
            verify(pb, pa, timeout_seconds=signal_timeout, raise_on_error=True)
        )
    except BaseException as e:  # math-verify's TimeoutException, sympy errors: not shown to be equal
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return False


_ANCHOR_RE = re.compile(r"answer\s*(?:is|:|=)\s*:?\s*(.+?)(?:\.(?:\s|$)|\n|$)", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![\d,]*\d)")  # 1,600 and 1,234,567; not 1,6001
_NUM = r"-?\d+(?:\.\d+)?"
# several bare numbers joined as a list or a range: "5, 6 and 7", "18 or 19", "10 to 20", "10-20"
_JOIN = r"(?:\s*,\s*(?:or\s+|and\s+)?|\s+(?:or|and|to)\s+|[\u2013-])"
_CANDIDATES_RE = re.compile(rf"(?<![\w.,])({_NUM}(?:{_JOIN}{_NUM})+)(?![\w.,]*\d)")
_JOIN_RE = re.compile(rf"(?<=\d){_JOIN}(?=-?\d)")


def _without_thousands_separators(text: str) -> str:
    return _THOUSANDS_RE.sub(lambda m: m.group(0).replace(",", ""), text)


_TRAILING_WORDS_RE = re.compile(r"(?<=[\d)])\s+[A-Za-z].*$", re.DOTALL)


def _one_answer(region: str) -> str:
    """An answer statement's text as math-verify should read it (one LaTeX expression).

    LaTeX (a backslash) is passed on without its ``$`` delimiters. Plain text loses currency and percent signs,
    bold markers, trailing punctuation and the words after the number (units); bare numbers joined as a list or a
    range become a comma list, which math-verify reads as a set (never equal to one number). Thousands separators
    are removed from well-formed groups (``1,600``, ``1,234,567``); a malformed one (``1,6001``) stays a list.
    """
    text = re.sub(r"\$\s*(?:,\s*)?(?:or|and|,)\s*\$", ", ", region.strip().strip("*").strip())  # "$a$ or $b$"
    if "\\" not in text:
        text = _without_thousands_separators(text.replace("$", "").replace("%", "").replace("*", ""))
        m = _CANDIDATES_RE.search(text)
        if m:
            return _JOIN_RE.sub(", ", m.group(1))
        text = _TRAILING_WORDS_RE.sub("", text)
    return text.strip().strip("$").rstrip(".,;:!").strip()


def _answer_statement(text: str) -> str | None:
    """The text of the output's explicit final answer, when it states one: a ``#### x`` line (GSM8K's format),
    else the last "answer is / answer:" statement that holds a digit or LaTeX."""
    m = _FALLBACK_RES[0].search(text)
    if m:
        return m.group(1)
    for m in reversed(list(_ANCHOR_RE.finditer(text))):
        if re.search(r"[\d\\]", m.group(1)):
            return m.group(1)
    return None


def _trailing_candidates(text: str) -> str | None:
    """Several candidate numbers ending the output ("It could be 1600, 1700 or 1800."), as a comma list."""
    tail = _without_thousands_separators(re.split(r"(?<=\.)\s+|\n", text.strip())[-1])
    m = _CANDIDATES_RE.search(tail)
    if m and not re.search(r"\d", tail[m.end() :]):
        return _JOIN_RE.sub(", ", m.group(1))
    return None


def _predict(text: str, signal_timeout: int | None) -> list[Any]:
    """One final answer of a (CoT-removed) output, parsed by math-verify; ``[]`` when it states none.

    Boxed answers first (math-verify; several different boxes read as a set), then an explicit answer statement
    (:func:`_answer_statement`), then candidates ending the text (a set), then math-verify on the whole text (its
    anchors, then the last expression).
    """
    if "boxed" in text or "fbox" in text:
        pred = _mv_parse(text, signal_timeout)
        if pred:
            return pred
    statement = _answer_statement(text)
    if statement is not None:
        pred = _mv_parse("$" + _one_answer(statement) + "$", signal_timeout)
        if pred:
            return pred
    candidates = _trailing_candidates(text)
    if candidates is not None:
        return _mv_parse("$" + candidates + "$", signal_timeout)
    return _mv_parse(text, signal_timeout) if text else []


def _grade_one_inprocess(style: str, gold: str | None, output: str, signal_timeout: int | None) -> Verdict:
    """Grade one raw output against a math-mode gold string, in this process."""
    from math_verify import verify
    from math_verify.errors import TimeoutException

    text = final_text(output or "")
    try:
        gold_parsed = [] if gold is None else _parse_gold(style, gold, signal_timeout)
        pred = _predict(text, signal_timeout)
        if not pred:
            return Verdict(False, None, "unparseable")
        answer = _canon(pred[0])
        answer_text = pred[-1] if isinstance(pred[-1], str) else None
        if not gold_parsed:
            return Verdict(False, answer, "no_gold", answer_text=answer_text)
        ok = verify(gold_parsed, pred, timeout_seconds=signal_timeout, raise_on_error=True)
        return Verdict(bool(ok), answer, "" if ok else "wrong", answer_text=answer_text)
    except TimeoutException:
        return Verdict(False, None, "timeout")
    except Exception as e:  # sympy / parser errors on odd input: a failed, not a crashed, verdict
        return Verdict(False, None, f"error:{type(e).__name__}")


def _worker_main(conn: Any) -> None:
    # a forked worker inherits the CLI's handlers; it is stopped by its parent (SIGTERM at exit, SIGKILL on
    # overrun), so it dies quietly on SIGTERM and leaves Ctrl-C to the parent
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        if job[0] == _EQUAL_JOB:
            conn.send(_answers_equal_inprocess(*job[1:]))
            continue
        style, gold, output, st = job
        v = _grade_one_inprocess(style, gold, output, st)
        conn.send((v.correct, v.answer, v.reason, v.answer_text))


class _Worker:
    def __init__(self) -> None:
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def run(self, job: tuple, hard_timeout: float) -> Verdict | None:
        """Send one grading job; None when the worker overran ``hard_timeout`` (it is then killed)."""
        reply = self.call(job, hard_timeout)
        if reply is None:
            return None
        c, a, r, text = reply
        return Verdict(c, a, r, answer_text=text)

    def call(self, job: tuple, hard_timeout: float) -> Any:
        """Send one job and return the worker's reply; None when it overran ``hard_timeout`` (it is then
        killed)."""
        try:
            self.conn.send(job)
            if self.conn.poll(hard_timeout):
                return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            pass
        self.kill()
        return None

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class _WorkerPool:
    """Child processes that grade one output each; a worker that overruns its hard limit is killed and
    replaced."""

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _get(self) -> _Worker:
        if self._pid != os.getpid():  # forked copy of the pool: never reuse the parent's workers
            self._idle = queue.SimpleQueue()
            self._pid = os.getpid()
        try:
            w = self._idle.get_nowait()
            if w.alive():
                return w
            w.kill()
        except queue.Empty:
            pass
        with self._lock:  # one fork at a time; import sympy/math-verify first so that children inherit it
            import math_verify  # noqa: F401

            return _Worker()

    def grade(self, style: str, gold: str | None, output: str, hard_timeout: float) -> Verdict:
        w = self._get()
        st = max(1, int(math.ceil(min(_SIGNAL_TIMEOUT_S, hard_timeout))))
        v = w.run((style, gold, output, st), hard_timeout)
        if v is None:
            return Verdict(False, None, "timeout")
        self._idle.put(w)
        return v

    def equal(self, style: str, a: str, b: str, hard_timeout: float) -> bool:
        """:func:`answers_equal` in a worker; an overrun counts as not equal."""
        w = self._get()
        st = max(1, int(math.ceil(min(_SIGNAL_TIMEOUT_S, hard_timeout))))
        v = w.call((_EQUAL_JOB, style, a, b, st), hard_timeout)
        if v is None:
            return False
        self._idle.put(w)
        return bool(v)


_POOL = _WorkerPool()


def answers_equal(gold: GoldFormat, a: str, b: str, *, timeout_s: float = 10.0, isolate: bool = True) -> bool:
    """Math-mode equality of two extracted answers (``Verdict.answer_text``) of a task whose gold answers are
    written as ``gold``: each is parsed as the grader parses a gold answer and they are equal when math-verify
    accepts each against the other (the grader's own comparison, used in both directions). Runs in a grading worker
    with the hard ``timeout_s`` (an overrun is "not equal"); ``isolate=False`` compares in-process."""
    if not isolate:
        in_main = threading.current_thread() is threading.main_thread()
        st = max(1, int(math.ceil(min(_SIGNAL_TIMEOUT_S, timeout_s)))) if in_main else None
        return _answers_equal_inprocess(gold.style, a, b, st)
    return _POOL.equal(gold.style, a, b, timeout_s)


def grade_math(
    gold: GoldFormat,
    doc: dict[str, Any],
    outputs: Sequence[str],
    mode: MathMode = "math",
    *,
    timeout_s: float = 10.0,
    isolate: bool = True,
    workers: int = 1,
    label: str = "math",
    compat_path: str = "subsets",
) -> list[Verdict]:
    """Grade the raw outputs of one math doc whose gold answer is written as ``gold`` (see the module docstring
    for the rules of each mode); ``label`` names the task in errors.

    ``Verdict.answer`` is the normalised extracted prediction (None + reason ``"unparseable"`` when nothing
    could be extracted); ``reason`` is ``"wrong"``, ``"timeout"``, ``"no_gold"`` or ``"error:<Exception>"``
    otherwise. ``timeout_s`` is the hard wall-clock limit per output in math mode; ``workers`` > 1 grades
    outputs in parallel.
    """
    if mode == "compat":
        gold_text = _required_gold(gold, doc, "compat", None, label, compat_path)
        verdicts = []
        for out in outputs:
            pred = compat_normalize(compat_extract(strip_cot(out or "")))
            if pred is None:
                verdicts.append(Verdict(False, None, "unparseable"))
            else:
                ok = compat_equal(pred, gold_text)
                verdicts.append(Verdict(ok, pred, "" if ok else "wrong"))
        return verdicts
    if mode != "math":
        raise ValueError(f"unknown math mode {mode!r} (expected 'math' or 'compat')")
    gold_text = _required_gold(gold, doc, "math", None, label)
    return grade_math_many(
        gold, [(gold_text, o) for o in outputs], timeout_s=timeout_s, isolate=isolate, workers=workers
    )


def _required_gold(
    gold: GoldFormat, doc: dict[str, Any], mode: MathMode, index: int | None, label: str, compat_path: str = "subsets"
) -> str:
    """The doc's gold answer; a doc without one is refused, naming it (it could only ever score 0)."""
    text = gold_answer(gold, doc, mode, compat_path)
    if text is None:
        where = f"{label} doc {index}" if index is not None else f"{label} doc"
        want = "a '#### <answer>' line" if gold.style == "final_line" else "a \\boxed{...} answer"
        raise ValueError(f"{where}: key {gold.field!r} has no gold answer ({want} expected)")
    return text


def grade_math_many(
    gold: GoldFormat,
    items: Sequence[tuple[str | None, str]],
    *,
    timeout_s: float = 10.0,
    isolate: bool = True,
    workers: int = 1,
) -> list[Verdict]:
    """Math-mode grading of many ``(gold answer, raw_output)`` pairs of one task whose gold answers are written as
    ``gold``, optionally with parallel workers."""
    if not isolate:
        in_main = threading.current_thread() is threading.main_thread()
        st = max(1, int(math.ceil(min(_SIGNAL_TIMEOUT_S, timeout_s)))) if in_main else None
        return [_grade_one_inprocess(gold.style, g, o, st) for g, o in items]

    def one(item: tuple[str | None, str]) -> Verdict:
        return _POOL.grade(gold.style, item[0], item[1], timeout_s)

    if workers <= 1 or len(items) <= 1:
        return [one(it) for it in items]
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(one, items))


def grade_math_docs(
    gold: GoldFormat,
    docs: Sequence[dict[str, Any]],
    outputs: Sequence[Sequence[str]],
    mode: MathMode = "math",
    *,
    timeout_s: float = 10.0,
    workers: int = 1,
    label: str = "math",
    compat_path: str = "subsets",
) -> list[list[Verdict]]:
    """Grade a whole task: ``outputs[i]`` are the raw outputs of ``docs[i]``; parallel over all outputs.
    ``compat_path`` (compat mode): the reference's accuracy script ("accuracy") or QFD script ("subsets")."""
    if mode not in choices(MathMode):
        raise ValueError(f"unknown math mode {mode!r} (expected 'math' or 'compat')")
    for i, d in enumerate(docs):
        _required_gold(gold, d, mode, i, label, compat_path)  # every doc checked before any grading
    if mode == "compat":
        return [
            grade_math(gold, d, o, "compat", label=label, compat_path=compat_path)
            for d, o in zip(docs, outputs, strict=True)
        ]
    flat: list[tuple[str | None, str]] = []
    sizes = []
    for d, outs in zip(docs, outputs, strict=True):
        g = gold_answer(gold, d, "math")
        flat.extend((g, o) for o in outs)
        sizes.append(len(outs))
    res = grade_math_many(gold, flat, timeout_s=timeout_s, workers=workers)
    out: list[list[Verdict]] = []
    i = 0
    for n in sizes:
        out.append(res[i : i + n])
        i += n
    return out
