"""The project's list of bad inputs: each must end with a clear one-line error (no traceback) that names the file and
line, flag, key or value at fault, the documented exit code, and the previous output left exactly as it was.

Every case writes a "previous output" first and checks it byte for byte afterwards.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import TIMESTAMP, gold_format, program_format, write_samples_file

from lm_eval_diversity import cli
from lm_eval_diversity.atomic import write_atomic
from lm_eval_diversity.compare import run_compare
from lm_eval_diversity.quality.code import grade_code_task

BAD_UTF8 = b'\n{"doc_id": 0, "resps": [["\xff\xfe"]]}\n'  # line 2 is not UTF-8
LONE_SURROGATE = b'{"doc_id": 0, "resps": [["a \\ud800 b", "c"]]}\n'
PREVIOUS = '{"previous": "output"}\n'
FAST = ["--metrics", "ead", "--corpus_metrics", "ead", "--device", "cpu"]


@dataclass
class Env:
    tmp: Path
    samples: Path
    out: Path

    def score(self, *extra: str, paths: list[str] | None = None, out: Path | None = None) -> list[str]:
        return ["score", *(paths or [str(self.samples)]), "--output_path", str(out or self.out), *FAST, *extra]


def _score_json(path: Path, rows: list[dict]) -> Path:
    data = {
        "settings": {"sbert_model": "m", "seed": 1234, "vocab_size": 50257},
        "tasks": {
            "diversity_gsm8k": {
                "n_prompts": len(rows),
                "k": 4,
                "metrics": {"sbert": {"per_input_mean": 0.5, "across_input": None, "overall": None}},
                "per_prompt": rows,
            }
        },
    }
    path.write_text(json.dumps(data))
    return path


def _results_json(path: Path, results: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": results, "model_name": "m"}))
    return path


@pytest.fixture
def env(tmp_path: Path) -> Env:
    samples = write_samples_file(tmp_path / "run", "diversity_demo", [(0, ["a b", "c d"]), (1, ["x", "y z"])])
    out = tmp_path / "out" / "scores.json"
    out.parent.mkdir()
    out.write_text(PREVIOUS)
    return Env(tmp_path, samples, out)


def _run(argv: list[str]) -> int:
    if argv[0] == "compare":
        return run_compare(argv[1:])
    if argv[0] == "demo":
        from lm_eval_diversity.demo import run_demo

        return run_demo(argv[1:])
    return cli.main(argv)


# name -> (builds argv from the env, expected exit code, text the message must contain, file that must not change)
CASES: dict[str, Callable[[Env], tuple[list[str], int, str, Path | None]]] = {
    "code_timeout_zero": lambda e: (e.score("--code_timeout", "0"), 2, "--code_timeout", e.out),
    "code_timeout_negative": lambda e: (e.score("--code_timeout", "-3"), 2, "--code_timeout", e.out),
    "code_timeout_nan": lambda e: (e.score("--code_timeout", "nan"), 2, "--code_timeout", e.out),
    "code_timeout_inf": lambda e: (e.score("--code_timeout", "inf"), 2, "--code_timeout", e.out),
    "seed_negative": lambda e: (e.score("--seed", "-1"), 2, "--seed", e.out),
    "seed_too_large": lambda e: (e.score("--seed", str(2**40)), 2, "--seed", e.out),
    "metrics_empty": lambda e: ([*e.score(), "--metrics", ""], 2, "--metrics", e.out),
    "metrics_unknown": lambda e: ([*e.score(), "--metrics", "bogus"], 2, "--metrics", e.out),
    "output_is_the_samples_file": lambda e: (e.score(out=e.samples), 2, "--output_path", e.samples),
    "output_is_a_directory": lambda e: (e.score(out=e.out.parent), 2, "--output_path", e.out),
    "name_without_timestamp": lambda e: (
        e.score(paths=[str(_copy(e.samples, e.tmp / "samples_diversity_humaneval.jsonl"))]),
        2,
        "samples_diversity_humaneval.jsonl: not an lm-eval samples file name",
        e.out,
    ),
    "fifo_named_like_samples": lambda e: (
        e.score(paths=[str(_fifo(e.tmp / f"samples_diversity_x_{TIMESTAMP}.jsonl"))]),
        2,
        "not a regular file",
        e.out,
    ),
    "invalid_utf8": lambda e: (
        e.score(paths=[str(_bytes(e.tmp / "bad" / f"samples_t_{TIMESTAMP}.jsonl", BAD_UTF8))]),
        2,
        f"samples_t_{TIMESTAMP}.jsonl:2: invalid UTF-8",
        e.out,
    ),
    "malformed_json_line": lambda e: (
        e.score(paths=[str(_bytes(e.tmp / "bad" / f"samples_t_{TIMESTAMP}.jsonl", b'{"doc_id": 0, \n'))]),
        2,
        f"samples_t_{TIMESTAMP}.jsonl:1: malformed JSON",
        e.out,
    ),
    "lone_surrogate_in_response": lambda e: (
        e.score(paths=[str(_bytes(e.tmp / "bad" / f"samples_t_{TIMESTAMP}.jsonl", LONE_SURROGATE))]),
        2,
        f"samples_t_{TIMESTAMP}.jsonl:1: response 0 holds a lone surrogate",
        e.out,
    ),
    "missing_input": lambda e: (e.score(paths=[str(e.tmp / "nope")]), 2, "nope: no such file", e.out),
    "compare_metrics_bogus": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])), "--metrics", "bogus",
         "--output", str(e.out)],
        2, "--metrics: bogus", e.out,
    ),  # fmt: skip
    "compare_gate_inf": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])),
         str(_score_json(e.tmp / "b.json", [{"doc_id": 0, "sbert": 0.4}])), "--fail_if_drop", "sbert=inf",
         "--output", str(e.out)],
        2, "--fail_if_drop 'sbert=inf'", e.out,
    ),  # fmt: skip
    "compare_gate_nan": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])),
         str(_score_json(e.tmp / "b.json", [{"doc_id": 0, "sbert": 0.4}])), "--fail_if_drop", "sbert=nan",
         "--output", str(e.out)],
        2, "--fail_if_drop 'sbert=nan'", e.out,
    ),  # fmt: skip
    "compare_bootstrap_iters_huge": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])), "--bootstrap_iters",
         "100000000", "--output", str(e.out)],
        2, "--bootstrap_iters 100000000", e.out,
    ),  # fmt: skip
    "compare_output_is_an_input": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])), "--output",
         str(e.tmp / "a.json")],
        2, "--output", e.tmp / "a.json",
    ),  # fmt: skip
    "compare_results_null": lambda e: (
        ["compare", str(_results_json(e.tmp / "r" / f"results_{TIMESTAMP}.json", None)), "--output", str(e.out)],
        2, "key 'results' must be an object", e.out,
    ),  # fmt: skip
    "compare_results_entry_not_object": lambda e: (
        ["compare", str(_results_json(e.tmp / "r" / f"results_{TIMESTAMP}.json", {"t": 3})), "--output",
         str(e.out)],
        2, "results['t'] must be an object", e.out,
    ),  # fmt: skip
    "compare_duplicate_doc_ids": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}, {"doc_id": 0, "sbert": 0.1}])),
         "--output", str(e.out)],
        2, "per_prompt[1]: duplicate doc_id 0", e.out,
    ),  # fmt: skip
    "compare_output_is_a_directory": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])), "--output",
         str(e.out.parent)],
        2, "--output", e.out,
    ),  # fmt: skip
    # ---- settings: every bad value named as typed, before any work
    "corpus_sample_size_zero": lambda e: (e.score("--corpus_sample_size", "0"), 2, "--corpus_sample_size=0", e.out),
    "nli_max_sentences_zero": lambda e: (e.score("--nli_max_sentences", "0"), 2, "--nli_max_sentences=0", e.out),
    "nli_max_length_negative": lambda e: (e.score("--nli_max_length", "-5"), 2, "--nli_max_length=-5", e.out),
    "seed_negative_names_the_flag": lambda e: (e.score("--diversity_seed", "-1"), 2, "--diversity_seed=-1", e.out),
    "metric_device_toaster": lambda e: (e.score("--metric_device", "toaster"), 2, "--metric_device='toaster'", e.out),
    "metric_device_missing_gpu": lambda e: (e.score("--metric_device", "cuda:7"), 2, "--metric_device='cuda:7'",
                                            e.out),  # fmt: skip
    "metrics_repeated": lambda e: ([*e.score(), "--metrics", "ead,ead"], 2, "ead given more than once", e.out),
    "corpus_metric_that_does_not_run": lambda e: (
        [*e.score(), "--corpus_metrics", "sbert"], 2, "--corpus_metrics: sbert not among the metrics", e.out),
    # ---- inputs: a malformed record is named by file and line
    "doc_that_is_a_string": lambda e: (
        e.score(paths=[str(_samples(e.tmp / "s1", "diversity_gsm8k", {"doc": "What is 2+2? #### 4"}))]),
        2, f"samples_diversity_gsm8k_{TIMESTAMP}.jsonl:1: key 'doc' must be an object, got str", e.out,
    ),  # fmt: skip
    "gsm8k_doc_without_gold": lambda e: (
        e.score(paths=[str(_samples(e.tmp / "s2", "diversity_gsm8k", {"doc": {"question": "2+2?", "answer": 4}}))]),
        2, "gsm8k doc 0: key 'answer' has no gold answer", e.out,
    ),  # fmt: skip
    # ---- outputs: never a special file, never an empty path, never under a file
    "output_path_empty": lambda e: ([*e.score(), "--output_path", ""], 2, "--output_path: empty path", e.out),
    "output_path_is_a_fifo": lambda e: (e.score(out=_fifo(e.tmp / "pipe.json")), 2, "not a regular file",
                                        e.tmp / "pipe.json"),  # fmt: skip
    "output_path_is_a_device": lambda e: (e.score(out=_device(e.tmp)), 2, "not a regular file", _device(e.tmp)),
    "output_path_under_a_file": lambda e: (e.score(out=e.out / "x.json"), 2, f"{e.out} is not a directory", e.out),
    "compare_output_is_a_fifo": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])), "--output",
         str(_fifo(e.tmp / "report.fifo"))],
        2, "--output", e.tmp / "report.fifo",
    ),  # fmt: skip
    "compare_plot_is_a_device": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])),
         str(_score_json(e.tmp / "b.json", [{"doc_id": 0, "sbert": 0.4}])), "--plot", str(_device(e.tmp)),
         "--output", str(e.out)],
        2, f"--plot {_device(e.tmp)}: not a regular file", _device(e.tmp),
    ),  # fmt: skip
    "compare_output_empty": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])), "--output", ""],
        2, "--output: empty path", None,
    ),  # fmt: skip
    # ---- compare: what would be misread is refused
    "compare_labels_repeated": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])),
         str(_score_json(e.tmp / "b.json", [{"doc_id": 0, "sbert": 0.4}])), "--labels", "run,run", "--output",
         str(e.out)],
        2, "--labels 'run,run' repeats 'run'", e.out,
    ),  # fmt: skip
    "compare_per_prompt_value_is_a_string": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": "0.5"}])), "--output", str(e.out)],
        2, "per_prompt[0].sbert: expected a number or null, got str", e.out,
    ),  # fmt: skip
    "compare_seed_negative": lambda e: (
        ["compare", str(_score_json(e.tmp / "a.json", [{"doc_id": 0, "sbert": 0.5}])),
         str(_score_json(e.tmp / "b.json", [{"doc_id": 0, "sbert": 0.4}])), "--seed", "-1", "--output", str(e.out)],
        2, "--seed -1", e.out,
    ),  # fmt: skip
    # ---- demo: refused before minutes of generation
    "demo_output_path_is_a_file": lambda e: (["demo", "--output_path", str(e.out)], 2, "--output_path", e.out),
    "demo_repeats_zero": lambda e: (["demo", "--repeats", "0", "--output_path", str(e.tmp / "demo")], 2,
                                    "--repeats 0", None),  # fmt: skip
}


def _samples(directory: Path, task: str, changes: dict) -> Path:
    """A samples file of ``task`` with one line, lm-eval's layout with ``changes`` applied."""
    from helpers import samples_record

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"samples_{task}_{TIMESTAMP}.jsonl"
    path.write_text(json.dumps({**samples_record(0, ["#### 4", "#### 5"]), **changes}) + "\n")
    return path


