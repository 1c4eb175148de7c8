"""The real tasks as lm-eval's TaskManager builds them from the committed YAMLs: the reference's prompt subset of the
real data, the record's prompts and generation settings, the `max_docs` setting, groups without duplicates."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pytest

from lm_eval_diversity import loader as L
from lm_eval_diversity.catalogue.tasks import get_task, task_records

REPO = Path(__file__).resolve().parents[2]
TASK_DIR = REPO / "task_configs"
TASKS = [r.task_name for r in task_records()]


def _data_dirs() -> list[str]:
    shared = [c for c in (REPO / "shared" / "data", REPO.parent / "shared" / "data") if c.is_dir()][:1]
    return [*map(str, shared), str(L.DEMO_DATA_DIR)]


def _build(tasks: list[str], **metadata: Any) -> dict[str, Any]:
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(L.DATA_DIR_ENV, os.pathsep.join(_data_dirs()))
        for var in ("LM_EVAL_DIVERSITY_MAX_DOCS", "LM_EVAL_DIVERSITY_REPEATS"):
            mp.delenv(var, raising=False)
        tm = TaskManager(include_path=str(TASK_DIR), include_defaults=False, metadata=metadata or None)
        return tm.load(tm.match_tasks(tasks) if "*" in tasks[0] else tasks)


@pytest.fixture(scope="module")
def built() -> Iterator[dict[str, Any]]:
    yield _build(["diversity_*"])["tasks"]


def _raw_split(task: str) -> datasets.Dataset:
    path = L.find_local_file(get_task(task).dataset, [Path(d) for d in _data_dirs()])
    assert path is not None
    return L.read_jsonl(path)


def test_built_tasks_are_the_catalogued_ones(built: dict[str, Any]) -> None:
    assert sorted(built) == sorted(TASKS)


@pytest.mark.parametrize("record", task_records(), ids=lambda r: r.name)
def test_built_task(built: dict[str, Any], record) -> None:
    obj = built[record.task_name]
    docs = list(obj.eval_docs)
    # the record's selection of its data (PRISM: filtered first), which tests/test_selection.py derives independently
    kept = record.process_docs(_raw_split(record.name))
    assert [d["split_index"] for d in docs] == kept["split_index"] and docs
    assert obj.config.repeats == 16 and obj.config.output_type == "generate_until"
    gk = obj.config.generation_kwargs
    assert gk["until"] == list(record.stops)
    assert (gk["do_sample"], gk["temperature"], gk["top_p"], gk["max_gen_toks"]) == (True, 0.6, 0.95,
                                                                                    record.max_gen_toks)  # fmt: skip
    for doc in docs[:20]:
        text = obj.doc_to_text(doc)
        # prompt_format lighteval (the default): the template stripped, and "\n\n" before it without a chat
        # template, as lighteval's prompt manager builds the request (docs/tasks.md, "Prompt format")
        assert text == record.prompt(doc).strip() and obj.doc_to_target(doc) == record.target(doc)
        assert obj.fewshot_context(doc, num_fewshot=0) == "\n\n" + text
        chat = obj.fewshot_context(doc, 0, apply_chat_template=True, chat_template=_user_turn)
        assert chat == f"<user>{text}</user>"  # with a chat template: the stripped query, no blank line


def _user_turn(messages: list[dict], add_generation_prompt: bool = True) -> str:
    """A minimal chat template: each message's content between role tags."""
    return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)


def test_prompt_format_plain_sends_the_template_unchanged() -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LM_EVAL_DIVERSITY_PROMPT_FORMAT", "plain")
        obj = _build(["diversity_mbpp"])["tasks"]["diversity_mbpp"]
    doc = next(iter(obj.eval_docs))
    # lm-eval 0.4.13 passes the zero-shot plain-text context through unchanged (no strip): MBPP keeps its closing
    # newline
    assert obj.doc_to_text(doc) == get_task("mbpp").prompt(doc) == obj.fewshot_context(doc, num_fewshot=0)
    assert obj.doc_to_text(doc).endswith('"""\n')
    assert obj.config.metadata["diversity_settings"]["prompt_format"] == "plain"


def test_the_max_docs_setting_keeps_a_prefix_of_the_subset(built: dict[str, Any]) -> None:
    full = [d["split_index"] for d in built["diversity_gsm8k"].eval_docs]
    small = _build(["diversity_gsm8k"], max_docs=3)["tasks"]["diversity_gsm8k"]
    assert [d["split_index"] for d in small.eval_docs] == full[:3]
    assert small.config.metadata["max_docs"] == 3


def test_groups_build_without_duplicates() -> None:
    loaded = _build(["diversity"])
    assert sorted(loaded["tasks"]) == sorted(TASKS)
    assert loaded["group_map"] == {"diversity": TASKS}
