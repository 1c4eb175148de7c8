"""What the generating model imposes, settled before generation: ``max_gen_toks`` against its context (one rule
for every backend), vLLM's batch size, and lm-eval's caches keyed so that they never serve another K or sampling."""

from __future__ import annotations

import lm_eval
import pytest
from lm_eval.api.model import CachingLM

from lm_eval_diversity.generating_model import drive_vllm_in_one_call, generating_model
from lm_eval_diversity.generation import ContextLengthError, cap_max_gen_toks
from lm_eval_diversity.lm_eval_cli import task_manager

from .fakes import GoldLM


def test_cap_is_context_minus_longest_prompt():
    # lighteval: min(max_new_tokens, max_length - context_size)
    assert cap_max_gen_toks("t", 32768, 100, 8192, "max_model_len")[0] == 8092
    used, warning = cap_max_gen_toks("t", 32768, 8191, 8192, "max_length")
    assert used == 1 and "capped to 1" in warning and "max_length=N" in warning
    assert cap_max_gen_toks("t", 256, 100, 8192, "max_model_len") == (256, None)
    assert cap_max_gen_toks("t", 8092, 100, 8192, "max_model_len") == (8092, None)


def test_no_room_is_refused_saying_what_to_pass():
    with pytest.raises(ContextLengthError, match=r"--model_args max_model_len=N with N >= 8292"):
        cap_max_gen_toks("diversity_x", 100, 8192, 8192, "max_model_len")


class ContextLM(GoldLM):
    """A fake model with a context of ``max_length`` tokens (one token per character) and lm-eval's default
    ``max_gen_toks``; it records the generation kwargs it was sent."""

    max_gen_toks = 256

    def __init__(self, max_length: int):
        super().__init__()
        self.max_length = max_length
        self.sent: list[dict] = []

    def tok_encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.sent += [dict(r.args[1]) for r in requests]
        return super().generate_until(requests, disable_tqdm)


def evaluate(lm, *, repeats: int = 2, limit: int = 2, **kwargs):
    tm = task_manager(include_defaults=False, metadata={"repeats": repeats})
    return lm_eval.simple_evaluate(
        model=lm, tasks=["diversity_gsm8k"], task_manager=tm, limit=limit, log_samples=True, bootstrap_iters=0,
        predict_only=True, **kwargs,
    )  # fmt: skip


def test_max_gen_toks_capped_before_generation(harness_env):
    lm = ContextLM(max_length=1000)
    res = evaluate(lm, gen_kwargs="max_gen_toks=32768")
    prompts = [s["arguments"][0][0] for s in res["samples"]["diversity_gsm8k"]]  # (context, gen_kwargs)
    room = 1000 - max(len(p) for p in prompts)  # one token per character
    assert 0 < room < 1000
    assert {k["max_gen_toks"] for k in lm.sent} == {room}, "every request asks for what fits"
    protocol = res["configs"]["diversity_gsm8k"]["metadata"]["generation_protocol"]
    assert protocol["max_gen_toks"] == room and protocol["max_gen_toks_requested"] == 32768
    assert protocol["model_context"] == 1000
    assert res["configs"]["diversity_gsm8k"]["generation_kwargs"]["max_gen_toks"] == room


def test_max_gen_toks_that_fits_is_left_alone(harness_env):
    lm = ContextLM(max_length=100_000)
    res = evaluate(lm, gen_kwargs="max_gen_toks=500")
    assert {k["max_gen_toks"] for k in lm.sent} == {500}
    assert res["configs"]["diversity_gsm8k"]["metadata"]["generation_protocol"]["max_gen_toks_requested"] == 500


def test_prompt_longer_than_the_context_is_refused_before_generation(harness_env):
    lm = ContextLM(max_length=20)
    with pytest.raises(ContextLengthError, match="max_length=N"):
        evaluate(lm)
    assert lm.sent == [], "nothing may be generated before the refusal"


@pytest.mark.slow
def test_hf_model_with_a_short_context(harness_env, tiny_gpt2):
    """lm-eval's HF backend itself, given a context of 192 tokens (``max_length``, as ``--model_args``); the tasks
    ask for 32768 tokens by default, which lm-eval's HF backend refuses outright."""
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(tiny_gpt2), dtype="float32", device="cpu", batch_size=8, max_length=192)
    res = evaluate(lm, limit=1)
    (sample,) = res["samples"]["diversity_gsm8k"]
    prompt, sent = sample["arguments"][0]
    longest = len(lm.tok_encode(prompt))
    protocol = res["configs"]["diversity_gsm8k"]["metadata"]["generation_protocol"]
    assert protocol["max_gen_toks_requested"] == 32768 and protocol["model_context"] == 192
    assert protocol["max_gen_toks"] == sent["max_gen_toks"] == 192 - longest > 0
    assert all(isinstance(r, str) for r in sample["resps"][0])


