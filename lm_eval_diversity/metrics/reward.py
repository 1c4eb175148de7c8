"""Quality from a reward model, and the diversity measures that weigh it (docs/quality.md, "Reward model").

Pure functions of rewards, ratings and texts; the reward model itself is run by :mod:`lm_eval_diversity.models`.

**Calibration.** Raw rewards have no common scale across reward models or tasks, so every quantity below that needs a
scale reads it off a *reference* distribution R: the rewards of all outputs of one task in the reference run (the
baseline, or the run itself). From R:

* ratings 1..10: ``rating(r) = 1 + #{deciles d_i of R with d_i < r}`` (the deciles d_1..d_9 at 10 %, ..., 90 %,
  linear interpolation), so the reference's own outputs spread evenly over 1..10 (NoveltyBench maps its reward
  model's scores to 1..10 by fixed cut-offs in the same way);
* acceptable: ``r >= tau`` with tau the ``quantile``-quantile of R (default the median), or an absolute threshold.

**NoveltyBench** (Zhang et al., 2025). The K outputs, in generation order, are partitioned greedily: each output
joins the class of the first earlier class representative it is equivalent to, else founds a class. Equivalence is
NoveltyBench's unigram rule: ROUGE-1 F1 (rouge-score's tokenisation, no stemming) above 0.458; identical texts are
always equivalent. Then ``distinct_k`` = number of classes and, with patience p (default 0.8, NoveltyBench's)::

    utility_k = sum_i p^i * new_i * rating_i / sum_i p^i      (i = 0..K-1; new_i = 1 when output i founds a class)

i.e. a user reading the outputs in order gains an output's rating only when it is new, and is less likely to read on
(by p) at each step. Range [0, 10].

**Quality-weighted Vendi** (Nguyen and Dieng, 2024): ``qVS = mean_i q_i * VS`` over the same set, with
``q_i = rating_i / 10`` in (0, 1], so qVS lies in (0, m].
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RATING_LEVELS = 10
NOVELTYBENCH_PATIENCE = 0.8
NOVELTYBENCH_ROUGE1_THRESHOLD = 0.458


def rating_cutoffs(reference_rewards: Sequence[float]) -> list[float]:
    """The 9 deciles of the reference rewards (10 %, ..., 90 %; numpy's linear interpolation)."""
    r = np.asarray(reference_rewards, dtype=np.float64)
    if r.size == 0:
        raise ValueError("rating cut-offs need at least one reference reward")
    return [float(x) for x in np.quantile(r, np.arange(1, RATING_LEVELS) / RATING_LEVELS)]


def ratings(rewards: Sequence[float], cutoffs: Sequence[float]) -> np.ndarray:
    """Integer ratings 1..10: one plus the number of cut-offs strictly below each reward."""
    return 1 + np.searchsorted(np.asarray(cutoffs, dtype=np.float64), np.asarray(rewards, np.float64), side="left")


def acceptable_threshold(reference_rewards: Sequence[float], quantile: float) -> float:
    """tau: the ``quantile``-quantile of the reference rewards (outputs with reward >= tau are acceptable)."""
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    r = np.asarray(reference_rewards, dtype=np.float64)
    if r.size == 0:
        raise ValueError("the acceptable threshold needs at least one reference reward")
    return float(np.quantile(r, quantile))


def rouge1_f(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-1 F1 of two token lists (rouge-score's formula: clipped unigram overlap; 0 when either is empty)."""
    overlap = sum((Counter(a) & Counter(b)).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / len(b), overlap / len(a)
    return 2 * precision * recall / (precision + recall)


def unigram_partition(texts: Sequence[str], threshold: float = NOVELTYBENCH_ROUGE1_THRESHOLD) -> list[int]:
    """NoveltyBench's greedy partition with its unigram equivalence: class index of each text, in order."""
    from lm_eval_diversity.metrics.lexical import rouge_tokens

    tokens = [rouge_tokens(t) for t in texts]
    classes: list[int] = []
    representatives: list[int] = []
    for i, text in enumerate(texts):
        for c, rep in enumerate(representatives):
            if texts[rep] == text or rouge1_f(tokens[rep], tokens[i]) > threshold:
                classes.append(c)
                break
        else:
            classes.append(len(representatives))
            representatives.append(i)
    return classes


def distinct_k(partition: Sequence[int]) -> int:
    """Number of classes."""
    return len(set(partition))


def utility_k(
    item_ratings: Sequence[float], partition: Sequence[int], patience: float = NOVELTYBENCH_PATIENCE
) -> float:
    """NoveltyBench's utility: the patience-weighted mean of the ratings, counting an output only when it founds
    a new class (see the module docstring). NaN for no outputs."""
    if not 0.0 < patience <= 1.0:
        raise ValueError(f"patience must be in (0, 1], got {patience}")
    if len(item_ratings) != len(partition):
        raise ValueError(f"{len(item_ratings)} ratings for {len(partition)} outputs")
    if not partition:
        return float("nan")
    seen: set[int] = set()
    credited = []
    for rating, c in zip(item_ratings, partition):
        credited.append(float(rating) if c not in seen else 0.0)
        seen.add(c)
    weights = patience ** np.arange(len(credited))
    return float(np.average(credited, weights=weights))


def quality_weighted_vendi(vendi: float, item_ratings: Sequence[float]) -> float:
    """qVS = mean(rating / 10) * VS of the same set."""
    if not len(item_ratings):
        return float("nan")
    return float(np.mean(np.asarray(item_ratings, dtype=np.float64) / RATING_LEVELS) * vendi)


# --- per-set statistics (the ``rewards`` input kind of the metric catalogue) ----------------------------------------


@dataclass(frozen=True)
class RewardSet:
    """One set of outputs (in generation order) with their rewards, ratings and acceptable flags."""

    rewards: np.ndarray
    ratings: np.ndarray
    acceptable: np.ndarray
    texts: tuple[str, ...]


def set_statistic(name: str, s: RewardSet) -> float:
    """``reward_mean``, ``reward_rating``, ``acceptable_rate``, ``k_acceptable``, ``distinct_k`` or ``utility_k`` of
    one set."""
    if name == "reward_mean":
        return float(np.mean(s.rewards))
    if name == "reward_rating":
        return float(np.mean(s.ratings))
    if name == "acceptable_rate":
        return float(np.mean(s.acceptable))
    if name == "k_acceptable":
        return float(np.sum(s.acceptable))
    partition = unigram_partition(s.texts)
    if name == "distinct_k":
        return float(distinct_k(partition))
    if name == "utility_k":
        return utility_k(s.ratings, partition)
    raise KeyError(name)


def quality_weighted_vendi_from_gram(g: np.ndarray, item_ratings: np.ndarray) -> np.ndarray:
    """qVS of batched sets: cosine Gram matrices (b, m, m) and the ratings (b, m) of their items."""
    from lm_eval_diversity.metrics.embedding import vendi_from_gram

    return np.mean(np.asarray(item_ratings, dtype=np.float64) / RATING_LEVELS, axis=-1) * vendi_from_gram(g)
