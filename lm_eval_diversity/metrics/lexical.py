"""Lexical and structural diversity of a set of texts (no model call).

Every function takes a list of texts: the K CoT-stripped outputs of one prompt (per-input level), or any other set
(across-input and overall levels). A set of fewer than 2 texts has no diversity: every measure is NaN there, never 0.
Measures and directions (``HIGHER_IS_BETTER``: True when a higher value means more diverse outputs):

* ``compression_ratio``: bytes of the texts joined by one space (UTF-8) / bytes of their gzip file (level 9).
  Redundant sets compress well, so higher = less diverse.
* ``ngram_diversity``: sum over n = 1..4 of distinct_n (so 0..4).
* ``self_repetition``: mean over texts of ``log(1 + sum over the text's distinct 4-grams of the number of OTHER texts
  that contain that 4-gram)``. Higher = more repetition across outputs.
* ``homogenization_rougel``: mean ROUGE-L F1 over the K(K-1)/2 pairs (rouge-score's tokenizer, no stemming).
  Higher = more alike.
* ``distinct_1`` .. ``distinct_4``: distinct n-grams / n-grams, pooled over the texts; n-grams never cross texts.
* ``self_bleu``: mean over texts of sacrebleu's sentence BLEU (tokenizer 13a, ``exp`` smoothing, effective order)
  of the text against all the others as references, on a 0..1 scale. Higher = more alike.

Words (distinct-n, n-gram diversity, self-repetition) are ``str.split()`` tokens: whitespace-separated, case and
punctuation kept.

``mode="compat"`` reproduces the PyPI package ``diversity`` 0.3.x (``compression_ratio``,
``ngram_diversity_score``, ``self_repetition_score``, ``homogenization_score(measure="rougel")``) value for value,
rounding included, on every set of at least 2 texts where the package returns a value (where it divides by zero,
NaN here). ``mode="default"`` corrects it where it is wrong
(docs/metrics.md, "Lexical measures"):

* compression: the package gzips the gzip output a second time (and its inner gzip header holds the current time);
  the stored second stream adds a fixed overhead to the denominator, biasing the ratio low on short sets. Default
  compresses once.
* n-gram diversity: the package joins the texts with a space and splits on single spaces, so n-grams run across
  text boundaries (the value depends on the order of the outputs) and runs of spaces make empty "words".
* self-repetition: the package ignores its ``n`` argument (always 4-grams); default honours ``n``.
* homogenization: the package returns 1.0 (maximally homogeneous) when every pair has ROUGE-L 0, i.e. for texts
  with no word in common; and it scores two texts without tokens 0 (its tokenizer keeps only ``[a-z0-9]`` runs).
  Default returns the plain mean, and a pair whose token sequences are both empty (identical) scores 1.
* the package rounds every value to 3 decimals; default keeps full precision.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from lm_eval_diversity.modes import LexicalMode, choices

NAN = float("nan")
MODES = choices(LexicalMode)  # the lexical_mode setting's choices
DISTINCT_ORDERS = (1, 2, 3, 4)
GZIP_LEVEL = 9
SELF_REPETITION_N = 4
NGRAM_DIVERSITY_MAX_N = 4

# True: a higher value means more diverse outputs.
HIGHER_IS_BETTER: dict[str, bool] = {
    "compression_ratio": False,
    "ngram_diversity": True,
    "self_repetition": False,
    "homogenization_rougel": False,
    **{f"distinct_{n}": True for n in DISTINCT_ORDERS},
    "self_bleu": False,
}
LEXICAL_MEASURES: tuple[str, ...] = tuple(HIGHER_IS_BETTER)

# Pairs per LCS batch are chosen so that one batch row block holds about this many cells (cache-sized).
_LCS_CELLS_PER_BATCH = 1 << 16


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"lexical metrics: mode must be one of {', '.join(MODES)}, got {mode!r}")


def words(text: str) -> list[str]:
    """Word tokens of distinct-n, n-gram diversity and self-repetition: ``str.split()``."""
    return text.split()


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# ---------------------------------------------------------------------------------------------------------------
# compression ratio


def _gzip_file_size(payload: bytes, inner_name: str | None = None) -> int:
    """Size of a gzip file holding ``payload`` (level 9, mtime 0); ``inner_name`` is the name stored in the header."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename=inner_name or "", mode="wb", fileobj=buf, compresslevel=GZIP_LEVEL, mtime=0) as f:
        f.write(payload)
    return len(buf.getvalue())


