"""Layers: the runtime (lm-eval glue, scoring, run reading) never imports the ``compare`` report tool."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lm_eval_diversity"
# the command-line entry points that run ``compare`` on purpose (the CLI, the demo, the sweep's final report)
CALLERS = {"cli.py", "demo.py", "sweep/driver.py", "__main__.py"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _runtime_modules() -> list[Path]:
    rel = [(p, p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")]
    return sorted(p for p, r in rel if "compare" not in r.parts and r.as_posix() not in CALLERS)


@pytest.mark.parametrize(
    "module",
    _runtime_modules(),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_runtime_modules_do_not_import_compare(module):
    assert not {m for m in _imports(module) if m.startswith("lm_eval_diversity.compare")}
