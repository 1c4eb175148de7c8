"""The wheel's explicit package list names every package of the source tree (a missing one installs without it)."""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_source_package_is_in_the_wheel_list():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    source = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "lm_eval_diversity").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert source, "no package found under lm_eval_diversity/"
    assert sorted(source - listed) == []