def compression_ratio(texts: Sequence[str], mode: str = "default") -> float:
    """Compression ratio ``len(raw) / len(gzip(raw))`` with ``raw = " ".join(texts)`` in UTF-8.

    default: one gzip compression at level 9 (header without file name; 18 bytes of header and trailer).
    compat: the package's value: ``raw`` is gzipped (``gzip.compress``, level 9) and that gzip stream is written
    through a second ``GzipFile`` named ``compressed.gz``; the ratio is rounded to 3 decimals. The inner header's
    time stamp is fixed at 0 here (the package uses the current time).
    NaN for fewer than 2 texts or when ``raw`` is empty.
    """
    _check_mode(mode)
    raw = " ".join(texts).encode("utf-8")
    if len(texts) < 2 or not raw:
        return NAN
    if mode == "compat":
        compressed = _gzip_file_size(gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0), "compressed.gz")
        return round(len(raw) / compressed, 3)
    return len(raw) / _gzip_file_size(raw)


# ---------------------------------------------------------------------------------------------------------------
# distinct-n and n-gram diversity


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / n-grams over the set: ``|set(G)| / |G|`` where G pools the word n-grams of every text.

    n-grams never cross texts; words are ``str.split()`` tokens. NaN for fewer than 2 texts or when no text has
    ``n`` words.
    """
    if n < 1:
        raise ValueError(f"distinct_n: n must be >= 1, got {n}")
    if len(texts) < 2:
        return NAN
    pooled: list[tuple[str, ...]] = []
    for text in texts:
        pooled.extend(_ngrams(words(text), n))
    if not pooled:
        return NAN
    return len(set(pooled)) / len(pooled)


def ngram_diversity_score(texts: Sequence[str], max_n: int = NGRAM_DIVERSITY_MAX_N, mode: str = "default") -> float:
    """N-gram diversity: ``sum_{n=1..max_n} distinct / total n-grams`` (range 0..max_n).

    default: ``sum_n distinct_n(texts, n)``, n-grams inside each text. compat: the package's tokenisation,
    ``" ".join(texts).split(" ")``, so n-grams span text boundaries and consecutive spaces give empty words;
    rounded to 3 decimals. NaN for fewer than 2 texts or when some order has no n-gram.
    """
    _check_mode(mode)
    if max_n < 1:
        raise ValueError(f"ngram_diversity_score: max_n must be >= 1, got {max_n}")
    if len(texts) < 2:
        return NAN
    if mode == "default":
        return float(sum(distinct_n(texts, n) for n in range(1, max_n + 1)))  # NaN propagates
    joined = " ".join(texts).split(" ")
    score = 0.0
    for n in range(1, max_n + 1):
        grams = _ngrams(joined, n)
        if not grams:
            return NAN
        score += len(set(grams)) / len(grams)
    return round(score, 3)


# ---------------------------------------------------------------------------------------------------------------
# self-repetition


def self_repetition_score(texts: Sequence[str], n: int = SELF_REPETITION_N, mode: str = "default") -> float:
    """Self-repetition: ``(1/K) sum_i log(1 + sum_{g in G_i} (c(g) - 1))``.

    ``G_i`` is the set of distinct word n-grams of text i and ``c(g)`` the number of texts whose set contains g, so
    the inner sum counts, over the n-grams of text i, the other texts that share them. Natural log. compat: the
    package always uses 4-grams (it ignores its ``n``), so ``n`` must be 4 there. NaN for fewer than 2 texts.
    The value is not rounded in either mode (the package does not round it).
    """
    _check_mode(mode)
    if mode == "compat" and n != SELF_REPETITION_N:
        raise ValueError(f"self_repetition_score: the compat mode always uses 4-grams (as the package), got n={n}")
    if n < 1:
        raise ValueError(f"self_repetition_score: n must be >= 1, got {n}")
    if len(texts) < 2:
        return NAN
    per_text = [{" ".join(g) for g in _ngrams(words(t), n)} for t in texts]
    counts: Counter[str] = Counter()
    for grams in per_text:
        counts.update(grams)
    total = 0.0
    for grams in per_text:
        shared = sum(counts[g] for g in grams) - len(grams)
        total += np.log(shared + 1)
    return float(total / len(texts))


# ---------------------------------------------------------------------------------------------------------------
# homogenization by ROUGE-L


@functools.cache
def _rouge_tokenizer():
    from rouge_score import tokenizers

    return tokenizers.DefaultTokenizer(use_stemmer=False)


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokenisation without stemming: lower case, ``[a-z0-9]`` runs."""
    return _rouge_tokenizer().tokenize(text)