def _device(directory: Path) -> Path:
    """A character device to name as an output: as root a private copy of /dev/null (the test must not risk the
    real one), else /dev/null itself (a user cannot replace it anyway)."""
    if os.geteuid() != 0:
        return Path(os.devnull)
    node = directory / "null"
    if not node.exists():
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return node


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_cleanly(name: str, env: Env, capsys: pytest.CaptureFixture) -> None:
    argv, code, where, keep = CASES[name](env)
    before = keep.read_bytes() if keep is not None and keep.is_file() else None
    kind = stat.S_IFMT(keep.stat().st_mode) if keep is not None and keep.exists() else None
    rc = _run(argv)
    err = capsys.readouterr().err
    assert rc == code, err
    assert where in err, err
    assert "Traceback" not in err
    assert "error:" in err
    if keep is not None and before is not None:
        assert keep.read_bytes() == before, f"{keep} changed"
    if kind is not None:
        assert stat.S_IFMT(keep.stat().st_mode) == kind, f"{keep} was replaced by another kind of file"
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode), f"{os.devnull} is no longer a device"


def test_a_fifo_inside_a_directory_is_skipped_not_read(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    os.mkfifo(env.samples.parent / f"samples_diversity_pipe_{TIMESTAMP}.jsonl")
    rc = cli.main(env.score(paths=[str(env.samples.parent)]))
    assert rc == 0
    assert "samples_diversity_pipe" in caplog.text and "not a regular file; skipped" in caplog.text
    assert set(json.loads(env.out.read_text())["tasks"]) == {"diversity_demo"}


def test_ctrl_c_exits_130_with_one_line_and_keeps_the_output(
    env: Env, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lm_eval_diversity.scoring as scoring

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring, "score_task", interrupted)
    rc = cli.main(env.score())
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 130
    assert err[-1] == "lm-eval-diversity score: interrupted; no output written"
    assert "Traceback" not in "\n".join(err)
    assert env.out.read_text() == PREVIOUS


def test_interrupted_or_failed_write_leaves_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.json"
    target.write_text(PREVIOUS)

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as info:
        write_atomic(target, "x" * 10_000)
    assert info.value.filename == str(target)
    assert target.read_text() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary file left behind


def test_atomic_write_replaces_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    write_atomic(target, "one")
    target.chmod(0o640)
    write_atomic(target, b"two")
    assert target.read_text() == "two"
    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"task_id": "HumanEval/7", "prompt": "def f():\n", "test": "def check(c):\n    pass\n"}, "'entry_point'"),
        ({"prompt": "def f():\n", "entry_point": "f", "test": ""}, "'test'"),
        ("not a doc", "expected an object"),
    ],
)
def test_humaneval_doc_without_required_keys_is_named(doc: object, where: str) -> None:
    with pytest.raises(ValueError, match=r"humaneval doc 0") as info:
        grade_code_task(
            program_format("humaneval"), [doc], [["    return 1\n"]], allow_execution=True, label="humaneval"
        )
    assert where in str(info.value)


