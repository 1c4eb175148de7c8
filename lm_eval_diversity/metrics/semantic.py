"""Semantic clusters: how many different meanings among one prompt's K outputs (semantic entropy, Kuhn et al. 2023).

Two outputs a, b are *equivalent* when each entails the other: ``E(a => b) and E(b => a)``, where ``E`` is the NLI
model's decision on the whole outputs (premise, hypothesis), entailment when the entailment label has the largest
probability (argmax; ties go to entailment). Outputs are whole (stripped) texts, truncated by the NLI tokenizer to
its ``max_length``. Two shortcuts need no model: identical texts are equivalent, and an empty (whitespace-only)
output is equivalent to no non-empty one.

Clustering rule (``rule``):

* ``"greedy"`` (default, as the semantic-entropy reference code of Farquhar et al. 2024, ``get_semantic_ids``,
  does): walk the distinct texts in order; a text no earlier representative took becomes a *representative* and
  founds a cluster, and takes every later text equivalent to it, a later representative overriding an earlier one.
  So the representatives are the texts equivalent to no earlier representative, and every other text belongs to
  the last representative before it that it is equivalent to. Order-dependent when equivalence is not transitive:
  with a ~ b, b ~ c and not a ~ c, the order (a, b, c) gives {a, b}, {c}. (Kuhn et al.'s Algorithm 1 puts a text
  in the *first* matching cluster instead: the same number of clusters, sizes can differ.)
* ``"closure"``: clusters are the connected components of the equivalence graph (transitive closure); the same
  triple gives one cluster {a, b, c}. Order-independent.

For the K outputs of one prompt with cluster sizes n_1..n_C (sum K)::

    semantic_clusters      = C
    semantic_clusters_norm = C / K
    semantic_entropy       = - sum_c (n_c / K) ln(n_c / K)      (nats; 0 when all outputs share one cluster)

All three are NaN for fewer than 2 outputs. Both rules read the equivalence of any two distinct texts, so the whole
task is planned as one batched NLI pass (:func:`cluster_pairs`): every unordered pair of distinct non-empty texts
within a prompt, in both directions, each directional pair once per task. :func:`clusters_from_scores` then
clusters every prompt from the model's answers. Nothing here runs a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from lm_eval_diversity.modes import SemanticRule, choices

RULES = choices(SemanticRule)  # the semantic_rule setting's choices
SEMANTIC_METRICS = ("semantic_clusters", "semantic_clusters_norm", "semantic_entropy")

Entails = Callable[[str, str], bool]


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"semantic clustering rule={rule!r}: expected one of {', '.join(RULES)}")


def _needs_model(a: str, b: str) -> bool:
    """Whether the equivalence of two texts must be asked of the NLI model (distinct and both non-empty)."""
    return a != b and bool(a.strip()) and bool(b.strip())


def _equivalent(a: str, b: str, entails: Entails) -> bool:
    if a == b:
        return True
    if not _needs_model(a, b):
        return False
    return bool(entails(a, b)) and bool(entails(b, a))


def _entails_from_matrix(texts: Sequence[str], matrix: np.ndarray) -> Entails:
    m = np.asarray(matrix, dtype=bool)
    if m.shape != (len(texts), len(texts)):
        raise ValueError(f"entailment matrix of shape {m.shape} for {len(texts)} outputs; expected a square K x K")
    first: dict[str, int] = {}
    for i, t in enumerate(texts):
        first.setdefault(t, i)
    return lambda a, b: bool(m[first[a], first[b]])


def cluster_ids(texts: Sequence[str], entails: Entails | np.ndarray, rule: str = "greedy") -> list[int]:
    """Cluster id (0, 1, ... in order of first appearance) of every output of one prompt.

    ``entails`` is ``E(premise, hypothesis) -> bool``, or a K x K boolean matrix with ``matrix[i, j] = E(i => j)``
    (for repeated texts the row/column of the first occurrence is read).
    """
    _check_rule(rule)
    texts = list(texts)
    if not callable(entails):
        entails = _entails_from_matrix(texts, entails)
    unique = list(dict.fromkeys(texts))  # identical texts share one cluster without asking the model
    if rule == "greedy":
        cluster_of: dict[str, int] = {}
        n_clusters = 0
        for i, rep in enumerate(unique):
            if rep in cluster_of:
                continue
            cluster_of[rep] = n_clusters
            for t in unique[i + 1 :]:
                if _equivalent(rep, t, entails):
                    cluster_of[t] = n_clusters  # a later representative it is equivalent to takes it over
            n_clusters += 1
    else:
        parent = list(range(len(unique)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(len(unique)):
            for j in range(i + 1, len(unique)):
                if find(i) != find(j) and _equivalent(unique[i], unique[j], entails):
                    parent[max(find(i), find(j))] = min(find(i), find(j))
        roots: dict[int, int] = {}
        cluster_of = {t: roots.setdefault(find(i), len(roots)) for i, t in enumerate(unique)}
    return [cluster_of[t] for t in texts]


def cluster_stats(ids: Sequence[int]) -> dict[str, float]:
    """``semantic_clusters``, ``semantic_clusters_norm`` and ``semantic_entropy`` from the cluster id of every
    output (NaN for fewer than 2 outputs)."""
    k = len(ids)
    if k < 2:
        return dict.fromkeys(SEMANTIC_METRICS, math.nan)
    sizes = np.bincount(np.asarray(ids, dtype=np.int64))
    p = sizes[sizes > 0] / k
    count = int(len(p))
    return {
        "semantic_clusters": float(count),
        "semantic_clusters_norm": count / k,
        "semantic_entropy": float(-(p * np.log(p)).sum()) if count > 1 else 0.0,
    }


def semantic_clusters(texts: Sequence[str], entails: Entails | np.ndarray, rule: str = "greedy") -> dict[str, float]:
    """The three cluster metrics of one prompt's outputs (see the module docstring)."""
    return cluster_stats(cluster_ids(texts, entails, rule))


