"""Answer-level and functional-class diversity of the K outputs of one prompt (``docs/metrics.md``, last section).

Each output is put in a class (its final answer's equivalence class, or its program's behaviour class); outputs
with no extractable answer (no behaviour signature) form ONE class of their own. With K outputs, class sizes
``n_c`` and ``n_0`` outputs without an answer::

    distinct       = number of classes (the no-answer class counts as one when n_0 > 0)
    distinct_norm  = distinct / K
    entropy        = - sum_c (n_c / K) * ln(n_c / K)     (nats; over all classes, the no-answer class included)
    no_answer_rate = n_0 / K

Empty input gives NaN for all four (nothing was measured). The functions know nothing of lm-eval or of any task:
the equivalence predicate comes from the caller (``lm_eval_diversity.quality.equivalence`` has the tasks' own).
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Callable, Sequence

ANSWER_KEYS = ("distinct_answers", "distinct_answers_norm", "answer_entropy", "no_answer_rate")
BEHAVIOUR_KEYS = ("distinct_behaviours", "distinct_behaviours_norm", "behaviour_entropy", "unrunnable_rate")


def answer_classes(answers: Sequence[str | None], equal: Callable[[str, str], bool]) -> list[int | None]:
    """Class id (0, 1, ... in order of first appearance) of every answer; None for an output without an answer.

    Rule (greedy, in output order): an answer joins the first existing class whose representative (its first
    member) it equals, else it opens a new class. Identical strings always share a class without calling
    ``equal`` (the predicate is taken to be reflexive), so ``equal`` runs only between distinct strings, at most
    once per unordered pair, and a new distinct string is compared only with the representatives. Because a
    grader's equality need not be transitive (a ~ b and b ~ c without a ~ c), the classes can depend on the
    output order; they never merge two answers that are not equal to a common representative.
    """
    reps: list[str] = []  # representative string of each class
    class_of: dict[str, int] = {}  # every distinct string seen -> its class
    out: list[int | None] = []
    for a in answers:
        if a is None:
            out.append(None)
            continue
        cid = class_of.get(a)
        if cid is None:
            cid = next((i for i, rep in enumerate(reps) if equal(a, rep)), None)
            if cid is None:
                cid = len(reps)
                reps.append(a)
            class_of[a] = cid
        out.append(cid)
    return out


def _class_stats(classes: Sequence[object | None], keys: tuple[str, str, str, str]) -> dict[str, float]:
    """The four statistics of the module docstring under ``keys`` (distinct, norm, entropy, missing rate)."""
    k = len(classes)
    if k == 0:
        return dict.fromkeys(keys, math.nan)
    counts = Counter(classes)  # None is one class of its own
    entropy = -sum((n / k) * math.log(n / k) for n in counts.values())
    distinct = len(counts)
    return {
        keys[0]: float(distinct),
        keys[1]: distinct / k,
        keys[2]: entropy + 0.0,  # -0.0 -> 0.0 for a single class
        keys[3]: counts.get(None, 0) / k,
    }


def answer_diversity(classes: Sequence[int | None]) -> dict[str, float]:
    """``distinct_answers``, ``distinct_answers_norm``, ``answer_entropy`` (nats), ``no_answer_rate`` of one
    prompt's answer classes (from :func:`answer_classes`; None = no extractable answer). Formulas: module
    docstring."""
    return _class_stats(classes, ANSWER_KEYS)


def functional_diversity(signatures: Sequence[str | None]) -> dict[str, float]:
    """``distinct_behaviours``, ``distinct_behaviours_norm``, ``behaviour_entropy`` (nats), ``unrunnable_rate``
    of one prompt's programs: programs with the same behaviour signature (``Verdict.behaviour``) are one class,
    programs without one (None: the code did not load, the run was killed, ...) form the unrunnable class."""
    return _class_stats(answer_classes(signatures, operator.eq), BEHAVIOUR_KEYS)
