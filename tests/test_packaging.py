"""The built wheel ships the task YAMLs and demo data where ``TASK_DIR`` points, and the report page's assets
(regular, non-editable install)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_diversity.catalogue.tasks import task_names

pytestmark = pytest.mark.slow  # builds the wheel

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_task_configs_and_demo_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    wheel = next(tmp_path.glob("lm_eval_diversity-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    # -S: no site-packages, so the editable checkout cannot shadow the installed copy
    code = (
        "import lm_eval_diversity as d, pathlib; p = d.TASK_DIR; "
        "print(p); print(len(list(p.glob('diversity_*.yaml')))); "
        "print((pathlib.Path(d.__file__).parent / 'demo_data' / 'gsm8k' / 'test.jsonl').is_file()); "
        "import lm_eval_diversity.catalogue.tasks as c; print(len(c.task_names())); "
        "assets = pathlib.Path(d.__file__).parent / 'compare' / 'page_assets'; "
        "print(all((assets / n).stat().st_size > 500 for n in ('report.html', 'report.css', 'report.js')))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={"PYTHONPATH": str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0].startswith(str(target)), out
    assert out[1] == str(len(task_names()))
    assert out[2] == "True"
    assert out[3] == out[1], "the installed catalogue lists the installed tasks"
    assert out[4] == "True", "the report page's template, styles and script are in the wheel"
