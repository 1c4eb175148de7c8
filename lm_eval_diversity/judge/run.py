"""The judge pass over logged samples: plan every judge request of a run, estimate its bill, ask, and turn the
answers into per-prompt values and task scores written in the ``score`` JSON layout (docs/quality.md).

Layers: :mod:`.protocols` (pure prompts, parsers, per-prompt values), :mod:`.client` (HTTP, retries, concurrency),
:mod:`.cache` (answers on disk). This module joins them to samples files; the command line is :mod:`.cli`.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from lm_eval_diversity.catalogue import short_name
from lm_eval_diversity.catalogue.tasks import find_task
from lm_eval_diversity.judge.cache import JudgeCache
from lm_eval_diversity.judge.client import JudgeClient, Outcome, ask_all, request_keys
from lm_eval_diversity.judge.protocols import (
    Material,
    Protocol,
    Request,
    judge_text,
    judged_task_names,
    task_protocol,
)
from lm_eval_diversity.preprocess import strip_cot_with_diagnostics

JudgeOutputs = Literal["first", "all"]
JUDGE_OUTPUTS: tuple[str, ...] = ("first", "all")
CHARS_PER_TOKEN = 4.0  # English text with GPT-4-class tokenizers; the estimate says it is approximate
# list prices in USD per million tokens (input, output), used by the estimate when no price is given
KNOWN_PRICES = {"gpt-4.1-mini": (0.40, 1.60), "gpt-4.1": (2.00, 8.00), "gpt-4o-mini": (0.15, 0.60)}
ANSWER_TOKENS_PER_S = 60.0  # a hosted judge's decoding speed, for the time estimate (docs/quality.md)
REQUEST_OVERHEAD_S = 1.0


@dataclass(frozen=True)
class JudgeSettings:
    """Every setting of a judgement that changes a number, recorded (with the ``judge_`` prefix) in its results.
    The API key is not a setting: it is read from the environment variable ``api_key_env`` and never written."""

    judge_model: str
    base_url: str
    judge_outputs: JudgeOutputs = "first"
    temperature: float = 0.0
    max_tokens: int | None = None  # None: each protocol's own (256 summaries, 1024 WB-Score and Arena)
    judge_base: str | None = None  # the base model's run: WritingPrompts is judged against its output #0
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 5
    api_key_env: str = "OPENAI_API_KEY"

    def __post_init__(self) -> None:
        checks = [
            (bool(self.judge_model.strip()), "--judge_model: empty"),
            (bool(urlsplit(self.base_url).scheme in ("http", "https")), f"--base_url {self.base_url!r}: not an URL"),
            (self.judge_outputs in JUDGE_OUTPUTS, f"--judge_outputs {self.judge_outputs!r}: one of {JUDGE_OUTPUTS}"),
            (0.0 <= self.temperature <= 2.0, f"--temperature {self.temperature}: must be in [0, 2]"),
            (self.max_tokens is None or self.max_tokens >= 1, f"--max_tokens {self.max_tokens}: must be >= 1"),
            (self.concurrency >= 1, f"--concurrency {self.concurrency}: must be >= 1"),
            (0 < self.timeout_s < math.inf, f"--timeout_s {self.timeout_s}: must be a positive number of seconds"),
            (self.max_retries >= 0, f"--max_retries {self.max_retries}: must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def max_tokens_for(self, protocol: Protocol) -> int:
        return self.max_tokens or protocol.max_tokens

    def recorded(self, protocols: Mapping[str, Protocol]) -> dict:
        """The settings as written into results: the URL without credentials or query, each task's protocol with
        the digest of its prompt wording and its answer budget."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        url = urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))
        out = {
            "judge_model": self.judge_model,
            "judge_base_url": url,
            "judge_outputs": self.judge_outputs,
            "judge_temperature": self.temperature,
            "judge_base": self.judge_base,
            "judge_max_retries": self.max_retries,
            "judge_timeout_s": self.timeout_s,
            "judge_protocols": {
                task: {
                    "protocol": p.name,
                    "prompt_sha256": p.template_digest(),
                    "max_tokens": self.max_tokens_for(p),
                }
                for task, p in sorted(protocols.items())
            },
        }
        return out


@dataclass
class TaskPlan:
    """One task's judge work: its protocol, the prompts (doc ids), the requests by prompt, and what was skipped."""

    task: str
    protocol: Protocol
    source: str
    k: int
    doc_ids: list[int]
    requests: list[tuple[int, Request]] = field(default_factory=list)  # (doc_id, request)
    skipped: Counter = field(default_factory=Counter)  # reason -> prompts or outputs left out


