"""The passes of the model-free kinds (answers, behaviours, code) inside ``score_groups``: values by hand on small
constructed groups, and where each metric is (not) computed."""

from __future__ import annotations

import math

import pytest

from lm_eval_diversity.catalogue import metrics as catalogue
from lm_eval_diversity.quality.types import Verdict
from lm_eval_diversity.scoring import PromptGroup, score_groups
from lm_eval_diversity.settings import DiversitySettings

ANSWERS = ("distinct_answers", "distinct_answers_norm", "answer_entropy", "no_answer_rate")
BEHAVIOURS = ("distinct_behaviours", "distinct_behaviours_norm", "behaviour_entropy", "unrunnable_rate")
AST = ("ast_distinct", "ast_pairwise", "parseability_rate")


def test_answer_classes_by_hand():
    # cruxeval equality: "[1, 2]" equals "[1,2]"; None: no answer (a class of its own)
    verdicts = [
        [Verdict(True, "[1, 2]"), Verdict(True, "[1,2]"), Verdict(False, "3"), Verdict(False, None)],
        [Verdict(False, "7")] * 4,  # identical answers: one class
        [Verdict(False, "1")],  # one output: no diversity (NaN)
    ]
    groups = [PromptGroup(i, ["x"] * len(vs)) for i, vs in enumerate(verdicts)]
    res = score_groups(groups, DiversitySettings(metrics=ANSWERS), verdicts=verdicts, task_name="diversity_cruxeval")
    rows = res.per_prompt
    assert [rows[0][m] for m in ANSWERS] == pytest.approx(
        [3.0, 0.75, -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), 0.25]
    )
    assert [rows[1][m] for m in ANSWERS] == [1.0, 0.25, 0.0, 0.0]
    assert all(math.isnan(rows[2][m]) for m in ANSWERS)
    assert res.metrics["distinct_answers"]["per_input_mean"] == 2.0  # prompts 0 and 1


def test_verdict_kinds_need_verdicts_and_their_tasks():
    groups = [PromptGroup(0, ["a", "b"])]
    chosen = DiversitySettings(metrics=(*ANSWERS, *BEHAVIOURS, *AST, "distinct_1"))
    # no verdicts (an ungraded run), no task: only the lexical measure runs
    assert set(score_groups(groups, chosen).metrics) == {"distinct_1"}
    v = [[Verdict(False, "1"), Verdict(False, "2")]]
    # with verdicts, also the quality of every graded task and the (here undefined) quality-filtered `computable`
    graded = {*catalogue.quality_metrics(), "computable", "pass@2"}  # pass@k for k <= K, and K itself
    assert set(score_groups(groups, chosen, verdicts=v, task_name="diversity_gsm8k").metrics) - graded == {
        *ANSWERS, "distinct_1"
    }
    compat = chosen.replace(code_mode="compat")  # no behaviour signatures in compat mode
    with_verdicts = score_groups(groups, compat, verdicts=v, task_name="diversity_mbpp").metrics
    assert set(with_verdicts) - graded == {*AST, "distinct_1", "ast_distinct_correct", "ast_pairwise_correct",
                                           "parseability_rate_correct"}


def test_functional_classes_and_ast_with_the_correct_subset():
    add = "def add(a, b):\n    return a + b"
    sub = "def add(a, b):\n    return a - b"
    outputs = [f"```python\n{add}\n```", sub, sub + "  # same tree", "def add(a, b) return"]
    verdicts = [[Verdict(True, behaviour="pass"), Verdict(False, behaviour="ret -1"),
                 Verdict(True, behaviour="ret -1"), Verdict(False)]]  # fmt: skip
    correct = [[v.correct for v in verdicts[0]]]
    res = score_groups(
        [PromptGroup(0, outputs)], DiversitySettings(metrics=(*BEHAVIOURS, *AST)), verdicts=verdicts,
        correct=correct, task_name="diversity_humaneval",
    )  # fmt: skip
    row = res.per_prompt[0]
    # classes {0}, {1, 2}, unrunnable {3}
    assert [row[m] for m in BEHAVIOURS] == pytest.approx(
        [3.0, 0.75, -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), 0.25]
    )
    # one height-4 subtree per parsed program (the Return: Name 2, BinOp 3, Return 4): R+ once, R- twice
    assert row["parseability_rate"] == 0.75
    assert row["ast_distinct"] == pytest.approx(2 / 3)
    assert row["ast_pairwise"] == pytest.approx(2 / 3)  # distances 1, 1, 0
    # correct outputs 0 and 2: two different subtrees
    assert row["ast_distinct_correct"] == 1.0 and row["ast_pairwise_correct"] == 1.0
    assert row["parseability_rate_correct"] == 1.0


def test_every_input_kind_has_its_pass_in_the_one_table():
    from lm_eval_diversity.passes import KIND_PASSES

    kinds_with_records = {r.kind for r in catalogue.records()}
    # the QC/residual split is computed against a baseline run (analysis), not by a pass over one task's outputs
    assert set(KIND_PASSES) == kinds_with_records - {"baseline"} == set(catalogue.KINDS) - {"baseline"}


def test_accuracy_metrics_read_the_accuracy_verdicts_and_k_correct_the_subset_ones():
    # the reference's two grading paths (compat modes): acc and maj@K follow its accuracy scripts, k_correct and the
    # correct subsets its QFD script; here the paths disagree on every output
    groups = [PromptGroup(0, ["a", "b"])]
    subsets = [[Verdict(True, "1"), Verdict(True, "1")]]
    accuracy = [[Verdict(False, "2"), Verdict(False, "2")]]
    row = score_groups(groups, DiversitySettings(metrics=("distinct_1",)), verdicts=subsets,
                       task_name="diversity_gsm8k", accuracy_verdicts=accuracy).per_prompt[0]  # fmt: skip
    assert (row["acc"], row["maj@K"], row["pass@2"], row["k_correct"]) == (0.0, 0.0, 0.0, 2.0)
    with pytest.raises(ValueError, match="same outputs"):
        score_groups(groups, DiversitySettings(metrics=("distinct_1",)), verdicts=subsets,
                     task_name="diversity_gsm8k", accuracy_verdicts=[accuracy[0][:1]])  # fmt: skip


def test_the_compat_paths_are_the_literal_choices_and_every_record_reads_one():
    from lm_eval_diversity.modes import COMPAT_PATHS, CompatPath, choices

    assert tuple(COMPAT_PATHS) == choices(CompatPath)
    assert {r.grading_path for r in catalogue.records()} <= set(choices(CompatPath))
    assert catalogue.record("k_correct").grading_path == "subsets"
    assert catalogue.record("acc").grading_path == "accuracy"