def test_ifeval_doc_without_instructions_is_refused_not_passed() -> None:
    from lm_eval_diversity.quality.ifeval import grade_ifeval

    with pytest.raises(ValueError, match=r"key=1001: 'instruction_id_list' is missing or empty"):
        grade_ifeval({"key": 1001, "prompt": "Write.", "instruction_id_list": [], "kwargs": []}, ["anything"])


def test_no_responses_give_undefined_corpus_diversity_not_zero() -> None:
    import math

    from lm_eval_diversity.scoring import PromptGroup, score_groups
    from lm_eval_diversity.settings import DiversitySettings

    scores = score_groups(
        [PromptGroup(doc_id=0, outputs=[]), PromptGroup(doc_id=1, outputs=[])],
        DiversitySettings(metrics=("ead",), corpus_metrics=("ead",)),
    )
    assert all(math.isnan(v) for v in scores.metrics["ead"].values())


@pytest.mark.parametrize("mode", ["math", "compat"])
def test_maths_doc_without_gold_is_refused_in_every_path(mode: str) -> None:
    from lm_eval_diversity.quality.math import grade_math, grade_math_docs

    docs = [{"question": "1+1?", "answer": "2\n#### 2"}, {"question": "2+2?", "answer": "four"}]
    with pytest.raises(ValueError, match=r"gsm8k doc 1: key 'answer' has no gold answer"):
        grade_math_docs(gold_format("gsm8k"), docs, [["#### 2"], ["#### 4"]], mode=mode, label="gsm8k")
    with pytest.raises(ValueError, match=r"key 'answer' has no gold answer"):
        grade_math(gold_format("gsm8k"), docs[1], ["#### 4"], mode=mode)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_output_in_a_read_only_directory_names_the_output(env: Env, capsys: pytest.CaptureFixture) -> None:
    ro = env.tmp / "ro"
    ro.mkdir()
    (ro / "scores.json").write_text(PREVIOUS)
    ro.chmod(0o555)
    try:
        rc = cli.main(env.score(out=ro / "scores.json"))
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 2 and f"{ro / 'scores.json'}: Permission denied" in err and "Traceback" not in err
    assert (ro / "scores.json").read_text() == PREVIOUS


