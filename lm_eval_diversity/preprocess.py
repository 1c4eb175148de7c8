"""Output preprocessing shared by every metric: chain-of-thought removal (docs/metrics.md, first paragraph).

The rules reproduce the reference exactly:

1. while the text holds ``<think>`` and a ``</think>`` after it, delete from the first ``<think>`` through the first
   ``</think>`` that follows it (tags included);
2. orphan close tag: if ``</think>`` is still present and ``<think>`` is not, delete everything up to and including
   the first ``</think>`` (the generation started inside a thought opened by the chat template);
3. strip surrounding whitespace.

A thought the model never closed (it hit the token limit) is kept whole, as in the reference; ``StrippedOutput``
flags it so callers can report how often that happens.

Thinking chat templates (OLMo-3-Think, Qwen3, DeepSeek-R1 style) end the prompt with ``<think>``, so the output
starts inside the thought. When the caller says so (``prompt_opened_think``), the output is read as if it began
with ``<think>``: the thought runs to the first ``</think>`` (even when the thought itself mentions ``<think>``),
and an output with no ``</think>`` at all is an unclosed thought. Such an output is kept whole, stripped of
surrounding whitespace, exactly as the reference keeps it (it cannot know the prompt opened a thought), and it is
counted as unclosed.
"""

from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class StrippedOutput:
    """One output after CoT removal, with the diagnostics the reference does not keep."""

    text: str
    unclosed_think: bool  # a ``<think>`` with no ``</think>`` after it survived the stripping (truncated thought)
    had_think: bool  # the raw text contained a think tag of either kind


def strip_cot(text: str) -> str:
    """Remove reasoning blocks from one raw output by the reference rules (see module docstring)."""
    return strip_cot_with_diagnostics(text).text


def prompt_opens_think(prompt: str) -> bool:
    """True when a rendered prompt ends inside an open thought (its last non-space text is ``<think>``)."""
    return prompt.rstrip().endswith(THINK_OPEN)


def strip_cot_with_diagnostics(text: str, prompt_opened_think: bool = False) -> StrippedOutput:
    """Like :func:`strip_cot`, also reporting whether an unclosed ``<think>`` remained.

    ``prompt_opened_think``: the prompt ended with ``<think>`` (see the module docstring).
    """
    if prompt_opened_think:
        if THINK_CLOSE not in text:  # the thought never closed: kept whole, as the reference does
            return StrippedOutput(text=text.strip(), unclosed_think=True, had_think=True)
        return strip_cot_with_diagnostics(THINK_OPEN + text)
    had_think = THINK_OPEN in text or THINK_CLOSE in text
    while True:
        start = text.find(THINK_OPEN)
        if start < 0:
            break
        end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end < 0:
            break
        text = text[:start] + text[end + len(THINK_CLOSE) :]
    if THINK_CLOSE in text and THINK_OPEN not in text:
        text = text[text.find(THINK_CLOSE) + len(THINK_CLOSE) :]
    unclosed = THINK_OPEN in text and THINK_CLOSE not in text[text.find(THINK_OPEN) :]
    return StrippedOutput(text=text.strip(), unclosed_think=unclosed, had_think=had_think)



def final_text(text: str, prompt_opened_think: bool = False) -> str:
    """What the default graders read of one raw output: the text after CoT removal, minus a thought the model never
    closed (from its ``<think>`` on). A truncated thought holds no final answer, only reasoning towards one; the
    reference keeps it whole and grades it (its rule is :func:`strip_cot`, used in compat mode)."""
    out = strip_cot_with_diagnostics(text, prompt_opened_think)
    if not out.unclosed_think:
        return out.text
    if prompt_opened_think and THINK_CLOSE not in text:
        return ""
    return out.text[: out.text.find(THINK_OPEN)].strip()
