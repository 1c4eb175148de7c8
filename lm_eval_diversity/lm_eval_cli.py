"""lm-eval's own CLI with the diversity tasks: the ``lm-eval-diversity run|ls|validate`` wrapper and the task manager.

Light on purpose: importing this module loads neither the task glue (:mod:`lm_eval_diversity.harness`) nor a
model library, so ``lm-eval-diversity --help`` stays fast.

Where the package touches lm-eval beyond its public API (checked against lm-eval 0.4.13; the pin is ``<0.5``,
where several of these move):

- ``lm_eval._cli.HarnessCLI`` with its ``_parser`` and ``_subparsers`` (:func:`build_cli`, :func:`parse_cli_args`):
  lm-eval's command line has no public form that takes an argument list or more subcommands, and the wrapper must
  accept exactly lm-eval's flags. :func:`parse_cli_args` repeats lm-eval's one legacy rule (no subcommand means
  ``run``) instead of rewriting ``sys.argv``.
- A list as the parsed ``include_path`` (:func:`run_lm_eval_cli`): lm-eval's parser types the flag ``str``, but
  ``run``, ``ls`` and ``validate`` hand the value unchanged to ``TaskManager``, which takes a list (as a
  ``--config`` file's list already reaches it). ``EvaluatorConfig.load_yaml_config`` reads the ``include_path`` of
  a ``run --config`` file, so that the task directory is added to it rather than replacing it.
- ``Task.apply_filters`` overridden in :class:`lm_eval_diversity.harness.DiversityTask`: the diversity filter needs
  which prompts opened a thought, known only once the requests are built, and ``--predict_only`` needs the K raw
  responses rather than lm-eval's ``take_first``. The override builds its pipelines with the public
  ``lm_eval.filters.build_filter_ensemble`` from the task's ``filter_list`` and applies them to ``task.instances``;
  lm-eval's private ``_filters`` is left alone.
- ``ConfigurableTask.download`` overridden there too: it calls the ``custom_dataset`` loader the way lm-eval does
  (``loader(**metadata, **dataset_kwargs)``), without lm-eval's generic "Custom kwargs can be passed to
  ``--metadata``" warning, which does not apply to tasks whose settings are already ``--metadata`` keys.
- The ``lm`` argument of ``lm_eval.evaluator.evaluate``, read from the call stack while a task builds its requests
  (:mod:`lm_eval_diversity.generating_model`): lm-eval gives a task no handle on the model, and ``max_gen_toks``
  must be checked against the model's context before generation. Only the model's public attributes are read.
- ``lm_eval.tasks.ifeval.utils`` (:mod:`lm_eval_diversity.quality.ifeval`, ``ifeval_mode official``): lm-eval's
  own IFEval instruction checks, so that official grading is lm-eval's; that task module is not an API and may
  change with lm-eval's IFEval task.

Everything else goes through public names: ``TaskManager(include_path=...)`` (a list of directories),
``simple_evaluate``, ``register_filter``, ``ConfigurableTask``, ``lm_eval.utils``.
"""

from __future__ import annotations

import os
import sys

from lm_eval_diversity import TASK_DIR, TASKS_DISCOVERED
from lm_eval_diversity.command import (
    SettingsError,
    _flag_value,
    check_data_parallel,
    merge_metadata,
    run_flags,
    split_own_flags,
)
from lm_eval_diversity.settings import ENV_PREFIX


