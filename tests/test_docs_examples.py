"""Every ``lm_eval`` / ``lm-eval-diversity`` command in README.md and docs/*.md parses with the real parsers.

Shell blocks are extracted, continuation lines joined, and each command's arguments are parsed by the parser that
would run it (lm-eval's own ``run``/``ls``/``validate`` parsers with our flags split off, ``score``, ``compare``),
so an unknown or misspelt flag, a deprecated spelling, or a run of code tasks without ``--confirm_run_unsafe_code``
(lm-eval exits 2 on it) fails here. ``--help`` examples are executed, and ``compare`` examples run for real on
small runs written under the paths they name.
"""

from __future__ import annotations

import ast
import re
import shlex
import textwrap
from pathlib import Path

import pytest

from lm_eval_diversity.cli import DEPRECATED_FLAGS, OWN_COMMANDS, build_score_parser, main
from lm_eval_diversity.command import split_own_flags
from lm_eval_diversity.compare import build_parser as build_compare_parser
from lm_eval_diversity.lm_eval_cli import build_cli

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CODE_TASKS = re.compile(r"^(diversity|diversity_\*|div_code|diversity_humaneval|diversity_mbpp)$")


def _commands(path: Path) -> list[tuple[str, list[str]]]:
    """(where, argv) of every lm_eval / lm-eval-diversity command in the file's shell and YAML ``run:`` blocks."""
    text = path.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```(?:bash|sh|yaml)?\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"^\s*(-\s*)?(run:\s*)?(\|\s*)?", "", line.split(" #")[0]).strip()
            line = line.split(" | ")[0].split(" >> ")[0].split(" > ")[0]
            if not re.match(r"^(lm_eval|lm-eval-diversity)\b", line) or "[--" in line:
                continue  # not a command, or a usage synopsis
            line = re.sub(r"\$\{\{\s*[\w.]+\s*\}\}", "X", line)  # CI template variables
            argv: list[str] = []
            for arg in shlex.split(line):
                if arg == "...":  # a placeholder: a value for the flag before it, else nothing
                    if argv and argv[-1] == "--model_args":
                        argv.append("pretrained=X")
                    continue
                argv.append(arg)
            out.append((f"{path.name}: {line[:80]}", argv))
    return out


ALL = [c for p in DOCS for c in _commands(p)]


def test_docs_have_commands():
    assert len(ALL) >= 12, [w for w, _ in ALL]


@pytest.mark.parametrize(("where", "argv"), ALL, ids=[w for w, _ in ALL])
def test_documented_command_parses(where, argv, capsys, tmp_path, monkeypatch):
    prog, args = argv[0], argv[1:]
    assert not set(a.split("=")[0] for a in args) & (set(DEPRECATED_FLAGS) if args[:1] == ["score"] else set())
    if "--help" in args or "-h" in args or not args:
        assert main(args or ["--help"]) == 0
        return
    if prog == "lm-eval-diversity" and args[0] in OWN_COMMANDS:
        if args[0] == "score":
            build_score_parser().parse_args(args[1:])
        elif args[0] == "compare":
            _run_compare_example(args[1:], tmp_path, monkeypatch)
        elif args[0] == "sweep":
            from lm_eval_diversity.sweep import build_parser as build_sweep_parser

            build_sweep_parser().parse_args(args[1:])
        elif args[0] == "judge":
            from lm_eval_diversity.judge.cli import build_parser as build_judge_parser

            build_judge_parser().parse_args(args[1:])
        return
    rest, _ = split_own_flags(args) if prog == "lm-eval-diversity" else (args, {})
    cli = build_cli(OWN_COMMANDS)
    if rest[0] not in ("run", "ls", "validate"):
        rest = ["run", *rest]
    parsed = cli._parser.parse_args(rest)
    tasks = getattr(parsed, "tasks", None) or []
    tasks = [t for item in ([tasks] if isinstance(tasks, str) else tasks) for t in item.split(",")]
    if rest[0] == "run" and any(CODE_TASKS.match(t) for t in tasks):
        confirmed = getattr(parsed, "confirm_run_unsafe_code", False)  # lm-eval leaves it out when absent
        assert confirmed, f"{where}: code tasks need --confirm_run_unsafe_code (lm-eval exits 2)"


def _run_compare_example(args: list[str], tmp_path: Path, monkeypatch) -> None:
    """Run a documented ``compare`` command in a scratch directory holding a small run at every path it names."""
    from lm_eval_diversity.compare import run_compare
    from tests.compare.test_compare import BASE_GSM, write_run

    parsed = build_compare_parser().parse_args(args)
    monkeypatch.chdir(tmp_path)
    for path in {*parsed.runs, *([parsed.baseline] if parsed.baseline else [])}:
        if not Path(path).exists():
            write_run(Path(path), Path(path).name, {"diversity_gsm8k": BASE_GSM})
    # identical runs: every gate passes, --strict finds nothing to refuse
    assert run_compare([*args, "--bootstrap_iters", "50"]) == 0
    if parsed.output:
        assert Path(parsed.output).stat().st_size > 0


def _names_in(source: str) -> set[str]:
    """Every name a Python source defines or imports (modules, classes, functions, their arguments, assignments,
    fields, imported names) and its string constants. A fragment (an item of a tuple, a field of a class) is read
    as what it goes into."""
    source = textwrap.dedent(source)
    as_class = "class _:\n" + textwrap.indent(source, "    ")
    for wrapped in (source, f"_ = (\n{source}\n)", f"_ = {{\n{source}\n}}", as_class):
        try:
            tree = ast.parse(wrapped)
            break
        except SyntaxError:
            continue
    else:
        raise AssertionError(f"not Python: {source[:80]!r}")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[-1])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    return names


def _defined_names(doc_text: str) -> set[str]:
    """What a name cited by docs/extending.md may be: a name of the package or its tests, a key of the task YAMLs
    (lm-eval's), an action of the doc's blocks, or a name the doc's own worked example defines."""
    from tests.catalogue.test_extending_doc import doc_steps

    names: set[str] = set()
    for path in [*(REPO / "lm_eval_diversity").rglob("*.py"), *(REPO / "tests").rglob("*.py")]:
        names.add(path.stem)
        names |= _names_in(path.read_text(encoding="utf-8"))
    for path in (REPO / "task_configs").glob("*.yaml"):
        names |= set(re.findall(r"^(\w+):", path.read_text(encoding="utf-8"), re.M))
    for path, action, body in doc_steps(doc_text):
        names.add(action)
        if path.endswith(".py"):
            names |= _names_in(body)
    return names


def _cited_path_exists(part: str, names: set[str]) -> bool:
    """A path from the repository or the package root, a module named by its file name in the module map, or the
    task YAML the generator writes for the doc's example task."""
    if any((base / part).exists() for base in (REPO, REPO / "lm_eval_diversity")):
        return True
    if "/" not in part and any((REPO / "lm_eval_diversity").rglob(part)):
        return True
    m = re.fullmatch(r"task_configs/diversity_(\w+)\.yaml", part)
    return bool(m and m.group(1) in names)


def test_extending_guide_names_exist():
    """Every file path and Python name that docs/extending.md cites in backticks exists (placeholders skipped)."""
    text = (REPO / "docs" / "extending.md").read_text(encoding="utf-8")
    defined = _defined_names(text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # the blocks themselves are applied by test_extending_doc
    missing = []
    for span in re.findall(r"`([^`\n]+)`", text):
        if "<" in span or " " in span:
            continue  # a placeholder or a command line
        for part in (p.strip() for p in span.split(",")):
            if "/" in part or re.search(r"\.(py|md|yaml)$", part):
                if not _cited_path_exists(part, defined):
                    missing.append(part)
            elif m := re.fullmatch(r"([A-Za-z_]\w*)(\(.*\))?", part):
                if m.group(1) not in defined:
                    missing.append(part)
    assert not missing, f"docs/extending.md cites names that do not exist: {missing}"
