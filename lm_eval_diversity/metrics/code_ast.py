"""Structural code diversity: AST subtrees of height 4, as the paper's code-diversity script computes it.

Code text of an output (already CoT-stripped): :func:`lm_eval_diversity.quality.code.code_block` without an entry
point, i.e. the longest fenced block (triple backticks, optional ``python`` tag), else the whole text; stripped.
This is the reference's ``extract_code_from_markdown`` called without an entry point, as its code-diversity script
calls it.

Per output: ``ast.parse`` the code; a ``SyntaxError`` (also ``ValueError``, e.g. a null byte, and
``MemoryError``/``RecursionError`` from the parser) makes the output *unparsed*. Height: a node without AST children
is 1, any other node 1 + the largest height of its children (``ast.iter_child_nodes``: expression contexts such as
``Load()`` and operators such as ``Add()`` are leaves). Walking down from the module, a node of height exactly
``h`` (4) contributes its ``ast.dump`` (default options: field names, no positions) and a node taller than ``h``
is descended into; smaller nodes are not. The multiset (Counter) of those strings is the output's subtree profile.
A module taller than 501 levels gives no profile (the reference's recursion guard: height -1 past depth 500).
Outputs that parse but give no subtree (short code, empty code) are dropped from the two diversity measures.

For the selected outputs S of one prompt (all outputs, or the correct ones), with profiles c_1..c_m of the outputs
that have subtrees::

    ast_distinct      = |union of keys| / sum_i |c_i|                     (distinct / total pooled subtrees)
    ast_pairwise      = mean_{i < j} 1 - sum_k min(c_i[k], c_j[k]) / sum_k max(c_i[k], c_j[k])
    parseability_rate = parsed / |S|

``ast_distinct`` and ``ast_pairwise`` are NaN when S has fewer than ``min_outputs`` (2) outputs (the reference scores
only prompts with >= 2 correct outputs); ``ast_distinct`` also when no output has subtrees, ``ast_pairwise`` when
fewer than 2 have. ``parseability_rate`` is NaN for an empty S. The reference reports one parseability rate per task,
pooled (sum parsed / sum total over the prompts with >= 2 selected outputs): :func:`pooled_parseability` gives it
from the per-prompt counts. The dump strings include identifiers and constants, and their format follows the running
Python version.
"""

from __future__ import annotations

import ast
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lm_eval_diversity.quality.code import code_block

SUBTREE_HEIGHT = 4
MAX_AST_HEIGHT = 501  # the reference's height recursion stops below depth 500 (a tree of 502 levels gives -1)
AST_METRICS = ("ast_distinct", "ast_pairwise", "parseability_rate")


def code_text(output: str) -> str:
    """The code of one CoT-stripped output: the longest fenced block, else the whole text (stripped)."""
    return code_block(output)


def _heights(tree: ast.AST) -> dict[int, int]:
    """Height of every node (by ``id``), computed bottom-up without recursion."""
    heights: dict[int, int] = {}
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        children = list(ast.iter_child_nodes(node))
        if expanded or not children:
            heights[id(node)] = 1 + max((heights[id(c)] for c in children), default=0)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children)
    return heights


def ast_subtrees(code: str, height: int = SUBTREE_HEIGHT) -> Counter[str] | None:
    """Subtree profile of one code text (see the module docstring); ``None`` when it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    heights = _heights(tree)
    profile: Counter[str] = Counter()
    if heights[id(tree)] > MAX_AST_HEIGHT:
        return profile
    stack = [tree]
    while stack:
        node = stack.pop()
        h = heights[id(node)]
        if h == height:
            profile[ast.dump(node)] += 1
        elif h > height:
            stack.extend(ast.iter_child_nodes(node))
    return profile


def multiset_jaccard_distance(a: Counter[str], b: Counter[str]) -> float:
    """1 - sum_k min(a[k], b[k]) / sum_k max(a[k], b[k]) (0.0 when both are empty)."""
    keys = a.keys() | b.keys()
    union = sum(max(a[k], b[k]) for k in keys)
    if union == 0:
        return 0.0
    return 1.0 - sum(min(a[k], b[k]) for k in keys) / union


@dataclass(frozen=True)
class AstResult:
    """AST metrics of one prompt's selected outputs, with the counts the task-level parseability pools."""

    ast_distinct: float
    ast_pairwise: float
    n_parsed: int
    n_total: int

    @property
    def parseability_rate(self) -> float:
        return self.n_parsed / self.n_total if self.n_total else math.nan

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in AST_METRICS}


class SubtreeCache:
    """Subtree profiles by code text, so the same program is parsed once per task (all outputs and correct subset
    alike)."""

    def __init__(self, height: int = SUBTREE_HEIGHT):
        self.height = height
        self._profiles: dict[str, Counter[str] | None] = {}

    def __call__(self, code: str) -> Counter[str] | None:
        if code not in self._profiles:
            self._profiles[code] = ast_subtrees(code, self.height)
        return self._profiles[code]


def ast_metrics(
    outputs: Sequence[str],
    mask: Sequence[bool] | None = None,
    min_outputs: int = 2,
    cache: SubtreeCache | None = None,
) -> AstResult:
    """AST metrics of one prompt's CoT-stripped outputs, restricted to ``mask`` (all outputs when ``None``)."""
    if mask is not None and len(mask) != len(outputs):
        raise ValueError(f"mask of length {len(mask)} for {len(outputs)} outputs")
    profile_of = cache if cache is not None else SubtreeCache()
    selected = [o for i, o in enumerate(outputs) if mask is None or mask[i]]
    profiles = [profile_of(code_text(o)) for o in selected]
    parsed = [p for p in profiles if p is not None]
    with_subtrees = [p for p in parsed if p]
    distinct = pairwise = math.nan
    if len(selected) >= min_outputs and with_subtrees:
        pooled: Counter[str] = Counter()
        for p in with_subtrees:
            pooled.update(p)
        distinct = len(pooled) / sum(pooled.values())
        m = len(with_subtrees)
        if m >= 2:
            dists = [
                multiset_jaccard_distance(with_subtrees[i], with_subtrees[j]) for i in range(m) for j in range(i + 1, m)
            ]
            pairwise = sum(dists) / len(dists)
    return AstResult(distinct, pairwise, len(parsed), len(selected))


def pooled_parseability(results: Iterable[AstResult], min_outputs: int = 2) -> float:
    """Task-level parseability as the reference reports it: sum of parsed over sum of selected outputs, over the
    prompts with at least ``min_outputs`` selected outputs (the prompts it scores); NaN if there are none."""
    parsed = total = 0
    for r in results:
        if r.n_total >= min_outputs:
            parsed += r.n_parsed
            total += r.n_total
    return parsed / total if total else math.nan
