"""docs/extending.md followed to the letter: its blocks applied to a copy of the repository add a task, a metric and a
setting; the generator then writes the derived files, nothing else needs editing, the copy's own tests pass, and
the new task runs through lm-eval with the new metric and setting."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "extending.md"
# a block: an indented fence whose first line is "# <path>: <action>"
BLOCK = re.compile(r"^( *)```\w*\n\1# (\S+): (append|create|add to \w+)\n(.*?)^\1```", re.M | re.S)
GENERATED = re.compile(r"^(task_configs/.*\.yaml|docs/(tasks|metrics|settings)\.md)$")


def doc_steps(text: str) -> list[tuple[str, str, str]]:
    """``(path, action, body)`` of every block of the doc, in order, the body unindented by its fence's indent."""
    steps = []
    for m in BLOCK.finditer(text):
        indent, path, action, body = m.groups()
        lines = [line[len(indent) :] if line.startswith(indent) else line.lstrip(" ") for line in body.splitlines()]
        steps.append((path, action, "\n".join(lines) + "\n"))
    return steps


def _insertion_line(source: str, name: str) -> int:
    """The 0-based line before which a block ``add to <name>`` goes: the closing line of the tuple or dict assigned
    to ``name`` (the tuple iterated by a comprehension), or, in class ``name``, its first ``# ---`` section line."""
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == name:
            body = range(node.lineno, node.end_lineno or node.lineno)
            return next((i for i in body if lines[i].strip().startswith("# ---")), node.end_lineno or 0)
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            value = node.value
            if isinstance(value, (ast.DictComp, ast.ListComp, ast.SetComp)):
                value = value.generators[0].iter
            assert isinstance(value, (ast.Tuple, ast.Dict, ast.List)), f"{name}: not a literal"
            return (value.end_lineno or 0) - 1
    raise AssertionError(f"no {name} in the file")


def apply_step(root: Path, path: str, action: str, body: str) -> None:
    target = root / path
    if action == "create":
        assert not target.exists(), f"{path} exists already"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    elif action == "append":
        target.write_text(target.read_text(encoding="utf-8") + body, encoding="utf-8")
    else:
        source = target.read_text(encoding="utf-8")
        at = _insertion_line(source, action.removeprefix("add to "))
        lines = source.splitlines(keepends=True)
        target.write_text("".join([*lines[:at], body, *lines[at:]]), encoding="utf-8")


def test_the_doc_has_the_steps_of_a_task_a_metric_and_a_setting():
    steps = doc_steps(DOC.read_text(encoding="utf-8"))
    paths = [p for p, _, _ in steps]
    assert "lm_eval_diversity/catalogue/tasks.py" in paths and "lm_eval_diversity/catalogue/metrics.py" in paths
    assert "lm_eval_diversity/settings.py" in paths and "lm_eval_diversity/metrics/length.py" in paths


def test_an_insertion_point_is_found_in_a_tuple_a_comprehension_and_a_class():
    source = (
        "A = (\n    1,\n)\nB = {x: x for x in (\n    2,\n)}\nclass C:\n    a: int = 1\n    # --- run\n    b: int = 2\n"
    )
    assert [_insertion_line(source, n) for n in ("A", "B", "C")] == [2, 5, 8]


def _copy_repo(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())
    # an editable install maps lm_eval_diversity.task_configs to the checkout's task_configs/: the copy's own
    (dest / "lm_eval_diversity" / "task_configs").symlink_to(dest / "task_configs")


