"""Deferred references to functions, so that declaring a record imports nothing heavy.

The catalogues are read by commands that must start fast (``--help``, ``compare``), yet their records name functions
that need numpy, sympy, lm-eval or the sandbox. A record therefore holds ``lazy("<module>", "<name>")``: a function
with the target's name that imports ``<module>`` on its first call and forwards every call to ``<module>.<name>``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported on first call (an import error names the reference)."""

    def fn(*args: Any, **kwargs: Any) -> Any:
        try:
            target = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"{module}.{name} cannot be imported: {exc}") from exc
        return target(*args, **kwargs)

    fn.__qualname__ = fn.__name__ = name
    fn.__module__ = module
    fn.__doc__ = f"``{module}.{name}``, imported on first call."
    return fn
