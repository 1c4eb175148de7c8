"""The model-free metrics beyond the paper's four (lexical, answer classes, functional classes, AST) through
lm-eval's ``simple_evaluate`` with a fake LM, and ``score`` on the samples of that run; values by hand."""

from __future__ import annotations

import json
import math
import re

import lm_eval
import pytest

from lm_eval_diversity.cli import main as cli_main
from lm_eval_diversity.lm_eval_cli import task_manager
from tests.harness.fakes import GoldLM, run_saved, with_repeat_index

K = 4
LIMIT = 2
ANSWERS = ("distinct_answers", "distinct_answers_norm", "answer_entropy", "no_answer_rate")
CHOSEN = ("distinct_1", "self_bleu", *ANSWERS)  # no metric model: none is loaded
# GoldLM(n_reasons=4, wrong_every=2): sample j is "<REASONS[j]>\n#### <answer>", samples 1 and 3 answer gold + 1.
# Words (str.split): 4 + 4 + 5 + 3 reasoning words, all distinct ("step" and "step." differ), then "####" and the
# answer in each output: 24 words, 16 + 1 + 2 distinct.
BY_HAND = {
    "distinct_answers": 2.0,  # gold (samples 0, 2) and gold + 1 (samples 1, 3)
    "distinct_answers_norm": 0.5,
    "answer_entropy": math.log(2),  # two classes of 2
    "no_answer_rate": 0.0,
    "distinct_1": 19 / 24,
}


@pytest.fixture(scope="module")
def gsm8k_run(harness_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_EVAL_DIVERSITY_METRICS", ",".join(CHOSEN))
        res = run_saved(GoldLM(n_reasons=4, wrong_every=2), ["diversity_gsm8k"], out, repeats=K, limit=LIMIT)
    return res, out


def test_gsm8k_run_shows_the_free_metrics(gsm8k_run):
    res, _ = gsm8k_run
    results = res["results"]["diversity_gsm8k"]
    for name, value in BY_HAND.items():
        assert results[f"{name},div"] == pytest.approx(value, abs=1e-12), name
    assert 0 < results["self_bleu,div"] < 1  # shared "####" only: alike in part
    assert results["acc,div"] == 1.0 and results["k_correct,div"] == 2.0
    assert "ead,div" not in results and "distinct_2,div" not in results  # not chosen: not shown
    assert "ast_distinct,div" not in results and "distinct_behaviours,div" not in results  # code tasks only
    assert "distinct_1_overall,div" not in results  # corpus levels of the lexical measures: opt-in
    settings = res["configs"]["diversity_gsm8k"]["metadata"]["diversity_settings"]
    assert settings["lexical_mode"] == "default"
    for s in res["samples"]["diversity_gsm8k"]:
        assert s["distinct_answers"] == 2.0 and s["no_answer_rate"] == 0.0


def test_score_on_the_samples_gives_the_same_values(gsm8k_run, tmp_path):
    _, out = gsm8k_run
    dest = tmp_path / "score.json"
    args = ["score", str(out), "--output_path", str(dest), "--diversity_metrics", ",".join(CHOSEN)]
    assert cli_main(args) == 0
    task = json.loads(dest.read_text())["tasks"]["diversity_gsm8k"]
    for name, value in BY_HAND.items():
        assert task["metrics"][name]["per_input_mean"] == pytest.approx(value, abs=1e-12), name
    assert all(row["distinct_answers"] == 2.0 for row in task["per_prompt"])
    assert "ast_distinct" not in task["metrics"]


def test_lexical_mode_compat_changes_compression(harness_env, tmp_path):
    """``lexical_mode`` reaches the scoring: the compat compression ratio (gzip twice) is lower than the default."""
    from lm_eval_diversity.scoring import PromptGroup, score_groups
    from lm_eval_diversity.settings import DiversitySettings

    groups = [PromptGroup(0, ["the cat sat on the mat"] * 3)]
    default = score_groups(groups, DiversitySettings(metrics=("compression_ratio",)))
    compat = score_groups(groups, DiversitySettings(metrics=("compression_ratio",), lexical_mode="compat"))
    text = " ".join(["the cat sat on the mat"] * 3).encode()
    import gzip

    assert default.metrics["compression_ratio"]["per_input_mean"] == pytest.approx(
        len(text) / len(gzip.compress(text, compresslevel=9, mtime=0))
    )
    assert compat.metrics["compression_ratio"]["per_input_mean"] < default.metrics["compression_ratio"][
        "per_input_mean"
    ]


class CodeLM(GoldLM):
    """MBPP programs: sample 0 the gold solution; samples 1 and 2 a stub returning None under the entry point's name
    (the same program, one with a comment: one behaviour, one AST); sample 3 does not parse."""

    def generate_until(self, requests, disable_tqdm: bool = False):
        out = []
        for r, j in with_repeat_index(requests):
            name = re.search(r"assert\s+(?:not\s+)?\(?\s*(\w+)\(", r.doc["test_list"][0]).group(1)
            stub = f"def {name}(*args, **kwargs):\n    return None"
            out.append([f"```python\n{r.doc['code']}\n```", stub, stub + "  # a comment", f"def {name}(:"][j])
        return out


def test_code_run_shows_functional_classes_and_ast(harness_env):
    chosen = ("distinct_behaviours", "distinct_behaviours_norm", "behaviour_entropy", "unrunnable_rate",
              "ast_distinct", "ast_pairwise", "parseability_rate")  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_EVAL_DIVERSITY_METRICS", ",".join(chosen))
        tm = task_manager(include_defaults=False, metadata={"repeats": K})
        res = lm_eval.simple_evaluate(
            model=CodeLM(), tasks=["diversity_mbpp"], task_manager=tm, limit=LIMIT, log_samples=True,
            bootstrap_iters=0, confirm_run_unsafe_code=True,
        )  # fmt: skip
    r = res["results"]["diversity_mbpp"]
    assert r["pass@1,div"] == 0.25  # the gold solution only
    # classes: {gold}, {stub, stub with comment}, {no signature: does not parse}
    assert r["distinct_behaviours,div"] == 3.0
    assert r["distinct_behaviours_norm,div"] == 0.75
    assert r["behaviour_entropy,div"] == pytest.approx(-(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5)))
    assert r["unrunnable_rate,div"] == 0.25
    assert r["parseability_rate,div"] == 0.75
    assert 0 < r["ast_distinct,div"] <= 1 and 0 < r["ast_pairwise,div"] <= 1
    assert "distinct_answers,div" not in r  # answer classes: maths and cruxeval only
    # one correct program per prompt: no diversity among the correct ones
    assert r["ast_pairwise_correct,div"] is None or math.isnan(r["ast_pairwise_correct,div"])
    for s in res["samples"]["diversity_mbpp"]:
        assert s["distinct_behaviours"] == 3.0 and s["parseability_rate"] == 0.75
