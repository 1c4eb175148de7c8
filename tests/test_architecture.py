"""The package's shape, read from its source: no import cycle, layers kept apart, no task named outside the catalogue.

Imports are read with ``ast`` from every module (module level, inside functions and under ``TYPE_CHECKING`` alike:
each is a dependency), so nothing is imported to check them.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from lm_eval_diversity.catalogue import TASK_PREFIX
from lm_eval_diversity.catalogue.tasks import task_names

PACKAGE = Path(__file__).resolve().parents[1] / "lm_eval_diversity"
ROOT = PACKAGE.name


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imported(module: str, tree: ast.AST) -> set[str]:
    """Every package module ``module`` imports (``from a import b`` names ``a.b`` when it is a module)."""
    path = MODULES[module]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        out.update(t for t in targets if t in MODULES)
    return out


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, with the packages they sit in (importing ``a.b.c`` runs ``a.b``),
    except its own enclosing packages (a submodule of a package being imported sees that package half-built, by
    Python's design)."""
    graph = {}
    for module, path in MODULES.items():
        deps = set()
        for target in _imported(module, ast.parse(path.read_text(encoding="utf-8"))):
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                dep = ".".join(parts[:i])
                own_package = i < len(parts) and module.startswith(dep + ".")
                if dep in MODULES and dep != module and not own_package:
                    deps.add(dep)
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "lm_eval_diversity.catalogue.tasks" in graph["lm_eval_diversity.loader"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def _depends_on(module: str, prefix: str) -> set[str]:
    return {d for d in import_graph()[module] if d == prefix or d.startswith(prefix + ".")}


# the command-line entry points that run ``compare`` on purpose (the CLI, the demo, the sweep's final report)
COMPARE_CALLERS = {"lm_eval_diversity.cli", "lm_eval_diversity.demo", "lm_eval_diversity.sweep.driver"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if ".compare" not in m and m not in COMPARE_CALLERS))
def test_the_runtime_does_not_import_the_report_tool(module):
    assert not _depends_on(module, "lm_eval_diversity.compare")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(("lm_eval_diversity.metrics.",))))
def test_metric_maths_knows_nothing_of_the_harness_or_the_catalogue(module):
    assert not _depends_on(module, "lm_eval_diversity.harness")
    assert not _depends_on(module, "lm_eval_diversity.catalogue")
    assert not _depends_on(module, "lm_eval_diversity.scoring")


def _named_tasks(path: Path, names: tuple[str, ...]) -> list[str]:
    """String literals of a module (docstrings aside) that name a catalogue task as a word."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    word = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    return [
        f"line {node.lineno}: {node.value!r:.80}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
        and word.search(node.value.replace(TASK_PREFIX, ""))
    ]  # fmt: skip


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("lm_eval_diversity.catalogue")))
def test_no_module_outside_the_catalogue_names_a_task(module):
    # a task's behaviour (gold format, equality, program builder, which metrics apply) is its record's
    assert _named_tasks(MODULES[module], task_names()) == []


def test_the_task_name_check_finds_a_name(tmp_path):
    source = tmp_path / "m.py"
    source.write_text('"""About gsm8k."""\nTASKS = ("gsm8k",)\nif task == "diversity_mbpp":\n    pass\n')
    assert [hit.split(":")[0] for hit in _named_tasks(source, ("gsm8k", "mbpp"))] == ["line 2", "line 3"]
