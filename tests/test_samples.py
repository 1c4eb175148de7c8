"""Reading lm-eval ``--log_samples`` files (``samples_<task>_<timestamp>.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TIMESTAMP, samples_record, write_samples_file

from lm_eval_diversity.samples import (
    SamplesFormatError,
    find_samples_files,
    read_samples,
    read_samples_file,
    task_name_from_filename,
)

GROUPS = [(0, ["r0a", "r0b", "r0c"]), (3, ["r3a", "r3b", "r3c"]), (1, ["r1a", "", "r1c"])]


def test_reads_lm_eval_format_once_per_doc_across_pipelines(tmp_path):
    path = write_samples_file(tmp_path, "diversity_gsm8k", GROUPS, filters=("none", "strict-match"))
    lines = path.read_text().splitlines()
    assert len(lines) == 6  # one line per doc per filter pipeline, as lm-eval writes them
    assert set(json.loads(lines[0])) >= {
        "doc_id",
        "doc",
        "target",
        "arguments",
        "resps",
        "filtered_resps",
        "filter",
        "metrics",
        "doc_hash",
        "prompt_hash",
        "target_hash",
    }
    sf = read_samples_file(path)
    assert sf.task == "diversity_gsm8k"
    assert sf.n_lines == 6 and sf.n_duplicate_lines == 3
    assert [g.doc_id for g in sf.groups] == [0, 3, 1]  # file order kept
    assert [g.outputs for g in sf.groups] == [o for _, o in GROUPS]  # raw resps, not filtered_resps
    assert sf.groups[1].doc["question"] == "Question 3?"


@pytest.mark.parametrize(
    ("name", "task"),
    [
        (f"samples_diversity_gsm8k_{TIMESTAMP}.jsonl", "diversity_gsm8k"),
        (f"samples_tiny_{TIMESTAMP}.jsonl", "tiny"),
        (f"samples_a_b_c_d_{TIMESTAMP}.jsonl", "a_b_c_d"),
    ],
)
def test_task_name_from_file_name(name, task):
    assert task_name_from_filename(Path(name)) == task


def test_not_a_samples_file_name(tmp_path):
    bad = tmp_path / f"results_{TIMESTAMP}.json"
    bad.write_text("{}")
    with pytest.raises(SamplesFormatError, match="samples_<task>_<timestamp>"):
        read_samples_file(bad)


def test_malformed_json_names_file_and_line(tmp_path):
    path = write_samples_file(tmp_path, "t", GROUPS)
    lines = path.read_text().splitlines()
    lines.insert(2, '{"doc_id": 7, "resps": [["x"]')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SamplesFormatError, match=rf"{path.name}:3: malformed JSON"):
        read_samples_file(path)


def test_conflicting_duplicate_is_an_error(tmp_path):
    path = write_samples_file(tmp_path, "t", GROUPS)
    with path.open("a") as fh:
        fh.write(json.dumps(samples_record(3, ["r3a", "DIFFERENT", "r3c"], "other")) + "\n")
    with pytest.raises(SamplesFormatError, match=rf"{path.name}:4: doc_id 3 appears again with different"):
        read_samples_file(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"doc_id": 0}', "missing key"),
        ('{"doc_id": "0", "resps": [["a"]]}', "doc_id must be an integer"),
        ('{"doc_id": true, "resps": [["a"]]}', "doc_id must be an integer"),
        ('{"doc_id": 0, "resps": [[1, 2]]}', "'resps' must be"),
        ('{"doc_id": 0, "resps": "abc"}', "'resps' must be"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_records(tmp_path, line, message):
    path = tmp_path / f"samples_t_{TIMESTAMP}.jsonl"
    path.write_text("\n" + line + "\n")
    with pytest.raises(SamplesFormatError, match=rf":2: .*{message}"):
        read_samples_file(path)


def test_blank_lines_skipped_and_empty_file_rejected(tmp_path):
    path = tmp_path / f"samples_t_{TIMESTAMP}.jsonl"
    path.write_text("\n\n" + json.dumps(samples_record(5, ["a", "b"])) + "\n\n")
    sf = read_samples_file(path)
    assert [g.doc_id for g in sf.groups] == [5] and sf.n_lines == 1
    path.write_text("\n \n")
    with pytest.raises(SamplesFormatError, match="no samples"):
        read_samples_file(path)


def test_directory_search_is_recursive(tmp_path):
    a = write_samples_file(tmp_path / "model_x" / "deep", "task_a", GROUPS)
    b = write_samples_file(tmp_path / "model_x", "task_b", GROUPS[:1])
    (tmp_path / "model_x" / f"results_{TIMESTAMP}.json").write_text("{}")
    assert sorted(find_samples_files([tmp_path])) == sorted([a, b])
    out = read_samples([tmp_path])
    assert set(out) == {"task_a", "task_b"}
    assert len(out["task_a"].groups) == 3 and len(out["task_b"].groups) == 1
    # files and directories can be mixed
    assert set(read_samples([b, tmp_path / "model_x" / "deep"])) == {"task_a", "task_b"}


def test_two_files_for_one_task(tmp_path):
    write_samples_file(tmp_path / "run1", "task_a", GROUPS)
    write_samples_file(tmp_path / "run2", "task_a", GROUPS, timestamp="2026-11-26T09-30-00.000000")
    with pytest.raises(SamplesFormatError, match="two samples files for task 'task_a'"):
        read_samples([tmp_path])


def test_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_samples_files([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="--log_samples"):
        find_samples_files([tmp_path / "empty"])


def test_prompt_ending_in_think_marks_outputs_as_starting_inside_a_thought(tmp_path):
    from lm_eval_diversity.scoring import score_groups
    from lm_eval_diversity.settings import DiversitySettings

    prompts = {0: "<|user|>\nTell a story\n<|assistant|>\n<think>\n", 1: "<|user|>\nTell a story\n<|assistant|>\n"}
    path = tmp_path / f"samples_diversity_alpaca_{TIMESTAMP}.jsonl"
    with path.open("w") as fh:
        for doc_id, prompt in prompts.items():
            record = {
                "doc_id": doc_id, "doc": {}, "resps": [["plan</think>A story.", "still thinking"]],
                "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": []}}},
            }  # fmt: skip
            fh.write(json.dumps(record) + "\n")
    groups = read_samples_file(path).groups
    assert [g.think_opened for g in groups] == [True, False]
    rows = score_groups(groups, DiversitySettings(metrics=("ead",), corpus_metrics=())).per_prompt
    # doc 0: "still thinking" never closes the thought the prompt opened; doc 1's prompt opened none
    assert [r["unclosed_think_rate"] for r in rows] == [0.5, 0.0]


def test_per_doc_values_and_hashes_come_from_the_div_line(tmp_path):
    """The reader ``compare`` and a run's baseline share: numeric top-level keys are the per-doc values (None ->
    NaN, text and lists ignored), the ``div`` filter's line wins over an earlier line of the same doc."""
    path = tmp_path / f"samples_diversity_gsm8k_{TIMESTAMP}.jsonl"
    lines = [
        {"doc_id": 0, "resps": [["a", "b"]], "filter": "none", "sbert": 0.9, "doc_hash": "h0"},
        {"doc_id": 0, "resps": [["a", "b"]], "filter": "div", "sbert": 0.25, "vendi": None, "target": "7"},
        {"doc_id": 1, "resps": [["c", "d"]], "filter": "div", "sbert": 0.5, "acc": True, "doc_hash": "h1"},
        {"doc_id": 1, "resps": [["c", "d"]], "filter": "none", "sbert": 0.1, "k_correct": 2},
        {"doc_id": 2, "resps": [["e", "f"]], "filter": "none", "sbert": 0.75, "note": "text", "filtered_resps": [1]},
    ]
    path.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    sf = read_samples_file(path)
    assert set(sf.values) == {0, 1, 2}
    row0 = sf.values[0]
    assert row0["doc_id"] == 0 and row0["sbert"] == 0.25 and row0["vendi"] != row0["vendi"]  # NaN
    assert "target" not in row0 and "filter" not in row0
    assert sf.values[1] == {"doc_id": 1, "sbert": 0.5, "acc": 1.0}  # the later non-div line does not replace it
    assert sf.values[2] == {"doc_id": 2, "sbert": 0.75}
    assert sf.doc_hashes == {0: "h0", 1: "h1"}  # the div line without a hash keeps the first line's
