"""pass@k, majority vote and per-prompt quality summaries (docs/metrics.md, "Quality on graded tasks")."""

from __future__ import annotations

import math
from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lm_eval_diversity.quality.aggregate import (
    accuracy,
    all_instructions_loose,
    correct_count,
    extraction_rate,
    instructions_followed_loose,
    instructions_followed_strict,
    majority_correct,
    majority_vote,
    pass_at,
    pass_at_k,
)
from lm_eval_diversity.quality.types import Verdict


@pytest.mark.parametrize(("k", "expected"), [(1, 0.25), (5, 0.818681), (10, 0.991758), (16, 1.0)])
def test_pass_at_k_reference_vectors(k: int, expected: float) -> None:
    assert pass_at_k(16, 4, k) == pytest.approx(expected, abs=1e-6)


def test_pass_at_k_hand_computed() -> None:
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n=4, c=1, k=3: 1 - C(3,3)/C(4,3) = 1 - 1/4
    assert pass_at_k(4, 1, 3) == pytest.approx(0.75)
    assert pass_at_k(16, 0, 16) == 0.0
    assert pass_at_k(16, 16, 1) == 1.0
    assert pass_at_k(3, 1, 10) == 1.0  # k clipped to n
    assert pass_at_k(0, 0, 1) == 0.0


def test_pass_at_k_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 0)


@given(st.integers(1, 60), st.data())
def test_pass_at_k_properties(n: int, data: st.DataObject) -> None:
    c = data.draw(st.integers(0, n))
    values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b + 1e-12 for a, b in zip(values, values[1:]))  # monotone in k
    assert (values[-1] == 1.0) == (c > 0)
    assert values[0] == pytest.approx(c / n)
    k = data.draw(st.integers(1, n))
    assert values[k - 1] == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-9)


def V(ans: str | None, ok: bool = False) -> Verdict:
    return Verdict(ok, ans, "" if ok else "wrong")


def test_majority_vote_winner_and_correctness() -> None:
    vs = [V("3", True), V("4"), V("3", True), V(None)]
    assert majority_vote(vs) == ("3", True)
    assert majority_vote([V("4"), V("4"), V("3", True)]) == ("4", False)
    assert majority_vote([V(None), V(None), V("3", True)]) == (None, False)  # sentinel wins, never correct
    assert majority_vote([]) == (None, False)
    assert majority_vote([V("4"), V("3", True), V("3", True)], k=1) == ("4", False)


def test_majority_vote_ties() -> None:
    vs = [V("4"), V("3", True), V("4"), V("3", True)]
    assert majority_vote(vs) == ("4", False)  # compat: a tie is incorrect
    assert majority_vote(vs, tie="correct_first") == ("3", True)
    assert majority_vote([V("3", True), V("4")]) == ("3", False)  # tie even when the first is correct


def test_prompt_quality_functions() -> None:
    vs = [V("5")] + [V("7", True)] * 3 + [V(None)] * 12
    assert accuracy(vs) == 0.0
    assert correct_count(vs) == 3
    assert pass_at(vs, 1) == pytest.approx(3 / 16)
    assert pass_at(vs, 16) == 1.0
    assert majority_correct(vs) == 0.0  # 12 unparseable outputs win the vote
    assert extraction_rate(vs) == pytest.approx(4 / 16)


def test_prompt_quality_small_n_and_empty() -> None:
    vs = [V("1", True), V("1", True), V("2")]
    assert math.isnan(pass_at(vs, 5)) and pass_at(vs, 1) == pytest.approx(2 / 3)
    assert majority_correct(vs) == 1.0 and accuracy(vs) == 1.0
    assert accuracy([]) == 0.0 and correct_count([]) == 0.0 and extraction_rate([]) == 0.0
    assert math.isnan(majority_correct([])) and math.isnan(pass_at([], 1))


def test_instruction_levels_of_output_zero() -> None:
    first = Verdict(False, instructions=((True, False, False), (True, True, True)))
    other = Verdict(True, instructions=((True, True, True), (True, True, True)))
    assert all_instructions_loose([first, other]) == 1.0
    assert instructions_followed_strict([first, other]) == (pytest.approx(1 / 3), 3)
    assert instructions_followed_loose([first, other]) == (1.0, 3)
    no_instructions = [Verdict(True, instructions=((), ()))]
    assert math.isnan(instructions_followed_strict(no_instructions)[0])
    assert instructions_followed_strict(no_instructions)[1] == 0


# ------------------------------------------------------------------ grading by task name (the catalogue's)
def test_grading_by_task_name_lists_and_errors() -> None:
    from lm_eval_diversity.catalogue.tasks import grade_task, graded_task_names, verifiable_task_names

    assert set(verifiable_task_names()) == {"gsm8k", "math_algebra", "math_geometry", "humaneval", "mbpp", "ifeval"}
    assert set(graded_task_names()) == set(verifiable_task_names()) | {"truthfulqa", "cruxeval"}
    with pytest.raises(ValueError, match="xsum"):
        grade_task("xsum", [{}], [["a"]])
    with pytest.raises(ValueError, match="2 docs but 1"):
        grade_task("gsm8k", [{}, {}], [["a"]])


def test_grading_by_task_name_end_to_end_quality() -> None:
    from lm_eval_diversity.catalogue.tasks import grade_task

    docs = [{"question": "q", "answer": "#### 7"}]
    outs = [["#### 7", "#### 8", None, "The answer is 7.", "\\boxed{7}"]]
    for mode in ("math", "compat"):
        vs = grade_task("diversity_gsm8k", docs, outs, math_mode=mode)[0]  # type: ignore[arg-type]
        assert accuracy(vs) == 1.0 and correct_count(vs) == 3 and majority_correct(vs) == 1.0
        assert extraction_rate(vs) == pytest.approx(4 / 5)


def test_dispatcher_code_tasks_need_confirmation() -> None:
    from lm_eval_diversity.catalogue.tasks import grade_task
    from lm_eval_diversity.quality.code import CodeExecutionNotAllowedError

    doc = {"task_id": 11, "text": "t", "code": "", "test_list": ["assert f(1) == 2"], "test_setup_code": ""}
    with pytest.raises(CodeExecutionNotAllowedError, match="confirm_run_unsafe_code"):
        grade_task("mbpp", [doc], [["this is not python", ""]], allow_code_execution=False)
    res = grade_task("mbpp", [doc], [["this is not python", ""]], allow_code_execution=True, code_timeout_s=5)
    assert [v.correct for v in res[0]] == [False, False]


def test_more_than_half_majority_counts_correct_outputs_not_answers() -> None:
    # TruthfulQA, IFEval and code have no comparable answers: maj@K is "more than half correct" (the reference's
    # TruthfulQA rule, compute_math_quality.py:302); 2 of 4 is not more than half, 3 of 4 is
    two = [Verdict(True, "a"), Verdict(True, "b"), Verdict(False, "c"), Verdict(False, None)]
    three = [Verdict(True, None), Verdict(True, None), Verdict(True, None), Verdict(False, None)]
    from lm_eval_diversity.quality.aggregate import QualityRule, majority_correct

    half = QualityRule(majority="more_than_half")
    assert majority_correct(two, half) == 0.0
    assert majority_correct(three, half) == 1.0
    assert majority_correct(three, QualityRule()) == 0.0  # a vote over answers: the unparseable sentinel wins
