"""Answer-level and functional-class diversity: hand-computed values, the greedy class rule and the tasks' own
equalities (math-verify, the reference's compat rule, CRUXEval)."""

from __future__ import annotations

import math

import pytest
from helpers import gold_format

from lm_eval_diversity.catalogue.tasks import answer_classes_for_task
from lm_eval_diversity.metrics.answers import answer_classes, answer_diversity, functional_diversity
from lm_eval_diversity.quality.code import grade_cruxeval
from lm_eval_diversity.quality.math import answers_equal, grade_math
from lm_eval_diversity.quality.types import Verdict


def _stats(answers: list[str | None]) -> dict[str, float]:
    return answer_diversity(answer_classes(answers, lambda a, b: a == b))


def test_identical_answers_one_class_zero_entropy() -> None:
    assert answer_classes(["42"] * 4, lambda a, b: a == b) == [0, 0, 0, 0]
    assert _stats(["42"] * 4) == {
        "distinct_answers": 1.0,
        "distinct_answers_norm": 0.25,
        "answer_entropy": 0.0,
        "no_answer_rate": 0.0,
    }


def test_all_distinct_k_classes_entropy_ln_k() -> None:
    s = _stats(["1", "2", "3", "4"])
    assert s["distinct_answers"] == 4.0
    assert s["distinct_answers_norm"] == 1.0
    assert s["answer_entropy"] == pytest.approx(1.3862943611198906)  # ln 4
    assert s["no_answer_rate"] == 0.0


def test_two_classes_three_to_one() -> None:
    s = _stats(["a", "a", "b", "a"])
    # -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.75 * 0.2876821 + 0.25 * 1.3862944
    assert s["answer_entropy"] == pytest.approx(0.5623351446)
    assert s["distinct_answers"] == 2.0
    assert s["distinct_answers_norm"] == 0.5


def test_no_answer_outputs_form_one_class() -> None:
    assert answer_classes(["a", None, None, "b"], lambda a, b: a == b) == [0, None, None, 1]
    s = _stats(["a", None, None, "b"])
    assert s["distinct_answers"] == 3.0  # a, b and the no-answer class
    assert s["distinct_answers_norm"] == 0.75
    # -(2 * 1/4 ln 1/4 + 1/2 ln 1/2) = 0.6931472 + 0.3465736
    assert s["answer_entropy"] == pytest.approx(1.0397207708)
    assert s["no_answer_rate"] == 0.5
    assert _stats([None, None]) == {
        "distinct_answers": 1.0,
        "distinct_answers_norm": 0.5,
        "answer_entropy": 0.0,
        "no_answer_rate": 1.0,
    }


def test_empty_input_is_nan_everywhere() -> None:
    for stats in (answer_diversity([]), functional_diversity([])):
        assert len(stats) == 4
        assert all(math.isnan(v) for v in stats.values())


def test_each_pair_compared_at_most_once_identical_strings_never() -> None:
    calls: list[tuple[str, str]] = []

    def never(a: str, b: str) -> bool:
        calls.append((a, b))
        return False

    classes = answer_classes(["x", "x", "y", "x", "y", "z", "z"], never)
    assert classes == [0, 0, 1, 0, 1, 2, 2]
    # y vs x; z vs x, z vs y: the repeats reuse their string's class
    assert calls == [("y", "x"), ("z", "x"), ("z", "y")]


def test_greedy_rule_with_a_non_transitive_predicate() -> None:
    def near(a: str, b: str) -> bool:  # |a - b| <= 1: 1 ~ 2 and 2 ~ 3, but not 1 ~ 3
        return abs(int(a) - int(b)) <= 1

    assert answer_classes(["1", "2", "3"], near) == [0, 0, 1]  # 3 is compared with the representative 1
    assert answer_classes(["2", "1", "3"], near) == [0, 0, 0]  # representative 2 takes both


def test_functional_diversity_same_core() -> None:
    s = functional_diversity(["s1", "s1", None, "s2"])
    assert s == {
        "distinct_behaviours": 3.0,
        "distinct_behaviours_norm": 0.75,
        "behaviour_entropy": pytest.approx(1.0397207708),  # -(1/2 ln 1/2 + 2 * 1/4 ln 1/4)
        "unrunnable_rate": 0.25,
    }


