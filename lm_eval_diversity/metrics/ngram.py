"""Expectation-adjusted distinct n-grams (EAD); formula in docs/metrics.md (`ead`).

Tokenisation: delete every ``.`` and ``\\n`` (deleted, not replaced by a space), then split on whitespace; case and
all other punctuation are kept. n-grams are contiguous word n-grams inside each response; they never cross
responses. For a set S of responses and an order n, with C_n the number of n-grams pooled over S and U_n the
number of distinct ones::

    EAD_n(S) = 0                                             if C_n = 0
    EAD_n(S) = clip( U_n / (V * (1 - ((V - 1) / V) ** C_n)), 0, 1 )   otherwise
    EAD(S)   = (1/5) * sum_{n=1..5} EAD_n(S)        (orders with C_n = 0 count as 0)

V is the vocabulary size (50257, GPT-2, by default as in the reference).
"""

from __future__ import annotations

from collections.abc import Sequence

EAD_ORDERS = (1, 2, 3, 4, 5)
_DELETE = str.maketrans("", "", ".\n")


def ead_tokenize(text: str) -> list[str]:
    """Reference tokenisation: delete ``.`` and ``\\n``, then ``str.split()``."""
    return text.translate(_DELETE).split()


def ead_n(token_lists: Sequence[Sequence[str]], n: int, vocab_size: int) -> float:
    """EAD of one order ``n`` over already tokenised responses."""
    total = 0
    distinct: set[tuple[str, ...]] = set()
    for tokens in token_lists:
        count = len(tokens) - n + 1
        if count <= 0:
            continue
        total += count
        distinct.update(tuple(tokens[i : i + n]) for i in range(count))
    if total == 0:
        return 0.0
    expected = vocab_size * (1.0 - ((vocab_size - 1) / vocab_size) ** total)
    return min(max(len(distinct) / expected, 0.0), 1.0)


def ead_orders(responses: Sequence[str], vocab_size: int = 50257) -> list[float]:
    """EAD_n for n = 1..5."""
    token_lists = [ead_tokenize(r) for r in responses]
    return [ead_n(token_lists, n, vocab_size) for n in EAD_ORDERS]


def ead(responses: Sequence[str], vocab_size: int = 50257) -> float:
    """EAD of a set of responses: the mean of EAD_1..EAD_5 (0.0 for an empty set)."""
    return sum(ead_orders(responses, vocab_size)) / len(EAD_ORDERS)
