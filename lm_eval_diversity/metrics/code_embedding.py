"""Code-embedding diversity: SBERT and Vendi over embeddings of the extracted code (the paper's UniXcoder metrics).

The code of each CoT-stripped output is :func:`lm_eval_diversity.metrics.code_ast.code_text` (the longest fenced block,
else the whole text). Empty code is dropped. The non-empty code texts of a whole task are embedded once, in one
batched pass, by a second sentence-transformers model (the paper uses ``microsoft/unixcoder-base``: no
sentence-transformers config, so mean pooling, max_seq_length 512, L2-normalised); repeated code texts are embedded
once. For the selected outputs of one prompt (all, or the correct ones) with non-empty code embeddings e_1..e_m::

    code_sbert = D_SBERT(e_1..e_m)   (1 - mean pairwise cosine, :func:`.embedding.sbert_diversity_from_gram`)
    code_vendi = VS(e_1..e_m)        (Vendi, q = 1, cosine kernel, :func:`.embedding.vendi_from_gram`)

both NaN when m < 2 (the reference scores prompts with >= 2 non-empty code blocks). The reference's Vendi variant
normalises the kernel's eigenvalues by their clipped sum instead of by m and drops those below 1e-12; with unit
vectors the trace is m, so the two agree to float round-off. Nothing here runs a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lm_eval_diversity.metrics.code_ast import code_text
from lm_eval_diversity.metrics.embedding import gram, sbert_diversity_from_gram, vendi_from_gram

CODE_EMBEDDING_METRICS = ("code_sbert", "code_vendi")


@dataclass(frozen=True)
class TaskCode:
    """The code text of every output of a task, and its unique non-empty code texts (the texts to embed)."""

    codes: list[list[str]]  # per prompt, per output
    texts: list[str]  # unique non-empty code texts, in order of first appearance
    index: dict[str, int]  # code text -> row of its embedding

    @classmethod
    def from_outputs(cls, outputs_per_prompt: Sequence[Sequence[str]]) -> TaskCode:
        codes = [[code_text(o) for o in outputs] for outputs in outputs_per_prompt]
        index: dict[str, int] = {}
        for prompt_codes in codes:
            for c in prompt_codes:
                if c:
                    index.setdefault(c, len(index))
        return cls(codes, list(index), index)


def code_embedding_metrics(
    codes: Sequence[str], embeddings: np.ndarray, index: dict[str, int], mask: Sequence[bool] | None = None
) -> dict[str, float]:
    """``code_sbert`` and ``code_vendi`` of one prompt's code texts restricted to ``mask`` (all when ``None``);
    ``embeddings[index[code]]`` is the embedding of ``code``."""
    if mask is not None and len(mask) != len(codes):
        raise ValueError(f"mask of length {len(mask)} for {len(codes)} outputs")
    rows = [index[c] for i, c in enumerate(codes) if c and (mask is None or mask[i])]
    if len(rows) < 2:
        return dict.fromkeys(CODE_EMBEDDING_METRICS, math.nan)
    g = gram(np.asarray(embeddings)[rows])
    return {"code_sbert": float(sbert_diversity_from_gram(g)), "code_vendi": float(vendi_from_gram(g))}


def task_code_embedding_metrics(
    task: TaskCode, embeddings: np.ndarray, masks: Sequence[Sequence[bool] | None] | None = None
) -> list[dict[str, float]]:
    """:func:`code_embedding_metrics` for every prompt of ``task``; ``embeddings`` has one row per ``task.texts``
    (e.g. ``models.embed_texts(code_model, task.texts)``), ``masks`` one mask (or ``None``) per prompt."""
    emb = np.asarray(embeddings)
    if emb.shape[0] != len(task.texts):
        raise ValueError(f"{emb.shape[0]} code embeddings for {len(task.texts)} unique code texts")
    if masks is not None and len(masks) != len(task.codes):
        raise ValueError(f"{len(masks)} masks for {len(task.codes)} prompts")
    return [
        code_embedding_metrics(codes, emb, task.index, None if masks is None else masks[p])
        for p, codes in enumerate(task.codes)
    ]
