"""Start-up: the CLI paths that need no model load neither torch nor numpy nor our lm-eval glue."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "sentence_transformers", "transformers", "lm_eval_diversity.harness")


def _modules_after(argv: list[str]) -> tuple[int, list[str], str]:
    code = (
        "import json, sys\n"
        "from lm_eval_diversity.cli import main\n"
        f"rc = main({argv!r})\n"
        f"print(json.dumps([rc, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rc, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    return rc, loaded, proc.stdout


def test_compare_help_imports_nothing_heavy():
    rc, loaded, out = _modules_after(["compare", "--help"])
    assert rc == 0 and "--baseline" in out
    assert loaded == []


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["ls", "--help"]])
def test_lm_eval_help_skips_our_task_glue(argv):
    rc, loaded, out = _modules_after(argv)
    assert rc == 0 and "usage:" in out
    assert "lm_eval_diversity.harness" not in loaded and "torch" not in loaded


def test_judge_help_imports_nothing_heavy():
    rc, loaded, out = _modules_after(["judge", "--help"])
    assert rc == 0 and "--judge_model" in out and "--estimate" in out
    assert loaded == []
