"""AST subtree diversity against hand-worked trees, and against a recursive reading of the paper's rule on MBPP."""

from __future__ import annotations

import ast
import json
import math
from collections import Counter

import pytest

from lm_eval_diversity.metrics.code_ast import (
    AstResult,
    SubtreeCache,
    ast_metrics,
    ast_subtrees,
    code_text,
    multiset_jaccard_distance,
    pooled_parseability,
)

# Hand-worked: ``y = a + b`` is Module(Assign(Name(y, Store), BinOp(Name(a, Load), Add, Name(b, Load)))).
# Heights: Store/Load/Add 1, Name 2, BinOp 3, Assign 4, Module 5 -> exactly one height-4 subtree, the Assign.
ASSIGN_Y = (
    "Assign(targets=[Name(id='y', ctx=Store())], "
    "value=BinOp(left=Name(id='a', ctx=Load()), op=Add(), right=Name(id='b', ctx=Load())))"
)
ASSIGN_Z = ASSIGN_Y.replace("id='y'", "id='z'")


def test_single_assignment_has_one_subtree():
    assert ast_subtrees("y = a + b") == Counter({ASSIGN_Y: 1})


def test_function_descends_only_into_taller_nodes():
    # FunctionDef(arguments(arg x) [height 2], Return(BinOp(Name x, Add, Constant 1)) [height 4]) has height 5,
    # Module 6: the Return is collected; ``arguments`` (height 2) is neither collected nor descended into.
    code = "def f(x):\n    return x + 1\n"
    assert ast_subtrees(code) == Counter(
        {"Return(value=BinOp(left=Name(id='x', ctx=Load()), op=Add(), right=Constant(value=1)))": 1}
    )


def test_siblings_and_the_module_itself():
    # print(y): Expr(Call(Name print, [Name y])): Name 2, Call 3, Expr 4 -> collected next to the Assign
    two = ast_subtrees("y = a + b\nprint(y)")
    assert sum(two.values()) == 2 and two[ASSIGN_Y] == 1
    assert [k for k in two if k != ASSIGN_Y][0].startswith("Expr(value=Call(func=Name(id='print'")
    # ``x = 1``: Name 2, Assign 3, Module 4 -> the whole module is the one subtree
    (only,) = ast_subtrees("x = 1")
    assert only.startswith("Module(body=[Assign(")
    # too short: Module(Pass) has height 2; empty code is Module() of height 1
    assert ast_subtrees("pass") == Counter()
    assert ast_subtrees("") == Counter()


def test_unparseable_code():
    assert ast_subtrees("def f(:\n    return") is None
    assert ast_subtrees("x = 1\x00") is None  # a null byte: ValueError or SyntaxError depending on the version


def test_multiset_jaccard_by_hand():
    a = Counter({"s": 1, "t": 1})
    b = Counter({"s": 2})
    # min: s 1, t 0 -> 1; max: s 2, t 1 -> 3
    assert multiset_jaccard_distance(a, b) == pytest.approx(2 / 3)
    assert multiset_jaccard_distance(a, a) == 0.0
    assert multiset_jaccard_distance(Counter({"u": 1}), b) == 1.0


A = "y = a + b\nz = a + b"  # {Sy: 1, Sz: 1}
B = "y = a + b\ny = a + b"  # {Sy: 2}
E = "z = a + b"  # {Sz: 1}
SHORT = "pass"  # parses, no subtree
BROKEN = "def ("  # does not parse


def test_prompt_metrics_by_hand():
    r = ast_metrics([A, B, SHORT, BROKEN])
    # with subtrees: A, B; pooled Sy 3, Sz 1 -> 2 distinct / 4; one pair: 2/3; parsed 3 of 4
    assert r.ast_distinct == pytest.approx(0.5)
    assert r.ast_pairwise == pytest.approx(2 / 3)
    assert (r.n_parsed, r.n_total, r.parseability_rate) == (3, 4, 0.75)
    r3 = ast_metrics([A, B, E])
    # pooled Sy 3, Sz 2 -> 2/5; pairs (A,B) 2/3, (A,E) 1 - 1/2, (B,E) 1 - 0/3
    assert r3.ast_distinct == pytest.approx(2 / 5)
    assert r3.ast_pairwise == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert r3.as_dict() == {"ast_distinct": r3.ast_distinct, "ast_pairwise": r3.ast_pairwise, "parseability_rate": 1.0}