def cluster_pairs(sets_of_texts: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """Every directional (premise, hypothesis) pair the clustering of a whole task needs, each once.

    Per prompt: each unordered pair of distinct non-empty texts, in both directions; pairs repeated within or across
    prompts appear once, in order of first need. Both rules need exactly these pairs when the task is scored in one
    pass (which pairs the greedy rule reads depends on earlier decisions, and any of them may be read).
    """
    seen: dict[tuple[str, str], None] = {}
    for texts in sets_of_texts:
        unique = list(dict.fromkeys(texts))
        for i, a in enumerate(unique):
            for b in unique[i + 1 :]:
                if _needs_model(a, b):
                    seen.setdefault((a, b), None)
                    seen.setdefault((b, a), None)
    return list(seen)


def entailment_decisions(label_probs: np.ndarray) -> np.ndarray:
    """Entailment decisions from ``[P(entail), P(neutral), P(contradict)]`` rows: argmax is entailment."""
    probs = np.asarray(label_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != 3:
        raise ValueError(f"label probabilities of shape {probs.shape}; expected (n, 3) [entail, neutral, contradict]")
    return np.argmax(probs, axis=1) == 0


def clusters_from_scores(
    sets_of_texts: Sequence[Sequence[str]],
    pairs: Sequence[tuple[str, str]],
    scores: np.ndarray,
    rule: str = "greedy",
) -> list[dict[str, float]]:
    """Cluster metrics of every prompt of a task from one batched NLI pass over ``pairs`` (:func:`cluster_pairs`).

    ``scores`` is aligned with ``pairs``: either ``(n, 3)`` label probabilities ``[entail, neutral, contradict]``
    (decision: argmax is entailment) or ``(n,)`` boolean entailment decisions. A pair the clustering needs that is
    missing from ``pairs`` raises ``KeyError`` naming it.
    """
    _check_rule(rule)
    scores = np.asarray(scores)
    decisions = entailment_decisions(scores) if scores.ndim == 2 else scores.astype(bool)
    if len(decisions) != len(pairs):
        raise ValueError(f"{len(decisions)} NLI scores for {len(pairs)} pairs; they must be aligned")
    table = dict(zip(pairs, decisions.tolist(), strict=True))

    def entails(a: str, b: str) -> bool:
        try:
            return table[(a, b)]
        except KeyError:
            raise KeyError(f"NLI pair not scored: premise {a[:60]!r}, hypothesis {b[:60]!r}") from None

    return [semantic_clusters(texts, entails, rule) for texts in sets_of_texts]
