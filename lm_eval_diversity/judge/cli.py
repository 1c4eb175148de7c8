"""``lm-eval-diversity judge RUN --judge_model M --base_url URL``: the paper's LLM judges over logged samples.

Exit codes: 0 done; 1 some requests failed (the results are written without them; answered requests are cached, so
a rerun asks only the failed ones); 2 bad input or a judge endpoint that refuses every request.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from lm_eval_diversity.judge.protocols import judged_task_names, task_protocol
from lm_eval_diversity.judge.run import JUDGE_OUTPUTS, JudgeSettings

log = logging.getLogger("lm_eval_diversity.judge")


def _judged() -> str:
    """The tasks judged by default, with their protocols, as the help shows them."""
    return "; ".join(f"{t}: {task_protocol(t).name}" for t in judged_task_names())  # type: ignore[union-attr]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lm-eval-diversity judge",
        description="Judge logged outputs with an LLM through any OpenAI-compatible chat endpoint, by the paper's "
        f"protocols ({_judged()}): summaries ranked against the reference, WB-Score checklists, Arena-Hard pairwise "
        "against the base model (docs/quality.md).",
    )
    p.add_argument("paths", nargs="+", metavar="RUN", help="samples_<task>_*.jsonl files or lm-eval output dirs")
    p.add_argument("--judge_model", required=True, help="the judge's model name at the endpoint (paper: gpt-4.1-mini)")
    p.add_argument(
        "--base_url",
        default=os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 for `vllm serve` (default: $OPENAI_BASE_URL "
        "or OpenAI's)",
    )
    p.add_argument(
        "--api_key_env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (never recorded; a local server needs none)",
    )
    p.add_argument(
        "--judge_outputs",
        default="first",
        choices=JUDGE_OUTPUTS,
        help="judge output #0 of each prompt (the paper) or every output",
    )
    p.add_argument(
        "--judge_base", default=None, help="the base model's RUN: the pairwise protocol judges against its output #0"
    )
    p.add_argument(
        "--tasks",
        default=None,
        help="comma list of tasks to judge (default: the paper's judged tasks in RUN; "
        f"{', '.join(judged_task_names(opt_in=True))} on request)",
    )
    p.add_argument("--temperature", type=float, default=0.0, help="judge sampling temperature (paper: 0)")
    p.add_argument("--max_tokens", type=int, default=None, help="answer budget (default: the protocol's, 256/1024)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--timeout_s", type=float, default=120.0, help="seconds per request attempt (default 120)")
    p.add_argument("--max_retries", type=int, default=5, help="retries of a transient failure (default 5)")
    p.add_argument("--cache_path", default=None, help="answer cache (default: ~/.cache/lm_eval_diversity/judge.sqlite)")
    p.add_argument("--no_cache", action="store_true", help="neither read nor write the answer cache")
    p.add_argument("--estimate", action="store_true", help="print the requests, tokens, cost and time, then stop")
    p.add_argument("--price_input", type=float, default=None, help="USD per 1M input tokens for the estimate")
    p.add_argument("--price_output", type=float, default=None, help="USD per 1M output tokens for the estimate")
    p.add_argument("--output_path", default=None, help="write the results JSON (the score JSON layout) here")
    p.add_argument(
        "--score_json",
        default=None,
        help="a `score` JSON of the same run: the output is that JSON with the judge's values added",
    )
    p.add_argument(
        "--log_judgments",
        action="store_true",
        help="also write every answer and its parsed value to <output_path stem>.judgments.jsonl",
    )
    return p


def _settings(args: argparse.Namespace) -> JudgeSettings:
    return JudgeSettings(
        judge_model=args.judge_model,
        base_url=args.base_url,
        judge_outputs=args.judge_outputs,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        judge_base=args.judge_base,
        concurrency=args.concurrency,
        timeout_s=args.timeout_s,
        max_retries=args.max_retries,
        api_key_env=args.api_key_env,
    )


def _load_score_json(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--score_json {path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise ValueError(f"--score_json {path}: not a `lm-eval-diversity score` JSON (no 'tasks' object)")
    return data


def prepare(args: argparse.Namespace):
    """Everything checked before any request: settings, samples, base run, output paths; returns the plans."""
    from lm_eval_diversity.atomic import check_output_path
    from lm_eval_diversity.judge.run import judged_tasks, plan_task
    from lm_eval_diversity.samples import read_samples

    settings = _settings(args)
    if args.log_judgments and not args.output_path:
        raise ValueError("--log_judgments needs --output_path (the log is written next to it)")
    files = read_samples(args.paths)
    asked = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    protocols = judged_tasks(list(files), asked)
    if not protocols:
        raise ValueError(
            f"no task to judge in {', '.join(args.paths)} (judged tasks: {_judged()}; "
            f"{', '.join(judged_task_names(opt_in=True))} with --tasks)"
        )
    base_files = None
    if settings.judge_base is not None and any(p.needs_opponent for p in protocols.values()):
        base_files = read_samples([settings.judge_base])
    plans, notes = [], []
    for task, protocol in protocols.items():
        opponents = None
        if protocol.needs_opponent:
            if base_files is None:
                if asked is not None:
                    raise ValueError(f"--tasks {task}: judged against the base model's outputs; give --judge_base RUN")
                notes.append(f"{task}: not judged (needs --judge_base, the base model's run)")
                continue
            if task not in base_files:
                raise ValueError(f"--judge_base {settings.judge_base}: no samples of {task}")
            if base_files[task].path.resolve() == files[task].path.resolve():
                notes.append(f"{task}: not judged (the run is its own base; its win rate is 0.5 by definition)")
                continue
            opponents = {g.doc_id: (g.doc, g) for g in base_files[task].groups}
        plans.append(plan_task(task, protocol, files[task], settings, opponents))
    inputs = [str(sf.path) for sf in files.values()] + [p for p in (args.score_json,) if p]
    if args.output_path:
        check_output_path(args.output_path, inputs, "--output_path")
    score = _load_score_json(args.score_json) if args.score_json else None
    return settings, plans, notes, score


def run_judge_cli(argv: list[str]) -> int:
    """The ``judge`` subcommand (see the module docstring for exit codes)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("lm-eval-diversity judge: interrupted; answers received so far are cached", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        msg = f"{exc.filename}: {exc.strerror or exc}" if isinstance(exc, OSError) and exc.filename else str(exc)
        print(f"lm-eval-diversity judge: error: {msg}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from lm_eval_diversity import __version__
    from lm_eval_diversity.atomic import write_atomic
    from lm_eval_diversity.judge.cache import JudgeCache, default_cache_path
    from lm_eval_diversity.judge.client import JudgeClient
    from lm_eval_diversity.judge.run import estimate, format_bill, merge_into_score, prices_for, run_judge

    settings, plans, notes, score = prepare(args)
    for note in notes:
        log.warning(note)
    cache = JudgeCache(None if args.no_cache else (args.cache_path or default_cache_path()))
    prices = prices_for(settings.judge_model, args.price_input, args.price_output)
    bills = estimate(plans, settings, cache)
    print(format_bill(bills, settings, prices), file=sys.stderr if not args.estimate else sys.stdout)
    if args.estimate:
        return 0
    client = JudgeClient(
        settings.judge_model, settings.base_url, api_key_env=settings.api_key_env, timeout_s=settings.timeout_s,
        max_retries=settings.max_retries, temperature=settings.temperature,
    )  # fmt: skip
    try:
        done = run_judge(plans, settings, client, cache)
    finally:
        cache.close()
    done.result["settings"] = {
        **settings.recorded({p.task: p.protocol for p in plans}),
        "package_version": __version__,
    }
    done.result["judge_notes"] = notes
    result = merge_into_score(score, done.result) if score is not None else done.result
    if args.output_path:
        write_atomic(args.output_path, json.dumps(result, indent=2, allow_nan=False) + "\n")
        if args.log_judgments:
            log_path = Path(args.output_path).with_suffix(".judgments.jsonl")
            write_atomic(log_path, "".join(json.dumps(j, ensure_ascii=False) + "\n" for j in done.judgments))
    print(format_results(done.result))
    if done.n_errors:
        print(
            f"lm-eval-diversity judge: {done.n_errors} request(s) failed and are left out of the scores (see "
            "diagnostics.judge.errors); rerun to ask them again (answered requests are cached)",
            file=sys.stderr,
        )
        return 1
    return 0


def format_results(result: dict) -> str:
    """One line per task: the protocol's metrics, prompts scored, and the fate of the requests."""
    lines = []
    for task, entry in result["tasks"].items():
        d = entry["diagnostics"]["judge"]
        values = ", ".join(
            f"{m} {v['per_input_mean']:.4f}" if v["per_input_mean"] is not None else f"{m} n/a"
            for m, v in entry["metrics"].items()
        )
        lines.append(
            f"{task}: {values} ({d['n_prompts_scored']}/{entry['n_prompts']} prompts; {d['n_requests']} requests, "
            f"{d['n_cached']} cached, {d['n_unparsed']} unparsed, {d['n_errors']} failed)"
        )
    return "\n".join(lines)
