"""Pure analysis helpers for comparing runs: the QC/residual split (docs/decomposition.md) and bootstrap CIs over
prompts.

Nothing here imports lm-eval; inputs are plain numbers, sequences or per-prompt dicts. Undefined values are ``None``
or NaN (never 0) and are treated as missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used: ``compare --help`` and the CLI start without it
    import numpy as np

SHARE_EPS = 1e-12
SPLIT_VARIANTS = ("additive", "base_qc")


def as_float(v: Any) -> float:
    """``None`` / non-numbers -> NaN; numbers -> float (bools count as 0/1)."""
    if v is None or isinstance(v, str):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def nanmean(values: Iterable[Any]) -> float:
    """Mean over the defined (non-NaN, non-None) values; NaN when there are none."""
    xs = [x for x in (as_float(v) for v in values) if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


# ---------------------------------------------------------------- QC / residual decomposition


def qc_residual_split(
    d_all_base: float,
    d_corr_base: float,
    d_all_model: float,
    d_corr_model: float,
    variant: str = "additive",
) -> dict[str, float]:
    """Split the diversity loss of a post-trained model M against its base B into quality-control and residual parts.

    ``variant="additive"`` (default; the exact-additive reconstruction in docs/decomposition.md, which is inferred,
    not taken from released code)::

        loss     = D_all(B)  - D_all(M)
        residual = D_corr(B) - D_corr(M)          # narrowing among correct outputs
        qc       = loss - residual
                 = [D_all(B) - D_corr(B)] - [D_all(M) - D_corr(M)]

    ``variant="base_qc"`` (the other reading, docs/decomposition.md)::

        qc       = D_all(B)  - D_corr(B)          # diversity B loses purely by dropping its incorrect outputs
        residual = D_corr(B) - D_all(M)

    Both are additive: ``qc + residual == loss``. Shares are ``qc / loss`` and ``residual / loss``; they are NaN
    when ``|loss| < 1e-12`` and can be < 0 or > 1 (unstable when the loss is small).
    """
    if variant not in SPLIT_VARIANTS:
        raise ValueError(f"variant must be one of {SPLIT_VARIANTS}, got {variant!r}")
    ab, cb, am, cm = (as_float(x) for x in (d_all_base, d_corr_base, d_all_model, d_corr_model))
    loss = ab - am
    if variant == "additive":
        residual = cb - cm
        qc = loss - residual
    else:
        qc = ab - cb
        residual = cb - am
    small = math.isnan(loss) or abs(loss) < SHARE_EPS
    return {
        "loss": loss,
        "residual": residual,
        "qc": qc,
        "qc_share": math.nan if small else qc / loss,
        "residual_share": math.nan if small else residual / loss,
    }


def rows_by_doc(rows: Mapping[Any, Mapping] | Sequence[Mapping]) -> dict[Any, Mapping]:
    """Per-prompt rows as ``{doc_id: row}``; accepts that mapping already or a list of rows carrying ``doc_id``."""
    if isinstance(rows, Mapping):
        return dict(rows)
    out: dict[Any, Mapping] = {}
    for i, row in enumerate(rows):
        if "doc_id" not in row:
            raise ValueError(f"per-prompt row {i} has no doc_id")
        if row["doc_id"] in out:
            raise ValueError(f"doc_id {row['doc_id']!r} appears twice in the per-prompt rows")
        out[row["doc_id"]] = row
    return out


def all_value(row: Mapping, metric: str) -> float:
    """D_all of one prompt: ``<metric>_all`` when present and defined, else ``<metric>`` (the per-input value)."""
    v = as_float(row.get(f"{metric}_all"))
    return v if not math.isnan(v) else as_float(row.get(metric))


def split_from_prompts(
    base_rows: Mapping[Any, Mapping] | Sequence[Mapping],
    model_rows: Mapping[Any, Mapping] | Sequence[Mapping],
    metric: str = "sbert",
    matched: bool = False,
    variant: str = "additive",
    subset: str = "correct",
) -> dict[str, Any]:
    """The QC/residual split (:func:`qc_residual_split`) from per-prompt values of the base and the model.

    Rows are joined on ``doc_id``; only doc ids present in both runs are used, and the ids present in one run only
    are reported (``ids_only_base``, ``ids_only_model``), never dropped silently. Per prompt, D_all is
    ``<metric>_all`` (or ``<metric>``) and D_corr is ``<metric>_<subset>`` (NaN/None: not computable, < 2 outputs in
    the subset). ``subset`` is ``correct`` (the grader's verdicts) or ``acceptable`` (the reward model's threshold,
    docs/quality.md); the mean count per prompt is read from ``k_<subset>``.

    * ``matched=False`` (the reference's aggregation): D_all = mean over all common prompts with a defined D_all;
      D_corr = mean over each run's own computable prompts (a different subset per run).
    * ``matched=True``: the prompt set P = prompts computable in BOTH runs; D_corr and D_all are both means over P.

    Returns the four means, the split, ``n_prompts`` (prompts behind D_all), ``n_corr_base``/``n_corr_model``
    (prompts behind each D_corr), mean ``k_correct`` when present, and the mismatch lists.
    """
    base, model = rows_by_doc(base_rows), rows_by_doc(model_rows)
    only_b = sorted((d for d in base if d not in model), key=str)
    only_m = sorted((d for d in model if d not in base), key=str)
    common = [d for d in base if d in model]
    key_corr = f"{metric}_{subset}"

    def corr_ok(row: Mapping) -> bool:
        return not math.isnan(as_float(row.get(key_corr)))

    if matched:
        ids = [d for d in common if corr_ok(base[d]) and corr_ok(model[d])]
        ids_all, ids_cb, ids_cm = ids, ids, ids
    else:
        ids_all = common
        ids_cb = [d for d in common if corr_ok(base[d])]
        ids_cm = [d for d in common if corr_ok(model[d])]
    all_b = [all_value(base[d], metric) for d in ids_all]
    all_m = [all_value(model[d], metric) for d in ids_all]
    out: dict[str, Any] = {
        "metric": metric,
        "subset": subset,
        "matched": matched,
        "variant": variant,
        "d_all_base": nanmean(all_b),
        "d_corr_base": nanmean(base[d].get(key_corr) for d in ids_cb),
        "d_all_model": nanmean(all_m),
        "d_corr_model": nanmean(model[d].get(key_corr) for d in ids_cm),
        "n_prompts": len(ids_all),
        "n_corr_base": len(ids_cb),
        "n_corr_model": len(ids_cm),
        "n_common": len(common),
        "k_correct_base": nanmean(base[d].get(f"k_{subset}") for d in ids_all),
        "k_correct_model": nanmean(model[d].get(f"k_{subset}") for d in ids_all),
        "ids_only_base": only_b,
        "ids_only_model": only_m,
    }
    out.update(
        qc_residual_split(out["d_all_base"], out["d_corr_base"], out["d_all_model"], out["d_corr_model"], variant)
    )
    return out


# ---------------------------------------------------------------- bootstrap over prompts


def _defined(values: Iterable[Any]) -> np.ndarray:
    import numpy as np

    arr = np.asarray([as_float(v) for v in values], dtype=float)
    return arr[~np.isnan(arr)]


def bootstrap_means(values: Iterable[Any], iters: int = 2000, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``iters`` bootstrap replicates of the mean of the defined values (resampling prompts with replacement)."""
    import numpy as np

    x = _defined(values)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if x.size == 0:
        return np.full(iters, np.nan)
    idx = rng.integers(0, x.size, size=(iters, x.size))
    return x[idx].mean(axis=1)


def _percentiles(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    import numpy as np

    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(
    values: Iterable[Any],
    stat: Callable[..., Any] | None = None,
    iters: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile bootstrap CI of ``stat`` (default: the mean) over prompts.

    NaN/None values (undefined prompts) are dropped first; the remaining n values are resampled with replacement
    ``iters`` times (one vectorised ``(iters, n)`` index draw) and ``stat(sample, axis=1)`` is taken per replicate.
    The interval is the ``[alpha/2, 1 - alpha/2]`` quantiles of the replicates. Returns ``estimate`` (stat of the
    data), ``low``, ``high`` and ``n``; all NaN when no value is defined.
    """
    import numpy as np

    stat = np.mean if stat is None else stat
    x = _defined(values)
    if x.size == 0:
        return {"estimate": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(iters, x.size))
    reps = np.asarray(stat(x[idx], axis=1), dtype=float)
    lo, hi = _percentiles(reps, alpha)
    return {"estimate": float(stat(x)), "low": lo, "high": hi, "n": int(x.size)}


def paired_differences(a_by_doc: Mapping[Any, Any], b_by_doc: Mapping[Any, Any]) -> dict[str, Any]:
    """``a - b`` per doc id defined in both; plus the ids found in only one of them."""
    import numpy as np

    common = [d for d in a_by_doc if d in b_by_doc]
    diffs = []
    for d in common:
        a, b = as_float(a_by_doc[d]), as_float(b_by_doc[d])
        if not (math.isnan(a) or math.isnan(b)):
            diffs.append(a - b)
    return {
        "diffs": np.asarray(diffs, dtype=float),
        "ids_only_a": sorted((d for d in a_by_doc if d not in b_by_doc), key=str),
        "ids_only_b": sorted((d for d in b_by_doc if d not in a_by_doc), key=str),
    }


def paired_bootstrap_diff(
    a_by_doc: Mapping[Any, Any],
    b_by_doc: Mapping[Any, Any],
    iters: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap CI of mean(a - b) over doc ids where both are defined (a = candidate, b = baseline).

    d_i = a_i - b_i on the common doc ids with both values defined; estimate = mean(d); CI = percentile bootstrap of
    the mean of d resampling prompts (pairs stay together). Ids present in only one run are returned in
    ``ids_only_a`` / ``ids_only_b``.
    """
    p = paired_differences(a_by_doc, b_by_doc)
    ci = bootstrap_ci(p["diffs"], iters=iters, alpha=alpha, seed=seed)
    return {**ci, "ids_only_a": p["ids_only_a"], "ids_only_b": p["ids_only_b"]}


def stratified_bootstrap_mean(
    strata: Sequence[Iterable[Any]], iters: int = 2000, alpha: float = 0.05, seed: int = 0
) -> dict[str, float]:
    """CI of the unweighted mean over strata (tasks) of each stratum's mean, resampling prompts within each stratum.

    estimate = (1/T) Σ_t mean(x_t); each replicate resamples every task's prompts independently. Strata with no
    defined value are left out (as they are from the point estimate).
    """
    import numpy as np

    arrays = [a for a in (_defined(s) for s in strata) if a.size]
    if not arrays:
        return {"estimate": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    rng = np.random.default_rng(seed)
    reps = np.mean([bootstrap_means(a, iters, rng) for a in arrays], axis=0)
    lo, hi = _percentiles(reps, alpha)
    est = float(np.mean([a.mean() for a in arrays]))
    return {"estimate": est, "low": lo, "high": hi, "n": int(sum(a.size for a in arrays))}


def stratified_paired_diff(
    pairs: Sequence[tuple[Mapping[Any, Any], Mapping[Any, Any]]],
    iters: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """CI of the unweighted mean over tasks of mean(a - b), from ``(a_by_doc, b_by_doc)`` pairs, one per task."""
    return stratified_bootstrap_mean(
        [paired_differences(a, b)["diffs"] for a, b in pairs], iters=iters, alpha=alpha, seed=seed
    )
