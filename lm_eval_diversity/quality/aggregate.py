"""Per-prompt quality aggregates over K graded outputs: pass@k, majority vote, accuracy (docs/metrics.md, "Quality
on graded tasks").

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


def prompt_quality(
    verdicts: Sequence[Verdict],
    ks: Sequence[int] = (1, 5, 10, 16),
    *,
    tie: TieMode = "compat",
    majority: MajorityRule = "vote",
) -> dict[str, float]:
    """Quality summary of one prompt's graded outputs.

    Keys: ``acc`` (output #0 correct), ``pass@k`` for every k in ``ks`` with k ≤ n, ``maj@{n}`` (``majority``:
    "vote" = :func:`majority_vote` with its tie rule, "more_than_half" = more than n/2 outputs correct),
    ``k_correct`` (number of correct outputs), ``extraction_rate`` (share of outputs with a non-None answer).
    An empty list gives zeros and no pass@k keys.
    """
    n = len(verdicts)
    c = sum(bool(v.correct) for v in verdicts)
    out: dict[str, float] = {"acc": float(bool(verdicts[0].correct)) if n else 0.0}
    for k in ks:
        if 1 <= k <= n:
            out[f"pass@{k}"] = pass_at_k(n, c, k)
    if majority == "more_than_half":
        out[f"maj@{n}"] = float(c > n / 2)
    else:
        out[f"maj@{n}"] = float(majority_vote(verdicts, tie=tie)[1]) if n else 0.0
    out["k_correct"] = float(c)
    out["extraction_rate"] = (sum(v.answer is not None for v in verdicts) / n) if n else 0.0
    return out
