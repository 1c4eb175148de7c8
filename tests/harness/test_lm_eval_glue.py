"""The glue to lm-eval: the wrapper adds the task directory through the parsed ``--include_path`` (no patched
``TaskManager`` or ``sys.argv``), and the task class loads its data without lm-eval's generic ``--metadata`` hint."""

from __future__ import annotations

import logging
import sys

import lm_eval.tasks
import pytest
from lm_eval.api.task import ConfigurableTask

from lm_eval_diversity import TASK_DIR, TASKS_DISCOVERED
from lm_eval_diversity.cli import main
from lm_eval_diversity.harness import DiversityTask
from lm_eval_diversity.lm_eval_cli import _user_include_path, _with_task_dir, build_cli, parse_cli_args, task_manager


def test_flags_without_a_subcommand_mean_run_and_leave_sys_argv_alone():
    before = list(sys.argv)
    args = parse_cli_args(build_cli(), ["--model", "hf", "--tasks", "diversity_gsm8k"])
    assert args.command == "run" and args.tasks == ["diversity_gsm8k"]
    assert sys.argv == before


def test_bare_run_prints_the_run_help(capsys):
    with pytest.raises(SystemExit) as info:
        parse_cli_args(build_cli(), ["run"])
    assert info.value.code == 0
    assert "--diversity_metrics" in capsys.readouterr().out


def test_a_config_files_include_path_is_kept_next_to_the_task_directory(tmp_path):
    mine = tmp_path / "my_tasks"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"include_path: {mine}\n")
    args = parse_cli_args(build_cli(), ["run", "--config", str(cfg)])
    paths = _with_task_dir(_user_include_path(args))
    assert paths[-1] == str(mine)  # last: a user's tasks override ours (later roots win in lm-eval)
    assert (str(TASK_DIR) in paths) is (not TASKS_DISCOVERED)
    # the flag beats the config file, as in lm-eval
    args = parse_cli_args(build_cli(), ["run", "--config", str(cfg), "--include_path", str(tmp_path)])
    assert _user_include_path(args) == str(tmp_path)


@pytest.mark.slow  # lm-eval indexes its whole task tree (seconds)
def test_ls_lists_our_tasks_and_a_users_include_path(tmp_path, capsys):
    (tmp_path / "my_task.yaml").write_text("task: user_listed_task\ndataset_path: json\noutput_type: generate_until\n")
    original = lm_eval.tasks.TaskManager
    assert main(["ls", "tasks", "--include_path", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "diversity_gsm8k" in out and "user_listed_task" in out
    assert lm_eval.tasks.TaskManager is original


def _hints(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Custom kwargs can be passed" in r.getMessage()]


def test_task_data_loads_without_the_generic_metadata_hint(harness_env, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("lm_eval"), "propagate", True)  # so that caplog sees lm-eval's records
    with caplog.at_level(logging.WARNING):
        loaded = task_manager(include_defaults=False, metadata={"repeats": 2}).load(["diversity_gsm8k"])
    docs = loaded["tasks"]["diversity_gsm8k"].eval_docs
    assert len(docs) > 0 and _hints(caplog) == []
    # lm-eval's own download logs the hint: the check above can see it
    monkeypatch.setattr(DiversityTask, "download", ConfigurableTask.download)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        task_manager(include_defaults=False, metadata={"repeats": 2}).load(["diversity_gsm8k"])
    hints = _hints(caplog)
    assert hints and all(h.startswith("diversity_gsm8k: ") for h in hints)