def test_identical_programs():
    r = ast_metrics([A, A, A])
    assert r.ast_distinct == pytest.approx(2 / 6)
    assert r.ast_pairwise == 0.0


def test_mask_selects_the_subset():
    r = ast_metrics([A, B, SHORT, BROKEN], mask=[True, False, True, True])
    # A alone has subtrees: distinct 2/2, no pair; parsed A, SHORT of 3 selected
    assert r.ast_distinct == 1.0
    assert math.isnan(r.ast_pairwise)
    assert (r.n_parsed, r.n_total) == (2, 3)
    with pytest.raises(ValueError, match="mask of length 2"):
        ast_metrics([A, B, E], mask=[True, False])


def test_undefined_cases_are_nan_not_zero():
    one = ast_metrics([A])  # fewer than 2 selected outputs: the reference does not score the prompt
    assert math.isnan(one.ast_distinct) and math.isnan(one.ast_pairwise) and one.parseability_rate == 1.0
    none = ast_metrics([A, B], mask=[False, False])
    assert math.isnan(none.ast_distinct) and math.isnan(none.parseability_rate)
    broken = ast_metrics([BROKEN, "", "   "])
    assert math.isnan(broken.ast_distinct) and math.isnan(broken.ast_pairwise)
    assert broken.n_parsed == 2  # empty code parses (an empty module) but has no subtree
    empty = ast_metrics([])
    assert empty.n_total == 0 and math.isnan(empty.parseability_rate)


def test_code_text_takes_the_longest_fenced_block():
    out = "Use this:\n```python\ny = a + b\nz = a + b\n```\nor\n```\ny = 1\n```\n"
    assert code_text(out) == "y = a + b\nz = a + b"
    assert code_text("  y = a + b  ") == "y = a + b"
    r = ast_metrics([out, "Sure.\n```python\ny = a + b\n```"])
    assert r.ast_pairwise == pytest.approx(1 - 1 / 2)  # {Sy, Sz} vs {Sy}


def test_recursion_guard():
    # a + a + ... (n terms): n - 1 nested BinOps; Module height = (n - 1) + 2 (innermost Name) + 1 (Assign) + 1
    assert ast_subtrees("x = " + "+".join(["a"] * 498)) == Counter(
        {ast.dump(ast.parse("a + a + a").body[0].value): 1}
    )  # height 501: kept; its one height-4 subtree is the innermost a + a + a
    assert ast_subtrees("x = " + "+".join(["a"] * 499)) == Counter()  # height 502: guarded, parsed, dropped


def test_cache_parses_each_program_once(monkeypatch):
    import lm_eval_diversity.metrics.code_ast as code_ast

    calls = []
    real = code_ast.ast_subtrees
    monkeypatch.setattr(code_ast, "ast_subtrees", lambda code, h=4: calls.append(code) or real(code, h))
    cache = SubtreeCache()
    ast_metrics([A, B, A], cache=cache)
    ast_metrics([A, B, A], mask=[True, False, True], cache=cache)
    assert sorted(calls) == sorted([A, B])


def test_pooled_parseability_counts_scored_prompts():
    results = [AstResult(0.5, 0.5, 3, 4), AstResult(math.nan, math.nan, 0, 1), AstResult(1.0, 0.0, 2, 2)]
    assert pooled_parseability(results) == pytest.approx(5 / 6)  # the 1-output prompt is not scored
    assert pooled_parseability(results, min_outputs=1) == pytest.approx(5 / 7)
    assert math.isnan(pooled_parseability([]))


# -----------------------------------------------------------------------------------------------------------------
# Against a direct recursive reading of the rule (leaf 1, node 1 + max child; collect height 4; descend if taller)
# -----------------------------------------------------------------------------------------------------------------


def _height(node) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_height(c) for c in children), default=0)


def _collect(node, out: list[str]) -> None:
    h = _height(node)
    if h == 4:
        out.append(ast.dump(node))
    elif h > 4:
        for c in ast.iter_child_nodes(node):
            _collect(c, out)


def test_mbpp_reference_solutions_match_the_recursive_rule(shared_data_dir):
    rows = [json.loads(line) for line in (shared_data_dir / "mbpp" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 500
    n_with = 0
    for row in rows:
        got = ast_subtrees(row["code"])
        expected: list[str] = []
        _collect(ast.parse(row["code"]), expected)
        assert got == Counter(expected), row["task_id"]
        n_with += bool(got)
    assert n_with > 450
