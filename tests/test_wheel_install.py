"""A regular (non-editable) wheel install: plain ``lm_eval`` lists and runs the tasks with no flag and no wrapper.

The fresh venv holds its own lm-eval (installed from the local pip cache, same version as the dev venv) and the
built wheel, both ``--no-deps``; a ``.pth`` file appends the dev venv's site-packages *after* its own, for the heavy
third-party dependencies only (torch, datasets...). Directories added by a ``.pth`` line have their own ``.pth``
files ignored, so the dev venv's editable install of this package is not active there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from importlib import metadata
from pathlib import Path

import pytest

from lm_eval_diversity.catalogue.tasks import task_records

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "lm_eval_diversity" / "demo_data"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _pip(*args: str, python: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel_install")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(root / "dist")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((root / "dist").glob("lm_eval_diversity-*.whl"))
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    lm_eval_version = metadata.version("lm-eval")
    proc = _pip("install", "--no-deps", "-q", f"lm-eval=={lm_eval_version}", python=python)
    if proc.returncode != 0:
        pytest.skip(f"lm-eval=={lm_eval_version} not installable offline from the pip cache: {proc.stderr[-500:]}")
    proc = _pip("install", "--no-deps", "-q", str(wheel), python=python)
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    (site / "_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def _run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LM_EVAL_DIVERSITY_", "PYTHONPATH"))}
    proc = subprocess.run(
        [str(env_dir / "bin" / "python"), *args], env={**env, **OFFLINE}, cwd=cwd, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    return proc


@pytest.mark.slow
def test_plain_lm_eval_finds_and_runs_the_tasks_after_a_wheel_install(fresh_venv, tmp_path):
    where = _run(
        fresh_venv,
        "-c",
        "import lm_eval, lm_eval_diversity as d; print(lm_eval.__file__); print(d.TASK_DIR); print(d.TASKS_DISCOVERED)",
        cwd=tmp_path,
    ).stdout.split()
    assert where[0].startswith(str(fresh_venv)), "lm-eval must come from the fresh venv, not the dev one"
    assert where[1].startswith(str(fresh_venv)) and where[1].endswith("lm_eval/tasks/diversity")
    assert where[2] == "True"

    listing = _run(fresh_venv, "-m", "lm_eval", "ls", "tasks", cwd=tmp_path).stdout
    names = {cell.strip() for line in listing.splitlines() for cell in line.split("|")[1:2]}
    tasks = {n for n in names if n.startswith("diversity_")}
    groups = {n for n in names if n == "diversity" or n.startswith("div_")}
    assert len(tasks) == len(task_records()), sorted(tasks)
    assert len(groups) == len({r.category for r in task_records()}) + 2, sorted(groups)  # + all, verifiable
    assert listing.count("|diversity_gsm8k ") == 1, "each task is listed once"

    out = tmp_path / "out"
    meta = {"repeats": 2, "metrics": "ead", "data_dir": str(DEMO_DATA)}
    run = _run(
        fresh_venv, "-m", "lm_eval", "--model", "dummy", "--tasks", "diversity_gsm8k", "--limit", "2",
        "--metadata", json.dumps(meta), "--output_path", str(out), "--log_samples", cwd=tmp_path,
    )  # fmt: skip
    assert "overrides existing task" not in run.stderr, "a task was registered twice"
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text(), parse_constant=_refuse)  # strict JSON: no NaN / Infinity
    r = results["results"]["diversity_gsm8k"]
    metrics = {k.split(",")[0] for k in r if "," in k and "_stderr" not in k}
    # K=2, EAD only: no sbert/vendi/nli rows, pass@k for k <= 2 (1 and K), no split without a baseline
    assert metrics == {
        "ead", "ead_across_input", "ead_overall", "dup_rate", "empty_rate", "unclosed_think_rate",
        "acc", "pass@1", "pass@2", "maj@K", "k_correct",
    }  # fmt: skip
    assert all(isinstance(r[f"{m},div"], float) for m in metrics)
    assert results["configs"]["diversity_gsm8k"]["repeats"] == 2
    assert results["configs"]["diversity_gsm8k"]["metadata"]["diversity_settings"]["metrics"] == ["ead"]
    for line in next(out.rglob("samples_diversity_gsm8k_*.jsonl")).read_text().splitlines():
        sample = json.loads(line, parse_constant=_refuse)
        assert len(sample["resps"][0]) == 2 and isinstance(sample["ead"], float)


def _refuse(token: str):
    raise ValueError(f"non-standard JSON constant {token}")


@pytest.mark.slow
def test_plain_lm_eval_refuses_before_generation_when_a_grader_library_is_missing(fresh_venv, tmp_path):
    """The wheel installed as ``pip install --no-deps`` leaves it, without math-verify: plain ``lm_eval`` on a maths
    task stops before the first request, in one line naming what to install (not after generating)."""
    blocker = tmp_path / "hide" / "math_verify"
    blocker.mkdir(parents=True)
    hide = "raise ModuleNotFoundError(\"No module named 'math_verify'\", name='math_verify')\n"
    (blocker / "__init__.py").write_text(hide)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LM_EVAL_DIVERSITY_")}
    env.update(OFFLINE, PYTHONPATH=str(blocker.parent))  # found first: the import fails as for a missing package
    out = tmp_path / "out"
    meta = {"repeats": 2, "metrics": "ead", "data_dir": str(DEMO_DATA)}
    proc = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-m", "lm_eval", "--model", "dummy", "--tasks", "diversity_gsm8k",
         "--limit", "2", "--metadata", json.dumps(meta), "--output_path", str(out), "--log_samples"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "lm_eval: error: grading diversity_gsm8k needs math-verify" in proc.stderr, proc.stderr[-3000:]
    assert "pip install math-verify" in proc.stderr and "Traceback" not in proc.stderr
    assert "Running generate_until requests" not in proc.stderr
    assert not out.exists()