def protocol_for(task: str, asked: bool) -> Protocol | None:
    """The task's protocol: the paper's judged tasks always, alpaca/prism only when named (``asked``)."""
    return task_protocol(task, asked=asked)


def judged_tasks(available: Sequence[str], asked: Sequence[str] | None) -> dict[str, Protocol]:
    """The tasks of a run to judge with their protocols: ``asked`` (short or full names; each must be in the run and
    have a protocol) or, when None, every task of the run the paper judged."""
    by_short = {short_name(t): t for t in available}
    if asked is None:
        return {t: p for t in available if (p := protocol_for(t, asked=False)) is not None}
    out = {}
    for name in asked:
        task = by_short.get(short_name(name))
        if task is None:
            raise ValueError(f"--tasks {name}: not among the run's tasks ({', '.join(sorted(by_short))})")
        protocol = protocol_for(task, asked=True)
        if protocol is None:
            known = sorted({*judged_task_names(), *judged_task_names(opt_in=True)})
            raise ValueError(f"--tasks {name}: no judge protocol for this task (judged tasks: {', '.join(known)})")
        out[task] = protocol
    return out


def _stripped(group) -> list[str]:
    return [strip_cot_with_diagnostics(o, group.think_opened).text for o in group.outputs]


def plan_task(task: str, protocol: Protocol, samples, settings: JudgeSettings, opponents: Mapping | None) -> TaskPlan:
    """Every request of one task. ``opponents``: doc id -> (the base run's doc, its raw outputs, think_opened) for
    protocols against the base model. Raises ValueError (naming the file) when docs are missing from the samples or
    the base run's prompt for a doc differs."""
    record = find_task(task)
    if record is None:
        raise ValueError(f"{samples.path}: task {task!r} is not a diversity task; its prompt and reference are unknown")
    k = max((len(g.outputs) for g in samples.groups), default=0)
    plan = TaskPlan(task, protocol, str(samples.path), k, [g.doc_id for g in samples.groups])
    for g in samples.groups:
        if not isinstance(g.doc, dict):
            raise ValueError(f"{samples.path}: doc_id {g.doc_id} has no logged doc (run lm_eval with --log_samples)")
        query = record.prompt(g.doc)
        outputs = _stripped(g)
        if settings.judge_outputs == "first":
            outputs = outputs[:1]
        opponent = None
        if protocol.needs_opponent and opponents is not None and g.doc_id in opponents:
            base_doc, base_group = opponents[g.doc_id]
            if not isinstance(base_doc, dict) or record.prompt(base_doc) != query:
                raise ValueError(
                    f"--judge_base: doc_id {g.doc_id} of {task} has a different prompt in the base run; the runs "
                    "must be of the same docs"
                )
            opponent = _stripped(base_group)[0] if base_group.outputs else ""
        material = Material(short_name(task), query, record.target(g.doc), tuple(outputs), opponent)
        reason = protocol.skip_reason(material)
        if reason:
            plan.skipped[reason] += 1
            continue
        reqs = protocol.requests(material)
        judged = {r.output for r in reqs}
        if len(judged) < len(outputs):
            plan.skipped["empty output"] += len(outputs) - len(judged)
        plan.requests += [(g.doc_id, r) for r in reqs]
    return plan


# --- the estimate ---------------------------------------------------------------------------------------------------


@dataclass
class Bill:
    """Requests, tokens and money of a judgement; ``*_to_send`` leave out what the cache already holds."""

    requests: int = 0
    cached: int = 0
    input_tokens: int = 0
    typical_output_tokens: int = 0
    max_output_tokens: int = 0
    seconds: float = 0.0

    @property
    def to_send(self) -> int:
        return self.requests - self.cached


def prices_for(model: str, price_input: float | None, price_output: float | None) -> tuple[float, float] | None:
    """USD per million (input, output) tokens: the given prices, else the list price of a known model, else None."""
    if price_input is not None or price_output is not None:
        return (price_input or 0.0, price_output or 0.0)
    return KNOWN_PRICES.get(model)


