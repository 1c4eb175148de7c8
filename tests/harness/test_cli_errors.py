"""Bad input through the ``lm-eval-diversity`` command: clear errors, exit codes, no leaked settings."""

from __future__ import annotations

import os

from lm_eval_diversity.cli import main as cli_main


def test_unknown_task_is_an_error_naming_it(capsys):
    rc = cli_main(["--model", "dummy", "--tasks", "diversity_nope", "--limit", "1"])
    assert rc == 2
    assert "diversity_nope" in capsys.readouterr().err


def test_bad_metric_setting_names_the_variable_and_does_not_leak(capsys, monkeypatch):
    monkeypatch.delenv("LM_EVAL_DIVERSITY_METRICS", raising=False)
    rc = cli_main(["--model", "dummy", "--tasks", "diversity_gsm8k", "--diversity_metrics", "ead,bogus"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "LM_EVAL_DIVERSITY_METRICS" in err and "bogus" in err
    assert "LM_EVAL_DIVERSITY_METRICS" not in os.environ


def test_empty_metric_list_is_an_error(capsys, monkeypatch):
    monkeypatch.delenv("LM_EVAL_DIVERSITY_METRICS", raising=False)
    rc = cli_main(["--model", "dummy", "--tasks", "diversity_gsm8k", "--diversity_metrics", ""])
    assert rc == 2
    assert "LM_EVAL_DIVERSITY_METRICS=''" in capsys.readouterr().err