def test_compare_skips_a_fifo_named_like_results(env: Env, capsys: pytest.CaptureFixture) -> None:
    run = env.tmp / "fiforun"
    run.mkdir()
    os.mkfifo(run / f"results_{TIMESTAMP}.json")
    assert run_compare([str(run), "--output", str(env.out)]) == 2  # no readable results: an error, not a hang
    assert "no results_*.json" in capsys.readouterr().err
    assert env.out.read_text() == PREVIOUS


# ------------------------------------------------------------------------------------------------ checked up front
def _no_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    import lm_eval_diversity.scoring as scoring

    def must_not_run(*args, **kwargs):
        raise AssertionError("scoring started although a check should have refused the run")

    monkeypatch.setattr(scoring, "score_task", must_not_run)
    monkeypatch.setattr(scoring, "load_models", must_not_run)


@pytest.mark.parametrize(
    ("hidden", "task", "doc", "where"),
    [
        (("math_verify",), "diversity_gsm8k", {"question": "2+2?", "answer": "#### 4"}, "pip install math-verify"),
        (("langdetect", "lm_eval.tasks.ifeval.utils"), "diversity_ifeval",
         {"key": 1, "prompt": "Write.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
         "pip install langdetect"),
    ],
)  # fmt: skip
def test_a_missing_grader_library_is_refused_before_any_work(
    hidden: tuple[str, ...], task: str, doc: dict, where: str, env: Env, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after an install with --no-deps: the grader's library cannot be imported. The run stops before scoring
    (before generation, in lm_eval: the same check), naming what to install."""
    import sys

    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as for a missing package
    _no_scoring(monkeypatch)
    rc = cli.main(env.score(paths=[str(_samples(env.tmp / "s", task, {"doc": doc}))]))
    err = capsys.readouterr().err
    assert rc == 2 and where in err and f"grading {task} needs" in err and "Traceback" not in err, err
    assert env.out.read_text() == PREVIOUS


def test_no_sandbox_is_refused_before_any_work(env: Env, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from lm_eval_diversity.quality import sandbox

    monkeypatch.setattr(sandbox, "_MODE", None)
    monkeypatch.setenv(sandbox.MODE_ENV, "plain")  # no isolation, and no opt-out
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    _no_scoring(monkeypatch)
    doc = {"task_id": "t/0", "prompt": "def f(x):\n", "entry_point": "f", "test": "def check(c):\n    pass\n"}
    samples = _samples(env.tmp / "s", "diversity_humaneval", {"doc": doc})
    rc = cli.main([*env.score(paths=[str(samples)]), "--confirm_run_unsafe_code"])
    err = capsys.readouterr().err
    assert rc == 2 and sandbox.UNSAFE_ENV in err and "Traceback" not in err, err
    assert env.out.read_text() == PREVIOUS


def test_score_help_names_no_variable_score_ignores(capsys) -> None:
    """score reads its flags only; its help must not advertise LM_EVAL_DIVERSITY_* variables."""
    with pytest.raises(SystemExit):
        cli.main(["score", "--help"])
    out = capsys.readouterr().out
    assert "--diversity_seed" in out and "LM_EVAL_DIVERSITY_" not in out


@pytest.mark.slow  # starts lm-eval
@pytest.mark.parametrize(
    ("argv", "code", "where"),
    [
        (["-m", "lm_eval_diversity", "run", "--data_dir", "/nonexistent"], 2,
         "lm-eval-diversity: error: diversity_gsm8k: --metadata data_dir is set but no data file was found"),
        (["-m", "lm_eval", "--metadata", '{"diversity_seed": -1}'], 1,
         "error: diversity_gsm8k: --diversity_seed / --metadata diversity_seed=-1"),
        (["-m", "lm_eval", "--metadata", '{"repeats": "x"}'], 1,
         "error: diversity_gsm8k: --repeats / --metadata repeats='x'"),
    ],
    ids=["run_data_dir_missing", "plain_lm_eval_bad_seed", "plain_lm_eval_bad_repeats"],
)  # fmt: skip
def test_bad_settings_of_a_run_end_in_one_line(argv: list[str], code: int, where: str, tmp_path: Path) -> None:
    """Through our wrapper (exit 2) and through plain lm_eval (which catches nothing: exit 1), a bad setting is one
    line on stderr, before any generation and without a traceback."""
    import subprocess
    import sys

    from lm_eval_diversity import TASK_DIR

    common = ["--model", "dummy", "--tasks", "diversity_gsm8k", "--limit", "1", "--output_path", str(tmp_path / "o")]
    if argv[1] == "lm_eval":
        common += ["--include_path", str(TASK_DIR)]
    proc = subprocess.run([sys.executable, *argv, *common], capture_output=True, text=True, timeout=600)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert where in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "Running generate_until requests" not in proc.stderr
    assert not (tmp_path / "o").exists()