def lcs_lengths(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Length of the longest common subsequence of each pair of token-id arrays (ids >= 0, int32), batched.

    Row recurrence of the LCS table, one row for all pairs of a batch at once: with ``prev`` the previous row and
    ``m[j]`` = 1 where the row's token equals column token j, the new row is the running maximum of
    ``max(prev[j], prev[j-1] + m[j])``. Pairs are sorted by length and padded with values that never match.
    """
    out = np.zeros(len(pairs), dtype=np.int64)
    if not pairs:
        return out
    # rows over the shorter sequence: fewer Python-level iterations
    oriented = [(a, b) if len(a) <= len(b) else (b, a) for a, b in pairs]
    order = sorted(range(len(oriented)), key=lambda p: (len(oriented[p][1]), len(oriented[p][0])))
    start = 0
    while start < len(order):
        width = max(len(oriented[order[start]][1]), 1)
        size = max(1, _LCS_CELLS_PER_BATCH // width)
        idx = order[start : start + size]
        start += size
        rows = max(len(oriented[p][0]) for p in idx)
        cols = max(len(oriented[p][1]) for p in idx)
        if rows == 0 or cols == 0:
            continue
        a = np.full((len(idx), rows), -1, dtype=np.int32)
        b = np.full((len(idx), cols), -2, dtype=np.int32)
        for r, p in enumerate(idx):
            x, y = oriented[p]
            a[r, : len(x)] = x
            b[r, : len(y)] = y
        dtype = np.int16 if cols < np.iinfo(np.int16).max else np.int32
        prev = np.zeros((len(idx), cols + 1), dtype=dtype)
        cur = np.zeros_like(prev)
        match = np.empty((len(idx), cols), dtype=bool)
        diagonal = np.empty((len(idx), cols), dtype=dtype)
        for i in range(rows):
            np.equal(b, a[:, i : i + 1], out=match)
            np.add(prev[:, :-1], match, out=diagonal)
            np.maximum(prev[:, 1:], diagonal, out=cur[:, 1:])
            np.maximum.accumulate(cur[:, 1:], axis=1, out=cur[:, 1:])
            prev, cur = cur, prev
        out[idx] = prev[:, cols]
    return out


def _f1_matrix(lcs: np.ndarray, lengths: np.ndarray, mode: str) -> np.ndarray:
    """K x K ROUGE-L F1 from the LCS of the pairs i < j (row-major), as rouge-score computes it: ``P = LCS / |i|``,
    ``R = LCS / |j|``, ``2 P R / (P + R)``, 0 when the LCS is 0. Default: two token-less texts score 1."""
    k = len(lengths)
    upper_i, upper_j = np.triu_indices(k, 1)
    len_i, len_j = lengths[upper_i], lengths[upper_j]
    f1 = np.zeros(len(lcs))
    hit = lcs > 0
    precision = lcs[hit] / len_i[hit]
    recall = lcs[hit] / len_j[hit]
    f1[hit] = 2 * precision * recall / (precision + recall)
    if mode == "default":
        f1[(len_i == 0) & (len_j == 0)] = 1.0
    matrix = np.zeros((k, k))
    matrix[upper_i, upper_j] = f1
    matrix[upper_j, upper_i] = f1
    return matrix


def homogenization_rouge_l_groups(groups: Sequence[Sequence[str]], mode: str = "default") -> list[float]:
    """``homogenization_rouge_l`` of each group, with the LCS of every pair of every group in one batched pass."""
    _check_mode(mode)
    vocab: dict[str, int] = {}
    token_ids: list[list[np.ndarray]] = []
    for texts in groups:
        token_ids.append(
            [np.array([vocab.setdefault(w, len(vocab)) for w in rouge_tokens(t)], dtype=np.int32) for t in texts]
        )
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for ids in token_ids:
        pairs.extend((ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids)))
    lcs = lcs_lengths(pairs)
    results: list[float] = []
    pos = 0
    for ids in token_ids:
        k = len(ids)
        n_pairs = k * (k - 1) // 2
        group_lcs = lcs[pos : pos + n_pairs]
        pos += n_pairs
        if k < 2:
            results.append(NAN)
            continue
        f1 = _f1_matrix(group_lcs, np.array([len(x) for x in ids]), mode)
        results.append(_homogenization_from_matrix(f1, mode))
    return results


def _homogenization_from_matrix(f1: np.ndarray, mode: str) -> float:
    k = f1.shape[0]
    if mode == "default":
        return float(f1[np.triu_indices(k, 1)].mean())
    # the package's summation order and its all-zero rule
    corpus = 0
    for i in range(k):
        corpus += sum(float(f1[i, j]) for j in range(k) if j != i) / (k - 1)
    if corpus == 0:
        corpus += k
    return round(corpus / k, 3)


def homogenization_rouge_l(texts: Sequence[str], mode: str = "default") -> float:
    """Homogenization: mean ROUGE-L F1 (LCS-based, rouge-score's tokenizer, no stemmer) over all pairs of texts.

    ``F1(i, j) = 2 P R / (P + R)``, ``P = LCS / |t_i|``, ``R = LCS / |t_j|`` (symmetric), 0 when a side has no
    token. default: mean over the K(K-1)/2 pairs; two token-less texts score 1. compat: the package's
    ``homogenization_score(measure="rougel")``: mean over texts of the mean over the others, 1.0 when every pair
    scores 0, rounded to 3 decimals. NaN for fewer than 2 texts.
    """
    return homogenization_rouge_l_groups([texts], mode)[0]


# ---------------------------------------------------------------------------------------------------------------
# self-BLEU


BLEU_TOKENIZER = "13a"
BLEU_SMOOTHING = "exp"
BLEU_MAX_ORDER = 4  # sacrebleu's default n-gram order


@functools.cache
def _bleu_tokenizer():
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=BLEU_TOKENIZER, smooth_method=BLEU_SMOOTHING, effective_order=True).tokenizer


def self_bleu(texts: Sequence[str]) -> float:
    """Self-BLEU: mean over texts of ``BLEU(text, references = the other texts) / 100`` (sacrebleu).

    sacrebleu's sentence BLEU (``BLEU(tokenize="13a", smooth_method="exp", effective_order=True).sentence_score``):
    n-grams up to 4, counts clipped by the largest count in any one reference, brevity penalty against the closest
    reference length (the shorter on a tie), ``exp`` smoothing of zero-match orders, orders longer than the
    hypothesis left out. Texts with no whitespace-separated token have no BLEU and take no part, neither as
    hypothesis nor as reference. NaN when fewer than 2 texts have a token.

    Same value as calling ``sentence_score`` K times, computed from sacrebleu's own tokenizer, n-gram extraction and
    ``compute_bleu`` with each text's n-grams extracted once: the clipping count of an n-gram against "all texts but
    i" is the largest count among the texts, or the second largest when text i holds the largest.
    """
    from sacrebleu.metrics import BLEU
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    kept = [t for t in texts if t.split()]
    if len(kept) < 2:
        return NAN
    tokenizer = _bleu_tokenizer()
    stats = [extract_all_word_ngrams(tokenizer(t.rstrip()), 1, BLEU_MAX_ORDER) for t in kept]
    best: dict[tuple[str, ...], tuple[int, int, int]] = {}  # n-gram -> (largest count, its text, second largest)
    for i, (grams, _) in enumerate(stats):
        for g, c in grams.items():
            c1, i1, c2 = best.get(g, (0, -1, 0))
            if c > c1:
                best[g] = (c, i, c1)
            elif c > c2:
                best[g] = (c1, i1, c)
    lengths = [n for _, n in stats]
    scores = []
    for i, (grams, hyp_len) in enumerate(stats):
        correct = [0] * BLEU_MAX_ORDER
        total = [0] * BLEU_MAX_ORDER
        for g, c in grams.items():
            c1, i1, c2 = best[g]
            total[len(g) - 1] += c
            correct[len(g) - 1] += min(c, c2 if i1 == i else c1)
        others = lengths[:i] + lengths[i + 1 :]
        ref_len = min(others, key=lambda n: (abs(hyp_len - n), n))
        result = BLEU.compute_bleu(correct, total, hyp_len, ref_len, smooth_method=BLEU_SMOOTHING, effective_order=True)
        scores.append(result.score)
    return math.fsum(scores) / len(scores) / 100.0


# ---------------------------------------------------------------------------------------------------------------
# every measure of a set


def lexical_settings(mode: str = "default") -> dict[str, object]:
    """Everything that fixes the lexical values, for the results that report them."""
    import importlib.metadata

    _check_mode(mode)
    return {
        "mode": mode,
        "words": "str.split",
        "gzip_level": GZIP_LEVEL,
        "ngram_diversity_max_n": NGRAM_DIVERSITY_MAX_N,
        "self_repetition_n": SELF_REPETITION_N,
        "rouge": "rougeL F1, rouge-score DefaultTokenizer, no stemmer",
        "bleu": f"sacrebleu sentence BLEU, tokenize={BLEU_TOKENIZER}, smooth={BLEU_SMOOTHING}, effective_order",
        "sacrebleu": importlib.metadata.version("sacrebleu"),
        "rouge_score": importlib.metadata.version("rouge-score"),
    }
