"""What generation gets: checks on the sampling settings, the task's stop strings, and the no-CoT pre-fill.

Every setting here changes the K samples of a prompt; the values used are recorded by the task class in
``config.metadata["generation_protocol"]`` (docs/tasks.md).
"""

from __future__ import annotations

from lm_eval_diversity.modes import SAMPLING_PRESETS
from lm_eval_diversity.preprocess import prompt_opens_think

NO_COT_PREFIX = "<think>\n\n</think>\n\n"  # an empty thought, for templates that do not open one
NO_COT_CLOSE = "\n</think>\n\n"  # closes the thought a thinking template opened with <think>


class SamplingConfigError(ValueError):
    """Generation settings that would make the K samples identical or stale."""


def check_generation_kwargs(task: str, gen_kwargs: dict, repeats: int) -> list[str]:
    """Refuse settings that make the K samples identical; return warnings for the doubtful ones.

    Greedy decoding (``do_sample`` false, or temperature missing/0) gives K copies of one output; a per-request
    ``seed`` makes vLLM draw the K clones identically; ``n`` makes vLLM generate n sequences and keep one.
    """
    do_sample = gen_kwargs.get("do_sample")
    temperature = gen_kwargs.get("temperature")
    if not do_sample or temperature is None or float(temperature) <= 0:
        raise SamplingConfigError(
            f"{task}: generation_kwargs do_sample={do_sample!r}, temperature={temperature!r} decode greedily, so "
            f"the {repeats} samples per prompt would be identical; use --gen_kwargs do_sample=True,temperature=0.6"
        )
    for key, why in (
        ("seed", "a per-request seed makes every repeat of a prompt draw the same sample (vLLM)"),
        ("n", "vLLM would generate n sequences and the harness keeps only the first"),
    ):
        if key in gen_kwargs:
            raise SamplingConfigError(
                f"{task}: generation_kwargs contains {key!r}: {why}; remove it (vLLM engine seed: --model_args seed=N)"
            )
    warnings = []
    if repeats < 2:
        warnings.append(
            f"{task}: repeats={repeats}: diversity needs K >= 2 samples per prompt; diversity metrics will be NaN "
            "(undefined), not 0"
        )
    return warnings


class ContextLengthError(ValueError):
    """A prompt leaves no room to generate in the model's context."""


def cap_max_gen_toks(
    task: str, max_gen_toks: int, longest_prompt: int, context: int, context_arg: str
) -> tuple[int, str | None]:
    """``max_gen_toks`` that fits the model's context after the task's longest prompt, and the warning when capped.

    lighteval's rule (its transformers backend, docs/gpu_vllm.md "Generation length"): ``min(max_gen_toks,
    context - prompt)``, with the prompt of the batch's longest request; lm-eval sends a task's requests together,
    so the batch is the task. The prompt is never cut (lm-eval's backends would cut it from the left, to nothing
    when ``max_gen_toks`` >= the context). No room at all is refused, saying what to pass (``context_arg``, the
    backend's model argument for its context length).
    """
    room = context - longest_prompt
    if room < 1:
        raise ContextLengthError(
            f"{task}: the longest prompt is {longest_prompt} tokens and the model's context is {context} tokens, "
            f"which leaves no room to generate; pass a longer context (--model_args {context_arg}=N with N >= "
            f"{longest_prompt + max_gen_toks}, if the model supports it) or fewer/shorter prompts"
        )
    if max_gen_toks <= room:
        return max_gen_toks, None
    return room, (
        f"{task}: max_gen_toks {max_gen_toks} + the longest prompt ({longest_prompt} tokens) exceed the model's "
        f"context ({context} tokens): max_gen_toks capped to {room} (lighteval's rule; the prompt is kept whole). "
        f"To choose yourself: --gen_kwargs max_gen_toks=N (N <= {room}), or a longer context with "
        f"--model_args {context_arg}=N"
    )


def check_sampling_preset(task: str, name: str, gen: dict) -> None:
    """``--sampling NAME`` and ``--gen_kwargs`` must not disagree on temperature / top_p."""
    for key, value in SAMPLING_PRESETS[name].items():
        if key in gen and gen[key] is not None and float(gen[key]) != value:
            raise SamplingConfigError(
                f"{task}: --sampling {name} sets {key}={value} but generation_kwargs has {key}={gen[key]!r} "
                f"(from --gen_kwargs?); drop one of the two"
            )


def uses_task_stops(mode: str, chat_template_applied: bool) -> bool:
    """Whether generation stops at the task's ``until`` strings (``stop_sequences`` setting, docs/tasks.md).

    ``auto`` follows the reference protocol: stop strings only for plain-text prompts; with a chat template the
    output ends at EOS or ``max_gen_toks``. ``task`` always keeps them, ``none`` never uses them.
    """
    return mode == "task" or (mode == "auto" and not chat_template_applied)


def no_cot_prefill(no_cot: bool | str | None, prompt: str) -> str:
    """The text appended to a rendered prompt for the no-CoT condition ("" when it is off).

    ``True``: an empty thought; when the prompt already opened one (a thinking template ends it with ``<think>``)
    only its closing part. A string is used verbatim.
    """
    if no_cot is None or no_cot is False:
        return ""
    if isinstance(no_cot, str):
        return no_cot
    return NO_COT_CLOSE if prompt_opens_think(prompt) else NO_COT_PREFIX


def request_text(query: str, prompt_format: str) -> str:
    """The task template's text as the request carries it (``prompt_format`` setting, docs/tasks.md).

    ``lighteval``: stripped of surrounding whitespace, as lighteval's prompt manager does with every query
    (``_extract_query`` with the empty instruction of the reference's tasks); ``plain``: unchanged.
    """
    return query.strip() if prompt_format == "lighteval" else query


def plain_prefix(prompt_format: str) -> str:
    """What precedes the query when no chat template is applied: ``lighteval`` joins ``[instruction, query]`` with
    a blank line, and the reference's instruction is empty, so the request starts with ``"\n\n"``; ``plain``:
    nothing."""
    return "\n\n" if prompt_format == "lighteval" else ""
