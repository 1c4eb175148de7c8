"""NLI logical diversity (docs/metrics.md, `nli`): the pure part (sentence splitting, alignment, the formula).

For every unordered pair of outputs (a, b), a < b in ``itertools.combinations`` order, both are split into
sentences; a pair where either side has no sentence is skipped. With L = min(#sent_a, #sent_b), up to 3 positions
are compared: all of range(L) when L <= 3, else ``rng.sample(range(L), 3)``. Sentence t of a is compared with
sentence t of b in both directions, each direction scored ``w = P(entail) - P(contradict)`` (neutral weighs 0)::

    sim(a_t, b_t) = (w(a_t => b_t) + w(b_t => a_t)) / 2
    D_NLI(S)      = 1 - mean of sim over all aligned sentence pairs of all output pairs of S

so output pairs with more aligned sentences weigh more, and D_NLI lies in [0, 2]. It is 0.0 when S has no
scorable pair. The model call lives in :mod:`lm_eval_diversity.models`; this module only plans and combines.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Sequence

_SENTENCE_SPLIT = re.compile(r"[.!?]+\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Reference splitter: ``\\r``/``\\t`` to spaces, split on ``[.!?]+\\s+`` or newlines, strip, drop empties."""
    text = text.replace("\r", " ").replace("\t", " ")
    return [s for s in (piece.strip() for piece in _SENTENCE_SPLIT.split(text)) if s]


def aligned_sentence_pairs(outputs: Sequence[str], rng: random.Random, max_sentences: int = 3) -> list[tuple[str, str]]:
    """Aligned (a_t, b_t) sentence pairs of one set of outputs, in the reference order.

    ``rng`` is consumed exactly as in the reference (one ``sample`` call per output pair with more than
    ``max_sentences`` aligned positions).
    """
    sentences = [split_sentences(o) for o in outputs]
    pairs: list[tuple[str, str]] = []
    for sa, sb in itertools.combinations(sentences, 2):
        if not sa or not sb:
            continue
        length = min(len(sa), len(sb))
        positions = rng.sample(list(range(length)), max_sentences) if length > max_sentences else range(length)
        pairs.extend((sa[t], sb[t]) for t in positions)
    return pairs


def nli_diversity(aligned: Sequence[tuple[str, str]], entail_minus_contradict: Callable[[str, str], float]) -> float:
    """D_NLI from aligned sentence pairs and a directional score ``w(premise, hypothesis) = P_E - P_C``."""
    if not aligned:
        return 0.0
    sims = [(entail_minus_contradict(a, b) + entail_minus_contradict(b, a)) / 2.0 for a, b in aligned]
    return 1.0 - sum(sims) / len(sims)


def prompt_rng(seed: int, key: int | str) -> random.Random:
    """A deterministic RNG per prompt (or per corpus level), independent of processing order.

    The reference shares one RNG across levels and prompts, so its NLI values depend on consumption order; here
    each prompt draws from ``Random("nli:<seed>:<key>")`` (str seeds hash with SHA-512: stable across runs).
    """
    return random.Random(f"nli:{seed}:{key}")
