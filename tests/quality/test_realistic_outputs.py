"""The default graders on outputs written the way models write them, labelled by construction (``realistic.py``).

Every graded task gets at least 20 variant kinds of correct and wrong outputs built from its gold data; the default
graders must agree with every label. The kinds and their counts are the table in docs/metrics.md ("Realistic-output
suite"); ``python tests/quality/realistic_table.py`` prints it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lm_eval_diversity.catalogue.tasks import grade_task
from quality import realistic as R

pytestmark = pytest.mark.slow

MIN_KINDS = 20


def suite(task: str, data: Path) -> tuple[list[dict], list[list[R.Variant]]]:
    """The docs of one task and each doc's variants (gold data in ``data``, HumanEval from its package)."""
    if task == "gsm8k":
        docs = R.spread(R.jsonl(data / "gsm8k" / "test.jsonl"), 24)
        docs += R.spread(R.jsonl(data / "gsm8k" / "test.jsonl"), 6, lambda d: R.gsm8k_gold(d) >= 1000)
        return docs, [R.gsm8k_variants(d) for d in docs]
    if task in ("math_algebra", "math_geometry"):
        sub = task.split("_")[1]
        docs = R.spread(R.jsonl(data / "math" / sub / "test.jsonl"), 24, R.math_simple)
        return docs, [R.math_variants(d) for d in docs]
    if task == "humaneval":
        docs = R.spread(R.humaneval_docs(), 12, R.humaneval_simple)
        return docs, [R.humaneval_variants(d) for d in docs]
    if task == "mbpp":
        docs = R.spread(R.jsonl(data / "mbpp" / "test.jsonl"), 12, R.mbpp_simple)
        return docs, [R.mbpp_variants(d) for d in docs]
    if task == "truthfulqa":
        docs = R.spread(R.jsonl(data / "truthfulqa" / "validation.jsonl"), 30, R.truthfulqa_usable)
        return docs, [R.truthfulqa_variants(d) for d in docs]
    if task == "ifeval":
        docs = [d for d in R.jsonl(data / "ifeval" / "train.jsonl") if R.ifeval_usable(d)]
        return docs, [R.ifeval_variants(d) for d in docs]
    raise ValueError(task)


TASKS = ("gsm8k", "math_algebra", "math_geometry", "humaneval", "mbpp", "truthfulqa", "ifeval")


@pytest.mark.parametrize("task", TASKS)
def test_default_graders_agree_with_every_label(task: str, shared_data_dir: Path) -> None:
    docs, variants = suite(task, shared_data_dir)
    kinds = Counter(kind for vs in variants for kind, _, _ in vs)
    assert len(kinds) >= MIN_KINDS, sorted(kinds)
    verdicts = grade_task(
        task, docs, [[out for _, out, _ in vs] for vs in variants], allow_code_execution=True, workers=2,
        code_timeout_s=20,
    )  # fmt: skip
    wrong = [
        (i, kind, label, v.reason, out[:120])
        for i, (vs, doc_verdicts) in enumerate(zip(variants, verdicts, strict=True))
        for (kind, out, label), v in zip(vs, doc_verdicts, strict=True)
        if v.correct != label
    ]
    n = sum(kinds.values())
    print(f"{task}: {len(docs)} docs, {len(kinds)} kinds, {n} outputs, {n - len(wrong)} agree with their label")
    assert not wrong, wrong[:20]
    labels = Counter(label for vs in variants for _, _, label in vs)
    assert labels[True] and labels[False]  # both classes are exercised