def estimate(plans: Sequence[TaskPlan], settings: JudgeSettings, cache: JudgeCache) -> dict[str, Bill]:
    """Per task, the bill of the requests not in the cache: input tokens from the rendered prompts'
    characters (:data:`CHARS_PER_TOKEN`), output tokens at the protocol's typical answer length and at its limit,
    and the time with ``concurrency`` requests in flight at :data:`ANSWER_TOKENS_PER_S`."""
    bills = {}
    for plan in plans:
        reqs = [r for _, r in plan.requests]
        max_tokens = settings.max_tokens_for(plan.protocol)
        keys = request_keys(settings.judge_model, settings.temperature, [(r.as_openai(), max_tokens) for r in reqs])
        hits = cache.contains(list(dict.fromkeys(keys)))
        send = [r for r, key in zip(reqs, keys) if key not in hits]
        typical = min(plan.protocol.typical_answer_tokens, max_tokens)
        per_request_s = REQUEST_OVERHEAD_S + typical / ANSWER_TOKENS_PER_S
        bills[plan.task] = Bill(
            requests=len(reqs),
            cached=len(reqs) - len(send),
            input_tokens=round(sum(len(c) for r in send for _, c in r.messages) / CHARS_PER_TOKEN),
            typical_output_tokens=typical * len(send),
            max_output_tokens=max_tokens * len(send),
            seconds=math.ceil(len(send) / settings.concurrency) * per_request_s,
        )
    return bills


def format_bill(bills: Mapping[str, Bill], settings: JudgeSettings, prices: tuple[float, float] | None) -> str:
    """The estimate's lines: per task and in total, requests (cached), tokens, money (when prices are known), time."""
    from lm_eval_diversity.estimate import _duration

    def money(b: Bill) -> str:
        if prices is None:
            return ""
        typical = (b.input_tokens * prices[0] + b.typical_output_tokens * prices[1]) / 1e6
        worst = (b.input_tokens * prices[0] + b.max_output_tokens * prices[1]) / 1e6
        return f"~${typical:,.2f} (at most ${worst:,.2f}); "

    def line(name: str, b: Bill) -> str:
        return (
            f"{name}: {b.requests:,} requests ({b.cached:,} cached, {b.to_send:,} to send); "
            f"~{b.input_tokens:,} input tokens, ~{b.typical_output_tokens:,} output tokens "
            f"(at most {b.max_output_tokens:,}); {money(b)}{_duration(b.seconds)}"
        )

    total = Bill(
        requests=sum(b.requests for b in bills.values()),
        cached=sum(b.cached for b in bills.values()),
        input_tokens=sum(b.input_tokens for b in bills.values()),
        typical_output_tokens=sum(b.typical_output_tokens for b in bills.values()),
        max_output_tokens=sum(b.max_output_tokens for b in bills.values()),
        seconds=sum(b.seconds for b in bills.values()),
    )
    outputs = "output #0 of each prompt" if settings.judge_outputs == "first" else "every output"
    head = (
        f"judge estimate ({settings.judge_model}, {outputs}, {settings.concurrency} in flight; "
        f"~{CHARS_PER_TOKEN:g} characters per token"
        + (f"; USD {prices[0]:g} / {prices[1]:g} per 1M input / output tokens)" if prices else
           "; cost unknown: give --price_input and --price_output, USD per 1M tokens)")
    )  # fmt: skip
    return "\n".join([head, "  " + line("total", total), *("  " + line(t, b) for t, b in bills.items())])


# --- results --------------------------------------------------------------------------------------------------------


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    mean = sum(finite) / len(finite)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / len(finite))


