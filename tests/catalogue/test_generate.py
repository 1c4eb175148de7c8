"""The generated files: task YAMLs, templates, groups and docs tables are the generator's output, read back as the
records, and lm-eval indexes exactly the catalogued tasks and groups."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from lm_eval_diversity.catalogue import generate as G
from lm_eval_diversity.catalogue import views
from lm_eval_diversity.catalogue.tasks import GROUP_PREFIX, get_task, task_records
from lm_eval_diversity.loader import TASK_RECORD_KEY, load_dataset_for

REPO = Path(__file__).resolve().parents[2]
TASK_DIR = REPO / "task_configs"
RECORDS = task_records()
TASKS = [r.task_name for r in RECORDS]


class _Fn(str):
    """A ``!function`` reference, kept as its dotted path."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: _Fn(loader.construct_scalar(node)))


def _yaml(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


def _resolve(ref: str) -> Any:
    module, _, attr = ref.rpartition(".")
    return getattr(__import__(module, fromlist=[attr]), attr)


def test_committed_yamls_and_docs_tables_are_the_generator_output() -> None:
    files = G.expected_files(REPO)
    stale = [str(p.relative_to(REPO)) for p in G.stale_files(files)]
    assert not stale, f"run `python -m lm_eval_diversity.catalogue.generate`; out of date: {stale}"
    # and nothing else sits in task_configs/ (a YAML left behind by a removed record would still be a task)
    on_disk = {p.name for p in TASK_DIR.glob("*.yaml")}
    assert on_disk == {p.name for p in files if p.parent.name == "task_configs"}
    assert {p.name for p in files if p.parent.name == "docs"} == {"tasks.md", "metrics.md", "settings.md"}


def test_generator_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert G.main(["--output", str(tmp_path)]) == 0
    assert G.main(["--output", str(tmp_path), "--check"]) == 0
    (tmp_path / "diversity_gsm8k.yaml").write_text("task: edited by hand\n", encoding="utf-8")
    assert G.main(["--output", str(tmp_path), "--check"]) == 1
    assert "diversity_gsm8k.yaml" in capsys.readouterr().out


def test_a_docs_file_without_its_markers_is_an_error_naming_it() -> None:
    with pytest.raises(G.GenerateError, match="docs/metrics.md: the markers"):
        G.docs_with_table("no markers here", "metric", "| x |\n", "docs/metrics.md")


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.name)
def test_the_task_yaml_reads_back_as_its_record(record) -> None:
    cfg = _yaml(TASK_DIR / f"{record.task_name}.yaml")
    assert cfg["task"] == record.task_name
    assert cfg["include"] == ("_verifiable_template.yaml" if record.graded else "_diversity_template.yaml")
    spec = record.dataset
    assert (cfg["dataset_path"], cfg["dataset_name"], cfg["test_split"]) == (spec.hf_path, spec.hf_name, spec.split)
    assert cfg["dataset_kwargs"] == {TASK_RECORD_KEY: record.name}
    # the full generation dict: include does not deep-merge, and a missing `until` would become ["\n\n"]
    assert cfg["generation_kwargs"] == {
        "until": list(record.stops), "do_sample": True, "temperature": 0.6, "top_p": 0.95,
        "max_gen_toks": record.max_gen_toks,
    }  # fmt: skip
    assert cfg.get("unsafe_code", False) is record.runs_code
    for key in ("custom_dataset", "process_docs", "doc_to_text", "doc_to_target"):
        assert isinstance(cfg[key], _Fn) and cfg[key].startswith("lm_eval_diversity."), (key, cfg[key])
    assert _resolve(cfg["custom_dataset"]) is load_dataset_for
    assert _resolve(cfg["process_docs"]) is record.process_docs
    assert _resolve(cfg["doc_to_text"]) is record.prompt and _resolve(cfg["doc_to_target"]) is record.target
    own = cfg.get("metric_list") or _yaml(TASK_DIR / cfg["include"])["metric_list"]
    assert [m["metric"] for m in own] == [e["metric"] for e in views.harness_metric_list(record.graded, record.name)]


def test_a_function_lm_eval_cannot_import_is_refused() -> None:
    record = dataclasses.replace(get_task("gsm8k"), prompt=lambda doc: "x")
    with pytest.raises(G.GenerateError, match="diversity_gsm8k prompt"):
        G.task_yaml(record)


def test_no_file_relative_function_refs() -> None:
    for path in TASK_DIR.glob("*.yaml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "!function" in line:
                assert "!function lm_eval_diversity." in line, (path.name, line)


def _groups() -> dict[str, list[str]]:
    """Group -> member tasks, from the records: every task, one group per category, the paper's verifiable six."""
    groups = {"diversity": TASKS, f"{GROUP_PREFIX}verifiable": [r.task_name for r in RECORDS if r.verifiable]}
    for r in RECORDS:
        groups.setdefault(r.category.group, []).append(r.task_name)
    return groups


@pytest.mark.parametrize("group", sorted(_groups()))
def test_group_yaml(group: str) -> None:
    cfg = _yaml(TASK_DIR / f"{group}.yaml")
    assert cfg["group"] == group and cfg["task"] == _groups()[group]
    metrics = [m["metric"] for m in cfg["aggregate_metric_list"]]
    shared = views.group_aggregate_metrics()
    # the per-input metrics defined on every task; the paper's four and the diagnostics among them
    assert {"ead", "sbert", "vendi", "nli", "dup_rate", "empty_rate", "unclosed_think_rate"} <= set(shared)
    quality = list(G.VERIFIABLE_GROUP_METRICS) if group == f"{GROUP_PREFIX}verifiable" else []
    assert metrics == [*shared, *quality]
    for entry in cfg["aggregate_metric_list"]:
        assert entry["weight_by_size"] is False and entry["filter_list"] == ["div"]


def test_every_task_is_in_exactly_one_category_group() -> None:
    categories = {g: ts for g, ts in _groups().items() if g not in ("diversity", f"{GROUP_PREFIX}verifiable")}
    assert sorted(t for ts in categories.values() for t in ts) == sorted(TASKS)


@pytest.fixture(scope="module")
def task_manager() -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASK_DIR), include_defaults=False)


def test_the_glob_matches_exactly_the_catalogued_tasks(task_manager: Any) -> None:
    assert sorted(task_manager.match_tasks(["diversity_*"])) == sorted(TASKS)
    assert set(TASKS) <= set(task_manager.all_subtasks)
    assert set(_groups()) <= set(task_manager.all_groups)
    assert not [g for g in task_manager.all_groups if g.startswith("diversity_")]
    assert not [t for t in task_manager.all_tags if t.startswith("diversity_")]
    assert not [n for n in task_manager.all_tasks if "template" in n]  # the templates are not tasks