def _run(copy: Path, *argv: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(copy), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("LM_EVAL_DIVERSITY_DATA_DIR", None)
    return subprocess.run([sys.executable, *argv], cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)


RUN_THE_NEW_TASK = """
import json, sys
import lm_eval
from lm_eval_diversity.catalogue.tasks import get_task
from lm_eval_diversity.lm_eval_cli import task_manager
from tests.harness.fakes import GenerationOnlyLM, with_repeat_index

assert get_task("arith").dataset.hf_path is None  # local only: read from the shipped docs

def outputs(doc):  # every shipped doc has a one-digit answer g
    g = int(doc["answer"].rsplit("#### ", 1)[1])
    return (f"#### {g}", f"I think it is {g}, so\\n#### {g}", f"#### {g + 1}", "no idea")

class LM(GenerationOnlyLM):
    def generate_until(self, requests, disable_tqdm=False):
        return [outputs(r.doc)[j % 4] for r, j in with_repeat_index(requests)]

out = {}
for unit in ("words", "chars"):
    meta = {"repeats": 4, "diversity_metrics": "ead,length_cv", "length_unit": unit, "data_dir": sys.argv[1]}
    res = lm_eval.simple_evaluate(model=LM(), tasks=["diversity_arith"], limit=1, bootstrap_iters=0,
                                  task_manager=task_manager(include_defaults=False, metadata=meta))
    r = res["results"]["diversity_arith"]
    out[unit] = {"length_cv": r["length_cv,div"], "acc": r["acc,div"], "pass@4": r["pass@4,div"],
                 "recorded": res["configs"]["diversity_arith"]["metadata"]["diversity_settings"]["length_unit"]}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_following_the_doc_adds_a_task_a_metric_and_a_setting(tmp_path: Path):
    copy = tmp_path / "repo"
    _copy_repo(copy)
    steps = doc_steps(DOC.read_text(encoding="utf-8"))
    for path, action, body in steps:
        apply_step(copy, path, action, body)
    gen = _run(copy, "-m", "lm_eval_diversity.catalogue.generate")
    assert gen.returncode == 0, gen.stderr
    # nothing but the doc's files and the generated ones changed
    changed = {
        p.relative_to(copy).as_posix()
        for p in copy.rglob("*")
        if p.is_file() and ".pytest" not in p.parts and "__pycache__" not in p.parts
        and (not (REPO / p.relative_to(copy)).is_file() or (REPO / p.relative_to(copy)).read_bytes() != p.read_bytes())
    }  # fmt: skip
    named = {p for p, _, _ in steps}
    assert named <= changed
    assert {p for p in changed if not GENERATED.match(p)} == {p for p in named if not GENERATED.match(p)}
    assert {"task_configs/diversity_arith.yaml", "task_configs/div_reasoning.yaml", "docs/settings.md"} <= changed
    # the copy's own tests, pins included, pass with no other edit
    tests = _run(
        copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", "tests/catalogue",
        "tests/test_settings.py", "tests/metrics/test_length.py", "tests/test_architecture.py",
        "tests/test_loader.py", "tests/harness/test_task_manager.py", timeout=1800,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    # the fake-LM run of every task, the new one included (slow by itself: one lm-eval run of all the tasks)
    fake = _run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/harness/test_fake_lm.py", timeout=1800)
    assert fake.returncode == 0, fake.stdout[-4000:] + fake.stderr[-2000:]
    # the new task through lm-eval, graded, with the new metric in both units
    run = _run(copy, "-c", RUN_THE_NEW_TASK, str(copy / "lm_eval_diversity" / "demo_data"))
    assert run.returncode == 0, run.stderr[-4000:]
    values = json.loads(run.stdout.strip().splitlines()[-1])
    # outputs "#### g", "I think it is g, so\n#### g", "#### g+1", "no idea" (g one digit): words 2, 8, 2, 2 (mean
    # 3.5, population std sqrt(6.75)); characters 6, 26, 6, 7 (mean 11.25, std sqrt(72.6875))
    assert values["words"]["length_cv"] == pytest.approx(6.75**0.5 / 3.5)
    assert values["chars"]["length_cv"] == pytest.approx(72.6875**0.5 / 11.25)
    assert values["words"]["recorded"] == "words" and values["chars"]["recorded"] == "chars"
    assert values["words"]["acc"] == 1.0 and values["words"]["pass@4"] == 1.0