def task_manager(include_path=None, **kwargs):
    """A ``TaskManager`` that also sees the diversity tasks (use it with ``simple_evaluate(task_manager=...)``)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=_with_task_dir(include_path), **kwargs)


def _with_task_dir(include_path) -> list[str] | None:
    """The include paths lm-eval should scan: the user's, plus our task directory unless lm-eval finds it already.

    A wheel install puts the YAMLs inside lm-eval's own task tree, which lm-eval always scans; adding that
    directory again (or keeping a user's ``--include_path`` to it) would index every task twice.
    """
    paths = (
        []
        if include_path is None
        else [include_path]
        if isinstance(include_path, (str, os.PathLike))
        else list(include_path)
    )
    ours = os.path.realpath(TASK_DIR)
    paths = [str(p) for p in paths if os.path.realpath(str(p)) != ours]
    if not TASKS_DISCOVERED:
        # our directory first, so that a user's --include_path can override our tasks (later roots win)
        paths = [str(TASK_DIR), *paths]
    return paths or None


def build_cli(own_commands: dict[str, str] | None = None):
    """lm-eval's own CLI parser, named ``lm-eval-diversity``, listing our subcommands and, under ``run``, our flags.

    Our flags are taken out of the arguments before lm-eval parses them (:func:`split_own_flags`); here they are
    added for ``--help`` only.
    """
    from lm_eval._cli import HarnessCLI

    cli = HarnessCLI()
    cli._parser.prog = "lm-eval-diversity"
    subparsers = cli._subparsers
    for name, text in (own_commands or {}).items():
        subparsers.add_parser(name, help=text, add_help=False)
    run = subparsers.choices["run"]
    run.prog = "lm-eval-diversity run"
    group = run.add_argument_group(
        "diversity settings",
        "lm-eval-diversity flags; each is also a --metadata key of the same name, for plain lm_eval "
        "(precedence: flag or --metadata, then LM_EVAL_DIVERSITY_* variables, then defaults; docs/settings.md)",
    )
    for flag, (_, text) in run_flags().items():
        group.add_argument(flag, help=text, metavar="VALUE")
    return cli


def parse_cli_args(cli, argv: list[str]):
    """Parse ``argv`` with lm-eval's parser as ``lm_eval`` would parse its command line.

    lm-eval's legacy form (flags with no subcommand) means ``run``; a bare ``run`` prints ``run``'s help. Exits
    (``SystemExit``) on ``--help`` or a parse error, as argparse does.
    """
    choices = cli._subparsers.choices
    if len(argv) > 1 and argv[0] not in choices:
        argv = ["run", *argv]
    elif argv == ["run"]:
        choices["run"].print_help()
        raise SystemExit(0)
    return cli._parser.parse_args(argv)


def _user_include_path(args) -> str | list[str] | None:
    """The ``--include_path`` the user gave: the flag, else the ``include_path`` of a ``run --config`` file."""
    if args.include_path is not None or not getattr(args, "config", None):
        return args.include_path
    from lm_eval.config.evaluate_config import EvaluatorConfig

    return EvaluatorConfig.load_yaml_config(args.config).get("include_path")


def run_lm_eval_cli(argv: list[str], own_commands: dict[str, str] | None = None) -> int:
    """Run lm-eval's own CLI (same subcommands and flags) with the diversity tasks and registrations loaded."""
    from lm_eval.utils import setup_logging

    try:
        argv, from_flags = split_own_flags(argv)
        check_data_parallel(argv)
    except ValueError as exc:  # a flag without its value, vLLM data parallelism
        print(f"lm-eval-diversity: error: {exc}", file=sys.stderr)
        return 2
    try:
        # where a scoring failure after generation saves the responses (save_unscored)
        with _environ({ENV_PREFIX + "OUTPUT_PATH": _flag_value(argv, "--output_path") or ""}):
            setup_logging()
            cli = build_cli(own_commands)
            if not argv:
                cli._parser.print_help()
                return 0
            args = parse_cli_args(cli, argv)
            if getattr(args, "command", None) == "run":
                args.metadata = merge_metadata(args.metadata or {}, from_flags)
            elif from_flags:
                flags = ", ".join("--" + k for k in from_flags)
                raise SettingsError(f"{flags}: diversity settings apply to `run` only")
            if hasattr(args, "include_path"):  # run, ls and validate build their TaskManager from it
                args.include_path = _with_task_dir(_user_include_path(args))
            cli.execute(args)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except KeyboardInterrupt:
        print("lm-eval-diversity: interrupted", file=sys.stderr)
        return 130
    except (ValueError, *user_errors()) as exc:
        # bad settings, unknown tasks, greedy sampling, data, a model, grader or sandbox that cannot work: say what,
        # no traceback
        print(f"lm-eval-diversity: error: {exc}", file=sys.stderr)
        return 2
    return 0


def user_errors() -> tuple[type[BaseException], ...]:
    """The package's errors about the user's settings, data or machine: reported in one line, never a traceback."""
    from lm_eval_diversity.command import SettingsError
    from lm_eval_diversity.loader import DatasetUnavailableError
    from lm_eval_diversity.models import ModelUnavailableError
    from lm_eval_diversity.quality.code import CodeExecutionNotAllowedError
    from lm_eval_diversity.quality.graders import GraderUnavailableError
    from lm_eval_diversity.quality.sandbox import SandboxUnavailableError
    from lm_eval_diversity.responses import ScoringAfterGenerationError

    return (SettingsError, DatasetUnavailableError, ModelUnavailableError, GraderUnavailableError,
            SandboxUnavailableError, CodeExecutionNotAllowedError, ScoringAfterGenerationError)  # fmt: skip


def install_one_line_errors() -> None:
    """Under plain ``lm_eval`` (which catches nothing), print our errors that reach the top as one line on stderr
    (exit status 1, as any uncaught error) instead of a traceback; every other exception keeps its traceback.
    Installed once, and only over Python's default hook."""
    if sys.excepthook is not sys.__excepthook__:
        return
    previous = sys.excepthook

    def hook(kind, exc, tb):
        if issubclass(kind, user_errors()):
            print(f"lm_eval: error: {exc}", file=sys.stderr)
            return
        previous(kind, exc, tb)

    sys.excepthook = hook


class _environ:
    """Set environment variables for a block and restore them after."""

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)
        return self

    def __exit__(self, *exc) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