class FakeVLLM(ContextLM):
    """Stands in for lm-eval's vLLM backend (identified by its module), with lm-eval's CLI default batch size."""

    def __init__(self, batch_size, data_parallel_size: int = 1):
        super().__init__(max_length=100_000)
        self.batch_size = batch_size
        self.data_parallel_size = data_parallel_size


FakeVLLM.__module__ = "lm_eval.models.vllm_causallms"


def test_vllm_batch_size_1_becomes_auto():
    lm = FakeVLLM(batch_size=1)
    assert drive_vllm_in_one_call("t", lm) == {"vllm_batch_size": "auto"} and lm.batch_size == "auto"
    lm = FakeVLLM(batch_size=16)
    assert drive_vllm_in_one_call("t", lm) == {"vllm_batch_size": "16"} and lm.batch_size == 16
    assert drive_vllm_in_one_call("t", ContextLM(100)) == {}, "other backends are left alone"


def test_vllm_batch_size_recorded_through_lm_eval(harness_env):
    lm = FakeVLLM(batch_size=1)
    res = evaluate(lm)
    assert lm.batch_size == "auto"
    assert res["configs"]["diversity_gsm8k"]["metadata"]["generation_protocol"]["vllm_batch_size"] == "auto"


def test_vllm_data_parallel_refused_under_plain_lm_eval(harness_env):
    lm = FakeVLLM(batch_size="auto", data_parallel_size=2)
    with pytest.raises(ValueError, match="data_parallel_size=2"):
        evaluate(lm)
    assert lm.sent == []


def test_the_model_behind_lm_evals_caching_wrapper(tmp_path):
    lm = FakeVLLM(batch_size=1)
    cached = CachingLM(lm, str(tmp_path / "cache.db"))
    assert generating_model({"chat_template": cached.apply_chat_template}) is lm
    assert generating_model({}) is None, "outside lm-eval's evaluate there is no model to find"


def _per_doc_k(res) -> set[int]:
    return {len(s["resps"][0]) for s in res["samples"]["diversity_gsm8k"]}


@pytest.mark.slow  # four fake-LM runs through lm-eval's request cache
def test_request_cache_never_serves_another_k_or_sampling(harness_env, tmp_path, monkeypatch):
    import lm_eval.caching.cache as cache

    from lm_eval_diversity.loader import DEMO_DATA_DIR

    monkeypatch.setattr(cache, "PATH", str(tmp_path))
    monkeypatch.setenv("LM_EVAL_DIVERSITY_DATA_DIR", str(DEMO_DATA_DIR))  # a cached request set holds every doc
    first = evaluate(ContextLM(100_000), repeats=2, cache_requests=True)
    assert _per_doc_k(first) == {2} and len(list(tmp_path.iterdir())) == 1
    lm = ContextLM(100_000)
    other_k = evaluate(lm, repeats=4, cache_requests=True)
    assert _per_doc_k(other_k) == {4} and len(lm.sent) == 2 * 4
    lm = ContextLM(100_000)
    evaluate(lm, repeats=4, cache_requests=True, gen_kwargs="temperature=0.9")
    assert {k["temperature"] for k in lm.sent} == {0.9}, "a cached request set of T 0.6 must not serve T 0.9"
    assert len(list(tmp_path.iterdir())) == 3, "one cached request set per K and sampling"
    import lm_eval.api.task as task_module

    loaded = []
    load = task_module.load_from_cache
    monkeypatch.setattr(task_module, "load_from_cache", lambda **kw: loaded.append(load(**kw)) or loaded[-1])
    again = evaluate(ContextLM(100_000), repeats=2, cache_requests=True)  # the first run's request set
    assert len(loaded) == 1 and loaded[0], "served from the cache, not rebuilt"
    assert _per_doc_k(again) == {2} and len(list(tmp_path.iterdir())) == 3
    assert [s["doc_hash"] for s in again["samples"]["diversity_gsm8k"]] == [
        s["doc_hash"] for s in first["samples"]["diversity_gsm8k"]
    ]


def test_response_cache_never_serves_sampled_requests(harness_env, tmp_path):
    """``--use_cache``: lm-eval bypasses its response cache for sampled requests, and every task samples."""
    db = str(tmp_path / "responses")
    evaluate(ContextLM(100_000), repeats=2, use_cache=db)
    lm = ContextLM(100_000)
    res = evaluate(lm, repeats=4, use_cache=db)
    assert len(lm.sent) == 2 * 4 and _per_doc_k(res) == {4}, "every sample generated afresh"
