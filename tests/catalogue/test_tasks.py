"""The task catalogue: graded and code task sets, registration, grading dispatched from the record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from lm_eval_diversity.catalogue.tasks import (
    Category,
    DatasetSpec,
    TaskRecord,
    code_task_names,
    get_task,
    grade_task,
    graded_task_names,
    is_graded,
    register_task,
    registered_task,
    short_name,
    task_name,
    verifiable_task_names,
)
from lm_eval_diversity.quality.graders import Grader
from lm_eval_diversity.quality.types import Verdict
from tests.catalogue.test_task_pins import PINS


def test_prefix_helpers() -> None:
    assert short_name("diversity_gsm8k") == "gsm8k" and short_name("gsm8k") == "gsm8k"
    assert task_name("gsm8k") == "diversity_gsm8k" and task_name("diversity_gsm8k") == "diversity_gsm8k"


def test_graded_and_code_sets_come_from_the_records() -> None:
    # the paper's six carry accuracy; `score` has always graded truthfulqa and cruxeval too, and the harness now
    # grades the same set (a task added later is pinned in the pin table, which says whether it is graded)
    verifiable = verifiable_task_names()
    assert verifiable == ("humaneval", "mbpp", "gsm8k", "math_algebra", "math_geometry", "ifeval")
    assert {"truthfulqa", "cruxeval"} <= set(graded_task_names())
    assert set(graded_task_names()) == {name for name, pin in PINS.items() if pin.graded}
    assert code_task_names() == ("humaneval", "mbpp")
    assert is_graded("diversity_truthfulqa") and not is_graded("diversity_alpaca") and not is_graded("nope")


def test_register_task_refuses_bad_names_and_silent_overwrites() -> None:
    record = get_task("gsm8k")
    with pytest.raises(ValueError, match="already in the catalogue"):
        register_task(record)
    with pytest.raises(ValueError, match="short identifier"):
        register_task(dataclasses.replace(record, name="diversity_x"))


# ---------------------------------------------------------------------------- grading dispatched from the record


@dataclasses.dataclass(frozen=True, kw_only=True)
class LengthMatch(Grader):
    """A toy grader: an output is correct when its length equals the doc's ``n``."""

    rule: str = "length matches"

    def grade(self, task: str, docs, outputs, options) -> list[list[Verdict]]:
        return [[Verdict(len(o) == d["n"], str(len(o))) for o in outs] for d, outs in zip(docs, outputs)]


@pytest.fixture()
def toy_graded() -> Iterator[TaskRecord]:
    record = TaskRecord(
        "toy_graded", "Toy graded task", Category("toy", "toy", "Toy"),
        DatasetSpec("none/toy", None, "test", "toy/test.jsonl"),
        get_task("gsm8k").prompt, get_task("gsm8k").target, (), "-", "-",
        grader=LengthMatch(),
    )  # fmt: skip
    with registered_task(record):
        yield record


def test_grade_task_calls_the_records_grader(toy_graded: TaskRecord) -> None:
    verdicts = grade_task("diversity_toy_graded", [{"n": 2}, {"n": 3}], [["ab", "abc"], ["abc", None]])
    assert [[v.correct for v in vs] for vs in verdicts] == [[True, False], [True, False]]
    assert verdicts[1][1].answer == "0"  # a non-string output is graded as ""
    assert is_graded("toy_graded")


def test_grade_task_without_a_grader_names_the_graded_tasks() -> None:
    with pytest.raises(ValueError, match="no quality grader for task 'diversity_alpaca'.*gsm8k"):
        grade_task("diversity_alpaca", [{}], [["x"]])


def test_score_grades_a_registered_task_from_its_record(toy_graded: TaskRecord) -> None:
    from lm_eval_diversity.scoring import PromptGroup, score_task
    from lm_eval_diversity.settings import DiversitySettings

    groups = [PromptGroup(doc_id=0, outputs=["ab", "abc", "xy", "z"], doc={"n": 2})]
    scores = score_task("diversity_toy_graded", groups, DiversitySettings(metrics=("ead",)))
    row = scores.per_prompt[0]
    assert row["acc"] == 1.0 and row["k_correct"] == 2  # "ab" and "xy" have length 2
    assert row["pass@1"] == pytest.approx(0.5)  # unbiased pass@1 = c / n = 2 / 4