def _json_number(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def task_result(plan: TaskPlan, outcomes: Sequence[Outcome]) -> dict:
    """The ``tasks.<task>`` entry: per-prompt values, task means (population std over prompts), and diagnostics
    (counts of every request's fate, the verdicts, tokens used)."""
    protocol = plan.protocol
    parsed: dict[int, dict[tuple[int, int], float | None]] = defaultdict(dict)
    counts: Counter = Counter()
    verdicts: Counter = Counter()
    errors: list[str] = []
    usage = Counter()
    for (doc_id, req), outcome in zip(plan.requests, outcomes):
        counts["requests"] += 1
        counts["cached"] += outcome.cached
        if outcome.answer is None:
            counts["errors"] += 1
            parsed[doc_id][(req.output, req.round)] = None
            if len(errors) < 5:
                errors.append(f"doc_id {doc_id}: {outcome.error}")
            continue
        usage["prompt_tokens"] += outcome.answer.prompt_tokens
        usage["completion_tokens"] += outcome.answer.completion_tokens
        if outcome.answer.refusal or not outcome.answer.content.strip():
            counts["refused_or_empty"] += 1
        value = protocol.parse(req, judge_text(outcome.answer.content))
        parsed[doc_id][(req.output, req.round)] = value
        if value is None:
            counts["unparsed"] += 1
        else:
            verdicts[protocol.verdict_label(req, value)] += 1
    rows = []
    for doc_id in plan.doc_ids:
        row: dict = {"doc_id": doc_id}
        if doc_id in parsed:
            row.update(protocol.prompt_values(parsed[doc_id]))
        rows.append(row)
    names = list(dict.fromkeys(k for r in rows for k in r if k != "doc_id"))
    metrics = {}
    for name in names:
        mean, std = _mean_std([r.get(name, math.nan) for r in rows])
        metrics[name] = {"per_input_mean": _json_number(mean), "per_input_std": _json_number(std)}
    scored = sum(not math.isnan(r.get(protocol.metric, math.nan)) for r in rows)
    diagnostics = {
        "protocol": protocol.name,
        "n_prompts_scored": scored,
        "n_requests": counts["requests"],
        "n_cached": counts["cached"],
        "n_errors": counts["errors"],
        "n_unparsed": counts["unparsed"],
        "n_refused_or_empty": counts["refused_or_empty"],
        "skipped": dict(plan.skipped),
        "verdicts": dict(sorted(verdicts.items())),
        "usage": dict(usage),
        "errors": errors,
    }
    return {
        "n_prompts": len(plan.doc_ids),
        "k": plan.k,
        "metrics": metrics,
        "per_prompt": [{k: _json_number(v) for k, v in r.items()} for r in rows],
        "diagnostics": {"judge": diagnostics},
        "source": plan.source,
    }


@dataclass
class JudgeRun:
    """What :func:`run_judge` returns: the results (score-JSON layout), the failed requests, every judgement."""

    result: dict
    n_errors: int
    seconds: float
    judgments: list[dict] = field(default_factory=list)


def run_judge(
    plans: Sequence[TaskPlan],
    settings: JudgeSettings,
    client: JudgeClient,
    cache: JudgeCache,
    *,
    progress: bool = True,
) -> JudgeRun:
    """Ask every planned request (one pool across tasks, cached answers first), then score each task."""
    flat = [(plan, doc_id, req) for plan in plans for doc_id, req in plan.requests]
    requests = [(req.as_openai(), settings.max_tokens_for(plan.protocol)) for plan, _, req in flat]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(requests), desc=f"judging ({settings.judge_model})", unit="request")
    tally = Counter()

    def on_done(outcome: Outcome) -> None:
        tally["cached" if outcome.cached else "error" if outcome.error else "asked"] += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(tally, refresh=False)

    start = time.perf_counter()
    try:
        outcomes = ask_all(client, cache, requests, concurrency=settings.concurrency, on_done=on_done)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    result: dict = {"settings": {}, "tasks": {}}
    judgments = []
    pos = 0
    for plan in plans:
        n = len(plan.requests)
        mine = outcomes[pos : pos + n]
        result["tasks"][plan.task] = task_result(plan, mine)
        for (doc_id, req), o in zip(plan.requests, mine):
            judgments.append(
                {
                    "task": plan.task, "doc_id": doc_id, "output": req.output, "round": req.round,
                    "swapped": req.swapped, "cached": o.cached, "error": o.error,
                    "answer": None if o.answer is None else asdict(o.answer),
                    "value": None if o.answer is None else plan.protocol.parse(req, judge_text(o.answer.content)),
                }
            )  # fmt: skip
        pos += n
    n_errors = sum(o.answer is None for o in outcomes)
    return JudgeRun(result, n_errors, seconds, judgments)


def merge_into_score(score: dict, judged: dict) -> dict:
    """A copy of a ``score`` JSON with the judge's task values and per-prompt values added (joined on doc_id; rows
    of docs the score JSON lacks are appended), the judge's settings added to its settings."""
    import copy

    out = copy.deepcopy(score)
    out["settings"] = {**(out.get("settings") or {}), **judged["settings"]}
    for task, entry in judged["tasks"].items():
        target = out["tasks"].setdefault(task, {"n_prompts": entry["n_prompts"], "k": entry["k"], "metrics": {}})
        target.setdefault("metrics", {}).update(entry["metrics"])
        rows = target.setdefault("per_prompt", [])
        by_doc = {r.get("doc_id"): r for r in rows}
        for row in entry["per_prompt"]:
            if row["doc_id"] in by_doc:
                by_doc[row["doc_id"]].update({k: v for k, v in row.items() if k != "doc_id"})
            else:
                rows.append(dict(row))
        target.setdefault("diagnostics", {}).update(entry["diagnostics"])
    return out
