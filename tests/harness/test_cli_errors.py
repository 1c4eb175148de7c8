"""Bad input through the ``lm-eval-diversity`` command: clear errors, exit codes, no leaked settings."""

from __future__ import annotations

import os

import pytest

from lm_eval_diversity.cli import main as cli_main


@pytest.mark.slow  # lm-eval indexes every task it ships (about a minute) before it can say a name is unknown
def test_unknown_task_is_an_error_naming_it(capsys):
    rc = cli_main(["--model", "dummy", "--tasks", "diversity_nope", "--limit", "1"])
    assert rc == 2
    assert "diversity_nope" in capsys.readouterr().err


def test_bad_metric_setting_names_the_variable_and_does_not_leak(capsys, monkeypatch):
    monkeypatch.delenv("LM_EVAL_DIVERSITY_METRICS", raising=False)
    rc = cli_main(["--model", "dummy", "--tasks", "diversity_gsm8k", "--diversity_metrics", "ead,bogus"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--diversity_metrics" in err and "bogus" in err
    assert "LM_EVAL_DIVERSITY_METRICS" not in os.environ


def test_unknown_metadata_key_is_refused_by_the_command(capsys):
    rc = cli_main(["--model", "dummy", "--tasks", "diversity_gsm8k", "--metadata", '{"repeats": 2, "metricz": 1}'])
    assert rc == 2
    assert "'metricz'" in capsys.readouterr().err
    # lm-eval's key=value form of --metadata is read the same way
    rc = cli_main(["--model", "dummy", "--tasks", "diversity_gsm8k", "--metadata", "repeats=2", "pretrained=x"])
    assert rc == 2
    assert "'pretrained'" in capsys.readouterr().err


def test_help_lists_every_subcommand_and_run_shows_our_flags(capsys):
    assert cli_main(["--help"]) == 0
    listing = capsys.readouterr().out
    for command in ("run", "ls", "validate", "score", "compare", "demo"):
        assert f"    {command} " in listing, command
    assert cli_main(["run", "--help"]) == 0
    run_help = capsys.readouterr().out
    for flag in ("--tasks", "--model_args", "--diversity_metrics", "--metric_device", "--repeats", "--all_metrics"):
        assert flag in run_help, flag


def test_score_accepts_old_flag_spellings_with_a_deprecation_message(capsys):
    from lm_eval_diversity.cli import _undeprecate

    new = _undeprecate(["--device", "cpu", "--metrics=ead"], "score")
    assert new == ["--metric_device", "cpu", "--diversity_metrics=ead"]
    err = capsys.readouterr().err
    assert "--device is deprecated; use --metric_device" in err and "--metrics is deprecated" in err


def test_every_flag_of_our_commands_has_help():
    from lm_eval_diversity.cli import build_score_parser
    from lm_eval_diversity.command import run_flags
    from lm_eval_diversity.compare import build_parser as compare_parser
    from lm_eval_diversity.demo import build_parser as demo_parser

    for parser in (build_score_parser(), compare_parser(), demo_parser()):
        for action in parser._actions:
            assert action.help, (parser.prog, action.option_strings or action.dest)
    assert all(text for _, text in run_flags().values())


def test_empty_metric_list_is_an_error(capsys, monkeypatch):
    monkeypatch.delenv("LM_EVAL_DIVERSITY_METRICS", raising=False)
    rc = cli_main(["--model", "dummy", "--tasks", "diversity_gsm8k", "--diversity_metrics", ""])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--diversity_metrics" in err and "no metric given" in err


def test_demo_temperatures_are_checked_before_anything_runs(capsys):
    from lm_eval_diversity.demo import build_parser as demo_parser
    from lm_eval_diversity.demo import run_label

    args = demo_parser().parse_args([])
    assert args.temperatures == [1.0, 0.3] and [run_label(t) for t in args.temperatures] == ["T=1.0", "T=0.3"]
    assert run_label(0.75) == "T=0.75"
    for bad in ("1.0,1.0", "0", "-1", "warm", "nan", ""):
        with pytest.raises(SystemExit) as exc:  # argparse's usage error, before any model is loaded
            cli_main(["demo", "--temperatures", bad])
        assert exc.value.code == 2, bad
        assert "--temperatures" in capsys.readouterr().err
