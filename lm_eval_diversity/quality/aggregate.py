"""Per-prompt quality of K graded outputs: pass@k, majority vote, accuracy, IFEval's levels (docs/metrics.md,
"Quality on graded tasks"); each metric record of the ``verdicts`` kind calls one function here.

* ``pass@k`` is the unbiased estimator of Chen et al. (2021): ``1 − C(n−c, k) / C(n, k)``, computed in the
  stable product form ``1 − Π_{i=n−c+1..n} (1 − k/i)``; it is 1 when ``n − c < k``; k is clipped to n.
* ``maj@n``: on tasks whose outputs have comparable answers (``majority="vote"``: maths, CRUXEval) the most common
  ``Verdict.answer`` among the outputs, unparseable outputs (answer None) counting as one sentinel answer (see
  :func:`majority_vote` for ties); on the others (``majority="more_than_half"``: TruthfulQA, IFEval, code) more than
  half of the outputs correct, the reference's TruthfulQA rule (an answer vote is undefined there).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lm_eval_diversity.quality.types import Verdict

TieMode = Literal["compat", "correct_first"]
MajorityRule = Literal["vote", "more_than_half"]
_SENTINEL = "\x00UNPARSEABLE"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 − C(n−c, k)/C(n, k) for c correct out of n samples (k clipped to n; 0 if n ==
    0)."""
    if n <= 0:
        return 0.0
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, n)
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def majority_vote(
    verdicts: Sequence[Verdict], k: int | None = None, *, tie: TieMode = "compat"
) -> tuple[str | None, bool]:
    """Majority vote over the first ``k`` verdicts (all if None): ``(winning answer, is it correct?)``.

    Answers are the normalised ``Verdict.answer`` strings; unparseable outputs (None) count as one sentinel
    answer, which can win but is never correct (the winner is then returned as None). An answer is correct if
    any verdict holding it is correct.

    Ties between the two most common answers:

    * ``tie="compat"`` (the default, the reference's rule): the prompt counts as **incorrect**; the
      returned answer is the first-seen of the tied answers.
    * ``tie="correct_first"``: among the tied answers a correct one wins if there is one (an optimistic upper
      bound).
    """
    vs = list(verdicts if k is None else verdicts[:k])
    if not vs:
        return None, False
    keys = [v.answer if v.answer is not None else _SENTINEL for v in vs]
    counts = Counter(keys)  # insertion-ordered: most_common keeps first-seen order among equal counts
    correct_keys = {key for key, v in zip(keys, vs, strict=True) if v.correct and key != _SENTINEL}
    ranked = counts.most_common()
    top_n = ranked[0][1]
    tied = [key for key, cnt in ranked if cnt == top_n]
    if len(tied) > 1:
        if tie == "correct_first":
            for key in tied:
                if key in correct_keys:
                    return key, True
        winner = tied[0]
        return (None if winner == _SENTINEL else winner), False
    winner = tied[0]
    if winner == _SENTINEL:
        return None, False
    return winner, winner in correct_keys


# --- one prompt's quality, one function per metric record (lm_eval_diversity.catalogue.metrics, "verdicts" kind) -----


@dataclass(frozen=True)
class QualityRule:
    """How one task's verdicts are read (from its grader): ``majority``, the maj@K rule (module docstring);
    ``instruction_shares``, the reference's IFEval levels (compat): the loose prompt level is the share of output
    #0's instructions followed, and the instruction levels are averaged over prompts instead of pooled."""

    majority: MajorityRule = "vote"
    instruction_shares: bool = False


DEFAULT_RULE = QualityRule()


def accuracy(verdicts: Sequence[Verdict], rule: QualityRule = DEFAULT_RULE) -> float:
    """``acc``: output #0 correct (0.0 for a prompt without outputs)."""
    return float(bool(verdicts[0].correct)) if verdicts else 0.0


def pass_at(verdicts: Sequence[Verdict], k: int) -> float:
    """``pass@k`` of the n outputs (:func:`pass_at_k`); NaN when k > n (undefined, not 0)."""
    n = len(verdicts)
    return pass_at_k(n, sum(bool(v.correct) for v in verdicts), k) if 1 <= k <= n else float("nan")


def majority_correct(verdicts: Sequence[Verdict], rule: QualityRule = DEFAULT_RULE) -> float:
    """``maj@K`` by the task's rule: the majority answer is correct (:func:`majority_vote`, ties incorrect), or more
    than half of the outputs are correct; NaN without outputs."""
    if not verdicts:
        return float("nan")
    if rule.majority == "more_than_half":
        return float(sum(bool(v.correct) for v in verdicts) > len(verdicts) / 2)
    return float(majority_vote(verdicts)[1])


def correct_count(verdicts: Sequence[Verdict], rule: QualityRule = DEFAULT_RULE) -> float:
    """``k_correct``: the number of correct outputs."""
    return float(sum(bool(v.correct) for v in verdicts))


def extraction_rate(verdicts: Sequence[Verdict], rule: QualityRule = DEFAULT_RULE) -> float:
    """Share of outputs with an extracted answer (0.0 without outputs)."""
    return sum(v.answer is not None for v in verdicts) / len(verdicts) if verdicts else 0.0


def _instructions(verdicts: Sequence[Verdict]) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    return verdicts[0].instructions or ((), ())


def all_instructions_loose(verdicts: Sequence[Verdict], rule: QualityRule = DEFAULT_RULE) -> float:
    """``prompt_level_loose_acc``: output #0 follows every instruction by the loose check (the reference: the share
    it follows, ``rule.instruction_shares``); NaN without outputs."""
    if not verdicts:
        return float("nan")
    loose = _instructions(verdicts)[1]
    if rule.instruction_shares:
        return sum(loose) / len(loose) if loose else float("nan")
    return float(all(loose))


def _followed(verdicts: Sequence[Verdict], level: int) -> tuple[float, int]:
    if not verdicts:
        return float("nan"), 0
    results = _instructions(verdicts)[level]
    return (sum(results) / len(results) if results else float("nan")), len(results)


def instructions_followed_strict(verdicts: Sequence[Verdict], rule: QualityRule = DEFAULT_RULE) -> tuple[float, int]:
    """Share of output #0's instructions followed by the strict check, and their number (pooled over prompts)."""
    return _followed(verdicts, 0)


def instructions_followed_loose(verdicts: Sequence[Verdict], rule: QualityRule = DEFAULT_RULE) -> tuple[float, int]:
    """Share of output #0's instructions followed by the loose check, and their number (pooled over prompts)."""
    return _followed(verdicts, 1)
