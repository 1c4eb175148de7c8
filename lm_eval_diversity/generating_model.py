"""What the generating model (lm-eval's ``LM``) imposes on a task, settled when lm-eval builds the task's requests,
before anything is generated: ``max_gen_toks`` against the model's context (one rule for ``hf`` and ``vllm``), the
batch size vLLM is driven with, and the request-cache key.

lm-eval hands a task no handle on the model. The model is the ``lm`` argument of ``lm_eval.evaluator.evaluate``,
which is on the call stack while requests are built (every entry point goes through it: the CLI,
``simple_evaluate``, ``evaluate``); with ``--apply_chat_template`` it is also the owner of the ``chat_template``
method lm-eval passes to ``build_all_requests``. Only public attributes of the model are read (``max_length``,
``max_gen_toks``, ``tok_encode``, ``batch_size``); ``--use_cache`` wraps it in lm-eval's ``CachingLM``, whose ``lm``
is the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys

from lm_eval_diversity.generation import cap_max_gen_toks

log = logging.getLogger(__name__)

_MAX_TOKEN_ALIASES = ("max_new_tokens", "max_tokens", "max_completion_tokens")  # lm-eval's, below max_gen_toks


def generating_model(build_kwargs: dict):
    """The model the task's requests go to, or None when it cannot be found (a caller outside lm-eval's evaluator)."""
    owner = getattr(build_kwargs.get("chat_template"), "__self__", None)
    lm = owner if owner is not None else _evaluate_frame_lm()
    inner = getattr(lm, "lm", None)  # lm-eval's CachingLM (--use_cache) wraps the model
    return inner if inner is not None and type(lm).__name__ == "CachingLM" else lm


def _evaluate_frame_lm():
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "evaluate" and frame.f_globals.get("__name__") == "lm_eval.evaluator":
            return frame.f_locals.get("lm")
        frame = frame.f_back
    return None


def is_vllm(lm) -> bool:
    return any(c.__module__ == "lm_eval.models.vllm_causallms" for c in type(lm).__mro__)


def context_arg(lm) -> str:
    """The model argument that sets the backend's context length."""
    return "max_model_len" if is_vllm(lm) else "max_length"


def fit_to_model(task: str, instances: list, gen: dict, lm) -> dict:
    """Cap every request's ``max_gen_toks`` to the model's context (:func:`cap_max_gen_toks`) and return what was
    used, for the generation protocol. ``gen`` (the task's ``generation_kwargs``) records the value used.

    Prompts are measured with the model's own ``tok_encode``, as its ``generate_until`` measures them. A model
    without ``max_length``/``tok_encode`` (an API model, a fake) is not checked.
    """
    from lm_eval.models.utils import normalize_gen_kwargs

    try:
        context = int(lm.max_length)
        default = int(getattr(lm, "max_gen_toks", 256))
        encode = lm.tok_encode
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        log.debug("%s: the model exposes no max_length/tok_encode; max_gen_toks not checked against it", task)
        return {}
    requested = max(
        int(normalize_gen_kwargs(inst.arguments[1], default)["max_gen_toks"]) for inst in instances
    )
    prompts = {inst.arguments[0] for inst in instances if isinstance(inst.arguments[0], str)}
    longest = max((len(encode(p)) for p in prompts), default=0)
    used, warning = cap_max_gen_toks(task, requested, longest, context, context_arg(lm))
    if warning:
        log.warning("%s", warning)
        for kwargs in [inst.arguments[1] for inst in instances] + [gen]:
            for alias in _MAX_TOKEN_ALIASES:
                kwargs.pop(alias, None)
            kwargs["max_gen_toks"] = used
    return {"max_gen_toks": used, "max_gen_toks_requested": requested, "model_context": context,
            "longest_prompt_tokens": longest}  # fmt: skip


def drive_vllm_in_one_call(task: str, lm) -> dict:
    """vLLM settings that would waste or repeat samples. Data parallelism is refused
    (:func:`lm_eval_diversity.command.check_data_parallel`). lm-eval's default ``--batch_size 1`` sends the K x N
    requests one at a time (no batching, no shared prompt prefix in flight): it is switched to ``auto`` (one call
    per task), with a warning; an explicit batch size above 1 is kept. Returns the batch size used, for the
    generation protocol."""
    if not is_vllm(lm):
        return {}
    dp = int(getattr(lm, "data_parallel_size", 1) or 1)
    if dp > 1:  # the same refusal as the lm-eval-diversity command's, for plain lm_eval
        from lm_eval_diversity.command import check_data_parallel

        check_data_parallel(["--model", "vllm", "--model_args", f"data_parallel_size={dp}"])
    if str(lm.batch_size) == "1":
        lm.batch_size = "auto"
        log.warning(
            "%s: vLLM was given batch size 1 (lm-eval's default), which sends the requests one at a time; "
            "switched to --batch_size auto (all of a task's requests in one call, docs/gpu_vllm.md)", task,
        )  # fmt: skip
    return {"vllm_batch_size": str(lm.batch_size)}


def requests_cache_key(tokenizer_name: str, task_config: dict) -> str:
    """lm-eval's ``--cache_requests`` key ends with the tokenizer name and ignores ``repeats`` and the generation
    settings; extending that name with a digest of the task's whole config (K, generation_kwargs, the diversity
    settings, the data) makes a cached request set serve only a run that would build the same one."""
    text = json.dumps(task_config, sort_keys=True, default=str)
    return f"{tokenizer_name}-diversity{hashlib.sha256(text.encode()).hexdigest()[:16]}"
