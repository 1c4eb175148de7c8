"""Adding a task is one record and its functions: a toy task registered from this module only (no package file
edited), its YAML generated into a temporary directory, run through lm-eval's ``simple_evaluate`` with a fake LM."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from lm_eval_diversity.catalogue.generate import write_task_configs
from lm_eval_diversity.catalogue.tasks import Category, DatasetSpec, TaskRecord, registered_task

K = 2
TEXTS = ("alpha beta gamma", "delta epsilon zeta")  # sample j of every prompt: TEXTS[j % 2]
QUESTIONS = ("Why is the sky blue?", "Name a prime.", "What is a river?")


def prompt_toy(doc: Mapping[str, Any]) -> str:
    return f"Q: {doc['question']}\nA:"


def target_toy(doc: Mapping[str, Any]) -> str:
    return doc["answer"]


TOY = TaskRecord(
    "toy", "Three toy questions", Category("toy", "toy", "Toy"),
    DatasetSpec("nobody/toy-questions", None, "test", "toy/test.jsonl"),
    prompt_toy, target_toy, ("\n\n",), '`"Q: {question}\\nA:"`', "answer",
    max_gen_toks=64, n_docs=3,
)  # fmt: skip


def _fake_lm():
    """A fake LM (built here so that importing this module needs no lm-eval) that records the prompts it gets."""
    from tests.harness.fakes import GenerationOnlyLM, with_repeat_index

    class _LM(GenerationOnlyLM):
        def __init__(self) -> None:
            super().__init__()
            self.prompts: list[str] = []

        def generate_until(self, requests, disable_tqdm: bool = False):
            out = []
            for r, j in with_repeat_index(requests):
                self.prompts.append(r.args[0])
                out.append(TEXTS[j % 2])
            return out

    return _LM()


@pytest.fixture()
def toy_configs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    data = tmp_path / "data"
    (data / "toy").mkdir(parents=True)
    rows = [{"question": q, "answer": f"a{i}"} for i, q in enumerate(QUESTIONS)]
    (data / "toy" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with registered_task(TOY):
        configs = tmp_path / "configs"
        write_task_configs(configs)
        yield configs, data


@pytest.mark.slow
def test_toy_task_runs_through_lm_eval(toy_configs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    configs, data = toy_configs
    assert "task_record: toy" in (configs / "diversity_toy.yaml").read_text(encoding="utf-8")
    assert "diversity_toy" in (configs / "div_toy.yaml").read_text(encoding="utf-8")
    monkeypatch.setenv("LM_EVAL_DIVERSITY_METRICS", "ead")  # no embedding or NLI model: values by hand below
    monkeypatch.delenv("LM_EVAL_DIVERSITY_DATA_DIR", raising=False)
    monkeypatch.delenv("LM_EVAL_DIVERSITY_MAX_DOCS", raising=False)
    tm = TaskManager(
        include_path=str(configs), include_defaults=False, metadata={"repeats": K, "data_dir": str(data)}
    )
    lm = _fake_lm()
    res = lm_eval.simple_evaluate(
        model=lm, tasks=["div_toy"], task_manager=tm, log_samples=True, bootstrap_iters=0
    )
    # the three docs, in the reference's selection order, rendered by the toy prompt, each sampled K times; the
    # default prompt format (lighteval's request) puts a blank line before a query sent without a chat template
    assert sorted(lm.prompts) == sorted(f"\n\nQ: {q}\nA:" for q in QUESTIONS for _ in range(K))
    r = res["results"]["diversity_toy"]
    # per prompt: two distinct 3-token outputs, so C_n = U_n = 2 * (4 - n) for n <= 3 and 0 for n = 4, 5;
    # U_n / (V (1 - (1 - 1/V)^C_n)) exceeds 1 when U_n = C_n, so it is clipped: EAD = (1 + 1 + 1 + 0 + 0) / 5
    assert r["ead,div"] == pytest.approx(0.6, abs=1e-12)
    assert r["dup_rate,div"] == 0.0 and r["empty_rate,div"] == 0.0 and r["unclosed_think_rate,div"] == 0.0
    assert "sbert,div" not in r and "acc,div" not in r  # metrics not run and no grader: no rows
    assert res["results"]["div_toy"]["ead,div"] == pytest.approx(0.6, abs=1e-12)
    samples = res["samples"]["diversity_toy"]
    assert sorted(s["doc"]["split_index"] for s in samples) == [0, 1, 2]
    assert all(len(s["resps"][0]) == K for s in samples)
    assert {s["target"] for s in samples} == {"a0", "a1", "a2"}
    assert res["configs"]["diversity_toy"]["generation_kwargs"]["max_gen_toks"] == 64
