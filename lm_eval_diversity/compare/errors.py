"""The error of ``compare``'s bad input."""

from __future__ import annotations


class CompareError(ValueError):
    """Bad input for ``compare`` (exit code 2); the message names the path or option at fault."""
