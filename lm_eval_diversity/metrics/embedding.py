"""Embedding-based diversity: SBERT semantic diversity and the Vendi score (docs/metrics.md, `sbert`, `vendi`).

Both take L2-normalised embeddings of one set S of m outputs (rows of ``E``) and use the cosine Gram matrix
``G = E E^T`` (diagonal 1)::

    D_SBERT(S) = 1 - mean_{a < b} G[a, b]           (0.0 when m <= 1; range [0, 2])
    VS(S)      = exp( - sum_j lambda_j ln lambda_j ) (1.0 when m <= 1; range [1, m])

where lambda_j are the eigenvalues of G / m, each clipped below at 1e-12 (order q = 1, Shannon; the clipping adds
about (m - rank) * 2.8e-11 to the entropy, as in the reference). Gram matrices and eigenvalues are computed in
float64 (the reference uses float32; the difference is below 1e-6, see docs/metrics.md).

The same two functions give ``code_sbert`` and ``code_vendi`` over the code model's embeddings of the extracted code
(the paper's UniXcoder metrics; what the code model embeds of an output is
:func:`lm_eval_diversity.metrics.code_ast.code_text`, and outputs with empty code are dropped from the set, so they
are NaN when fewer than 2 outputs have code, as in the reference). The reference's Vendi variant there normalises
the kernel's eigenvalues by their clipped sum instead of by m and drops those below 1e-12; with unit vectors the trace
is m, so the two agree to float round-off.
"""

from __future__ import annotations

import numpy as np

VENDI_EPS = 1e-12


def normalize_rows(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float64 (zero rows stay zero)."""
    e = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(e, axis=-1, keepdims=True)
    return e / np.where(norms == 0, 1.0, norms)


def gram(embeddings: np.ndarray) -> np.ndarray:
    """Cosine Gram matrix of normalised embeddings; works on (m, d) or batched (b, m, d) arrays."""
    e = normalize_rows(embeddings)
    return e @ np.swapaxes(e, -1, -2)


def sbert_diversity_from_gram(g: np.ndarray) -> np.ndarray | float:
    """1 - mean of the strict upper triangle of cosine Gram matrices, shape (m, m) or (b, m, m)."""
    m = g.shape[-1]
    if m <= 1:
        return 0.0 if g.ndim == 2 else np.zeros(g.shape[0])
    iu = np.triu_indices(m, k=1)
    return 1.0 - g[..., iu[0], iu[1]].mean(axis=-1)


def vendi_from_gram(g: np.ndarray) -> np.ndarray | float:
    """Vendi score (q = 1) of cosine Gram matrices, shape (m, m) or (b, m, m)."""
    m = g.shape[-1]
    if m <= 1:
        return 1.0 if g.ndim == 2 else np.ones(g.shape[0])
    lam = np.clip(np.linalg.eigvalsh(g / m), VENDI_EPS, None)
    return np.exp(-(lam * np.log(lam)).sum(axis=-1))
