"""Metric entries of the task YAMLs (the lm-eval ``metric_list`` and the groups' aggregate list).

An ``aggregation`` is the name of an lm-eval aggregation (``mean``) or the dotted path of a function
(``lm_eval_diversity.harness.corpus_value``), written into the YAML as ``!function <path>``.
"""

from __future__ import annotations

_CORPUS = "lm_eval_diversity.harness.corpus_value"
_NANMEAN = "lm_eval_diversity.harness.nanmean"

_DIVERSITY = [
    *((m, "mean", True) for m in ("ead", "sbert", "vendi", "nli")),
    *((f"{m}_{lvl}", _CORPUS, True) for m in ("ead", "sbert", "vendi", "nli") for lvl in ("across_input", "overall")),
    *((m, "mean", False) for m in ("dup_rate", "empty_rate", "unclosed_think_rate")),
]
_GRADED = [
    ("acc", "mean", True),
    *((f"pass@{k}", _NANMEAN, True) for k in (1, 5, 10, 16)),
    ("maj@K", "mean", True),
    ("k_correct", "mean", True),
    ("sbert_all", "mean", True),
    ("sbert_correct", _NANMEAN, True),
    ("vendi_correct", _NANMEAN, True),
    ("computable", "mean", True),
    *((f"{part}_{m}", _CORPUS, False) for m in ("sbert", "vendi") for part in ("loss", "residual", "qc")),
]


def harness_metric_list(graded: bool) -> list[dict]:
    """The ``metric_list`` of the plain (``graded=False``) or the graded task template, in order."""
    rows = _DIVERSITY + (_GRADED if graded else [])
    return [{"metric": m, "aggregation": agg, "higher_is_better": hib} for m, agg, hib in rows]


def group_aggregate_metrics() -> list[str]:
    """The metrics every group YAML averages over its tasks, in order."""
    return ["ead", "sbert", "vendi", "nli", "dup_rate", "empty_rate", "unclosed_think_rate"]