# ------------------------------------------------------------------------------------------ the tasks' equalities
@pytest.mark.parametrize(("a", "b"), [("1/2", "0.5"), ("\\frac{1}{2}", "0.5"), ("1/2", "\\frac{1}{2}")])
def test_math_verify_equal_halves(a: str, b: str) -> None:
    assert answers_equal(gold_format("math_algebra"), a, b, isolate=False)
    assert answers_equal(gold_format("math_algebra"), b, a)  # in a grading worker, and symmetric


def test_math_verify_unequal() -> None:
    assert not answers_equal(gold_format("math_algebra"), "1/2", "0.6", isolate=False)
    assert not answers_equal(gold_format("gsm8k"), "18", "19")


def test_math_classes_from_the_graders_verdicts() -> None:
    doc = {"solution": "Hence \\boxed{\\frac{1}{2}}."}
    outs = [
        "\\boxed{\\frac{1}{2}}",
        "so the answer is \\boxed{0.5}",
        "The answer is 1/2",
        "\\boxed{\\frac{2}{4}}",
        "\\boxed{3}",
        "I do not know.",
        "\\boxed{x^2+1}",
        "\\boxed{1+x^2}",
        "\\boxed{\\frac{\\sqrt{2}}{2}}",
        "\\boxed{\\frac{1}{\\sqrt{2}}}",
    ]
    verdicts = grade_math(gold_format("math_algebra"), doc, outs)
    classes = answer_classes_for_task("math_algebra", verdicts)
    # one half four ways; 3; no answer; x^2+1 twice; sqrt(2)/2 twice
    assert classes == [0, 0, 0, 0, 1, None, 2, 2, 3, 3]
    s = answer_diversity(classes)
    assert s["distinct_answers"] == 5.0
    # class sizes 4, 1, 1, 2, 2 of K = 10
    expected = -(0.4 * math.log(0.4) + 2 * 0.1 * math.log(0.1) + 2 * 0.2 * math.log(0.2))
    assert s["answer_entropy"] == pytest.approx(expected)
    assert s["no_answer_rate"] == 0.1


def test_math_compat_mode_uses_the_reference_equality() -> None:
    verdicts = [Verdict(False, "18"), Verdict(False, "18.0"), Verdict(False, "$18"), Verdict(False, "1/2"),
                Verdict(False, "0.5"), Verdict(False, None, "unparseable")]  # fmt: skip
    # compat: "$" dropped, 18.0 -> 18; "1/2" is not a number to the reference, so it differs from 0.5
    assert answer_classes_for_task("gsm8k", verdicts, math_mode="compat") == [0, 0, 0, 1, 2, None]


def test_cruxeval_classes() -> None:
    outs = ["**Answer:** [1, 2]", "Answer: [1,2]", "Answer: (1, 2)", "Answer: 'ab'", 'Output: "ab"', ""]
    verdicts = grade_cruxeval({"output": "[1, 2]"}, outs)
    assert answer_classes_for_task("diversity_cruxeval", verdicts) == [0, 0, 1, 2, 2, None]


@pytest.mark.parametrize("task", ["truthfulqa", "ifeval", "humaneval", "mbpp"])
def test_answer_classes_undefined_tasks_say_why(task: str) -> None:
    with pytest.raises(ValueError, match=f"undefined for {task}"):
        answer_classes_for_task(task, [Verdict(True, "x")])


def test_math_mode_needs_the_extracted_text_for_symbolic_answers() -> None:
    numbers = [Verdict(False, "1/2"), Verdict(False, "0.5"), Verdict(False, "3")]  # plain numbers parse back
    assert answer_classes_for_task("math_algebra", numbers) == [0, 0, 1]
    with pytest.raises(ValueError, match=r"output 1: answer 'x\*\*2 \+ 1' has no answer_text"):
        answer_classes_for_task("math_algebra", [Verdict(False, "2"), Verdict(False, "x**2 + 1")])


def test_math_equality_that_hangs_is_not_equal_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from lm_eval_diversity.quality import math as qm

    overruns: list[tuple] = []
    call = qm._Worker.call

    def recorded(self, job: tuple, hard_timeout: float):
        reply = call(self, job, hard_timeout)
        if reply is None:  # the worker overran its hard limit and was killed
            overruns.append((job[2], self.alive()))
        return reply

    monkeypatch.setattr(qm._Worker, "call", recorded)
    assert not answers_equal(gold_format("math_algebra"), "9^{9^{9^{9}}}", "2", timeout_s=2)
    assert overruns == [("9^{9^{9^{9}}}", False)]  # ended by the hard limit, its worker gone
