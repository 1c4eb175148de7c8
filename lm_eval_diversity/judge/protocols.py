"""The paper's three LLM-judge protocols as pure functions: what the judge is shown, in which order, how its answer
is read and how answers become a task score (docs/quality.md, "LLM judges").

Nothing here touches the network or lm-eval. A protocol turns one prompt's outputs into :class:`Request` objects
(chat messages plus sampling limits), reads each answer into a number with :meth:`Protocol.parse`, and
:func:`prompt_scores` folds the numbers of one prompt into its per-prompt values.

The prompt wordings are the published protocols' (the summary-ranking prompt of Rafailov et al. used by Kirk et al.,
ICLR 2024; WildBench's WB-Score checklist prompt, Lin et al., ICLR 2025; Arena-Hard-Auto's pairwise judge prompt),
laid out exactly as the paper's judge scripts send them so that the judge sees byte-identical text;
``tests/judge/test_reference_prompts.py`` checks every rendered prompt and every parser against the paper's own
functions. Where the paper's parsers crash on a malformed answer (an unhashable literal, a rank that is not a
number), these return "unparsed" instead.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lm_eval_diversity.catalogue.tasks import JudgeSpec, find_task, task_records
from lm_eval_diversity.preprocess import strip_cot

NAN = float("nan")


@dataclass(frozen=True)
class Request:
    """One judge call: the chat messages (``(role, content)`` pairs) and the most tokens it may answer with.

    ``output`` is the index of the judged output among the prompt's K; ``round`` the position round (pairwise
    protocols judged in both orders); ``swapped``: the candidate is shown second."""

    messages: tuple[tuple[str, str], ...]
    max_tokens: int
    output: int = 0
    round: int = 1
    swapped: bool = False

    def as_openai(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class Material:
    """What one prompt gives a protocol: the prompt as the model saw it (lm-eval's ``doc_to_text``), the task's
    reference (``doc_to_target``), the CoT-stripped outputs to judge and, for protocols against another model, that
    model's CoT-stripped output #0 (``opponent``)."""

    task: str
    query: str
    reference: str
    outputs: tuple[str, ...]
    opponent: str | None = None


# --- summarisation: pairwise ranking against the reference summary ------------------------------------------------

SUMMARY_SYSTEM = "You are a helpful assistant, that ranks models by the quality of their answers."
_SUMMARY_QUESTION = (
    "Which of the following summaries does a better job of summarizing the most important points in the given "
    "{doc_type}, without including unimportant or irrelevant details? A good summary is both precise and concise."
)
_SUMMARY_INSTRUCTIONS = (
    "Now please rank the models by the quality of their summaries, so that the model with rank 1 has the best "
    "summary. Then return a list of the model names and ranks, i.e., produce the following output:\n"
    "[{'model': <model-name>, 'rank': <model-rank>},\n {'model': <model-name>, 'rank': <model-rank>}]\n\n"
    "Your response must be a valid Python dictionary and should contain nothing else because we will directly "
    "execute it in Python. Please provide the ranking that the majority of humans would give."
)
_SUMMARY_END = "\nTL;DR:"


def summary_source(query: str, task: str) -> str:
    """The document of a summarisation prompt without its scaffolding: the text after the first ``POST: `` (TL;DR)
    or ``ARTICLE: `` (CNN/DM, XSum) up to the last ``\\nTL;DR:`` (or a trailing ``TL;DR:``), stripped; the whole
    prompt when the marker is absent."""
    marker = judge_spec(task).source_marker
    start = query.find(marker)
    body = query[start + len(marker) :] if start >= 0 else query
    end = body.rfind(_SUMMARY_END)
    if end >= 0:
        body = body[:end]
    else:
        body = body.rstrip()
        if body.endswith(_SUMMARY_END.lstrip()):
            body = body[: -len(_SUMMARY_END.lstrip())].rstrip()
    return body.strip()


def summary_swapped(source: str, candidate: str, reference: str) -> bool:
    """Position rule: the reference is shown first when the last hex digit of SHA-256 of ``source``, the candidate
    and the reference joined by ``"\\n||\\n"`` (UTF-8) is odd. Deterministic, so about half of the pairs swap."""
    payload = f"{source}\n||\n{candidate}\n||\n{reference}".encode()
    return int(hashlib.sha256(payload).hexdigest()[-1], 16) % 2 == 1


def summary_user_prompt(source: str, summary_a: str, summary_b: str, doc_type: str) -> str:
    """The ranking prompt: the question, the document in triple quotes, the two summaries as model_1 / model_2."""
    shown = [
        _SUMMARY_QUESTION.format(doc_type=doc_type),
        f'Post: """{source}"""',
        'Summary A:\n{"model": "model_1", "summary": """' + summary_a + '"""}',
        'Summary B:\n{"model": "model_2", "summary": """' + summary_b + '"""}',
        _SUMMARY_INSTRUCTIONS,
    ]
    return "\n\n".join(shown)


_LIST_RE = re.compile(r"\[.*\]", re.DOTALL)
_RANK_RE = re.compile(r"['\"]model['\"]\s*:\s*['\"](\w+)['\"].*?['\"]rank['\"]\s*:\s*(\d+)", re.DOTALL)


def _literal(text: str) -> Any:
    """``ast.literal_eval`` that returns None for anything it cannot evaluate (also unhashable keys, deep nesting)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_ranking(text: str) -> str | None:
    """``"win"`` / ``"loss"`` / ``"tie"`` of model_1 (the summary shown first) from the judge's ranking, or None.

    Read in order: the whole answer as a Python literal; else the span from the first ``[`` to the last ``]`` as a
    literal; else every ``'model': 'NAME' ... 'rank': N`` pair (the last pair of a name wins). The result must be a
    non-empty list; entries that are dicts with ``model`` and ``rank`` give each model its rank (``int(rank)``);
    model_1 wins with the smaller rank, ties with an equal one. Anything else (a dict, no rank for a model, a rank
    that is not a number) is unparsed."""
    text = text.strip()
    parsed = _literal(text)
    if parsed is None:
        span = _LIST_RE.search(text)
        if span:
            parsed = _literal(span.group(0))
    if parsed is None:
        ranks = {m.group(1): int(m.group(2)) for m in _RANK_RE.finditer(text)}
        if ranks:
            parsed = [{"model": k, "rank": v} for k, v in ranks.items()]
    if not parsed or not isinstance(parsed, list):
        return None
    rank: dict[str, int] = {}
    for entry in parsed:
        if isinstance(entry, dict) and "model" in entry and "rank" in entry:
            try:
                rank[str(entry["model"])] = int(entry["rank"])
            except (TypeError, ValueError, OverflowError):
                return None
    r1, r2 = rank.get("model_1"), rank.get("model_2")
    if r1 is None or r2 is None:
        return None
    return "win" if r1 < r2 else "loss" if r1 > r2 else "tie"


_OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
_FLIP = {"win": "loss", "loss": "win", "tie": "tie"}


# --- WildBench: WB-Score checklist ----------------------------------------------------------------------------------

NO_CHECKLIST = "- No specific checklist provided."
_WB_TEMPLATE = """# Instruction

You are an expert evaluator. Your task is to evaluate the quality of the responses generated by AI models. \
We will provide you with the user query and an AI-generated responses. You should first read the user query \
carefully for analyzing the task, and then evaluate the quality of the responses based on and rules provided below.

## Current User Query
<|begin_of_query|>
{query}
<|end_of_query|>

## AI Response
<|begin_of_response|>
{response}
<|end_of_response|>

# Evaluation

## Checklist
<|begin_of_checklist|>
{checklist}
<|end_of_checklist|>

Please use this checklist to guide your evaluation, but do not limit your assessment to the checklist.

## Rules

You should compare the above response based on your analysis of the user queries. You should first write down \
your analysis and the checklist that you used for the evaluation, and then provide your assessment according to \
the checklist. The scores are in the range of 1~10, where 1 means the response is very poor and 10 means the \
response is perfect.
Here are more detailed criteria for the scores:
- Score 1~2: The response is very poor and does not make sense at all.
- Score 3~4: The response is poor and does not help user solve the problem in a meaningful way.
- Score 5~6: The response is fair but has some issues (e.g., factual errors, hallucinations, missing key \
information).
- Score 7~8: The response is good enough but could be improved in some ways.
- Score 9~10: The response is perfect and provides helpful information that can help user solve the problem.

## Output Format
First, please output your analysis for the model response, and then summarize your assessment to two aspects: \
"strengths" and "weaknesses"; Finally, please write down your rating for the assessment.

Please provide your evaluation results in the following json format by filling in the placeholders in []:
{{"strengths": "[analysis for the strengths of the response]", "weaknesses": "[analysis for the weaknesses of \
the response]", "score": "[1~10]"}}"""


def wb_checklist(reference: str) -> str:
    """The checklist as bullets: the task's reference (the checklist joined by ``"; "``) split on ``"; "``, one
    ``- item`` line per non-blank item; :data:`NO_CHECKLIST` when the reference is blank."""
    if not reference.strip():
        return NO_CHECKLIST
    return "\n".join(f"- {item}" for item in reference.strip().split("; ") if item.strip())


def wb_user_prompt(query: str, response: str, checklist: str) -> str:
    """The WB-Score prompt (no system message) with the query, the response and the bulleted checklist."""
    return _WB_TEMPLATE.format(query=query, response=response, checklist=checklist)


_WB_JSON_RE = re.compile(r'\{[^{}]*"score"[^{}]*\}', re.DOTALL)
_WB_KEY_RE = re.compile(r'"score"\s*:\s*"?(\d+)"?')
_WB_BARE_RE = re.compile(r"[Ss]core\s*[:=]\s*(\d+)")


def _in_scale(value: int) -> int | None:
    return value if 1 <= value <= 10 else None


def parse_wb_score(text: str) -> int | None:
    """The 1-10 score of a WB-Score answer, or None.

    Read in order: the ``{...}`` objects without nested braces that mention ``"score"``, last first, as JSON, whose
    ``score`` (a number or a quoted integer) is an integer in 1..10; else the first ``"score": N`` (N digits,
    optionally quoted); else the first ``Score: N`` / ``score = N``. A value outside 1..10 at a step moves on to the
    next step."""
    if not text or not text.strip():
        return None
    for candidate in reversed(_WB_JSON_RE.findall(text)):
        try:
            value = json.loads(candidate).get("score")
            if value is not None:
                score = _in_scale(int(str(value).strip().strip('"')))
                if score is not None:
                    return score
        except (ValueError, TypeError, AttributeError, RecursionError):
            continue
    for pattern in (_WB_KEY_RE, _WB_BARE_RE):
        match = pattern.search(text)
        if match:
            score = _in_scale(int(match.group(1)))
            if score is not None:
                return score
    return None


def wb_normalised(raw: float) -> float:
    """WB-Score's reported scale: (score - 5) * 2, so 1..10 maps to -8..10 and 5 ("fair") to 0."""
    return (raw - 5.0) * 2.0


# --- WritingPrompts: Arena-Hard pairwise against the base model ----------------------------------------------------

ARENA_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the "
    "user prompt displayed below. You will be given assistant A's answer and assistant B's answer. Your job is to "
    "evaluate which assistant's answer is better.\n\n"
    "When evaluating the assistants' answers, compare both assistants' answers. You must identify and correct any "
    "mistakes or inaccurate information.\n\n"
    "Then consider if the assistant's answers are helpful, relevant, and concise. Helpful means the answer correctly "
    "responds to the prompt or follows the instructions. Note when user prompt has any ambiguity or more than one "
    "interpretation, it is more helpful and appropriate to ask for clarifications or more information from the user "
    "than providing an answer based on assumptions. Relevant means all parts of the response closely connect or are "
    "appropriate to what is being asked. Concise means the response is clear and not verbose or excessive.\n\n"
    "Then consider the creativity and novelty of the assistant's answers when needed. Finally, identify any missing "
    "important information in the assistants' answers that would be beneficial to include when responding to the "
    "user prompt.\n\n"
    "After providing your explanation, you must output only one of the following choices as your final verdict with "
    "a label:\n\n"
    "1. Assistant A is significantly better: [[A>>B]]\n"
    "2. Assistant A is slightly better: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n"
    "4. Assistant B is slightly better: [[B>A]]\n"
    "5. Assistant B is significantly better: [[B>>A]]\n\n"
    'Example output: "My final verdict is tie: [[A=B]]".'
)
ARENA_SCORES = {"A>>B": 1.0, "A>B": 0.75, "A=B": 0.5, "B>A": 0.25, "B>>A": 0.0}  # from A's side
_ARENA_RE = re.compile(r"\[\[(A>>B|A>B|A=B|B>A|B>>A)\]\]")


def arena_user_prompt(question: str, answer_a: str, answer_b: str) -> str:
    """The user turn: the prompt, then assistant A's and assistant B's answers between start/end markers."""
    return (
        f"<|User Prompt|>\n{question}\n\n"
        f"<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant A's Answer|>\n\n"
        f"<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of Assistant B's Answer|>"
    )


def parse_arena_verdict(text: str) -> str | None:
    """The first ``[[A>>B]]``-style label in the answer (``A>>B``, ``A>B``, ``A=B``, ``B>A``, ``B>>A``), or None."""
    match = _ARENA_RE.search(text)
    return match.group(1) if match else None


# --- the protocols --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """One judge protocol: its tasks, the per-prompt metric it reports, its answer budget and, for the estimate,
    the answer length a judge typically writes (tokens)."""

    name: str
    description: str
    metric: str
    max_tokens: int
    typical_answer_tokens: int
    needs_opponent: bool = False

    def requests(self, m: Material) -> list[Request]:
        """The judge calls for one prompt (empty when the protocol skips it; :meth:`skip_reason` says why)."""
        raise NotImplementedError

    def skip_reason(self, m: Material) -> str | None:
        """Why a prompt is not judged at all (None: it is)."""
        return None

    def parse(self, request: Request, answer: str) -> float | None:
        """The request's number from the judge's answer (the candidate's side), None when unparsed."""
        raise NotImplementedError

    def verdict_label(self, request: Request, value: float) -> str:
        """How a parsed judgement is counted in the diagnostics."""
        return f"{value:g}"

    def prompt_values(self, parsed: Mapping[tuple[int, int], float | None]) -> dict[str, float]:
        """One prompt's values from its parsed requests, keyed ``(output, round)`` (None: unparsed or failed): the
        mean over the judged outputs; NaN when none parsed."""
        return {self.metric: _mean([v for v in parsed.values() if v is not None])}

    def template_digest(self) -> str:
        """SHA-256 of the protocol rendered on fixed placeholder material: changes whenever a prompt wording does."""
        probe = Material(_probe_task(), "SUBREDDIT: s\nTITLE: t\nPOST: q\nTL;DR:", "r; c", ("x",), "y")
        text = json.dumps([r.messages for r in self.requests(probe)])
        return hashlib.sha256(text.encode()).hexdigest()


class SummaryRanking(Protocol):
    """Summarisation: each judged output against the reference summary, order by :func:`summary_swapped`; the
    score is 1 for a win, 0.5 for a tie, 0 for a loss, so the mean is the win rate (wins + ties / 2) / n."""

    def skip_reason(self, m: Material) -> str | None:
        if not m.reference.strip():
            return "no reference summary"
        if not summary_source(m.query, m.task):
            return "no source text in the prompt"
        return None

    def requests(self, m: Material) -> list[Request]:
        if self.skip_reason(m):
            return []
        source, reference = summary_source(m.query, m.task), m.reference.strip()
        doc_type = judge_spec(m.task).doc_type
        out = []
        for i, candidate in enumerate(m.outputs):
            if not candidate:
                continue  # an empty summary is not judged (the paper's rule); counted as skipped
            swapped = summary_swapped(source, candidate, reference)
            a, b = (reference, candidate) if swapped else (candidate, reference)
            user = summary_user_prompt(source, a, b, doc_type)
            out.append(Request((("system", SUMMARY_SYSTEM), ("user", user)), self.max_tokens, i, 1, swapped))
        return out

    def verdict_label(self, request: Request, value: float) -> str:
        return {1.0: "win", 0.5: "tie", 0.0: "loss"}[value]

    def parse(self, request: Request, answer: str) -> float | None:
        outcome = parse_ranking(answer)
        if outcome is None:
            return None
        return _OUTCOME_SCORE[_FLIP[outcome] if request.swapped else outcome]


class WBScore(Protocol):
    """WildBench: each judged output scored 1-10 against the checklist; reported as (mean - 5) * 2."""

    def prompt_values(self, parsed: Mapping[tuple[int, int], float | None]) -> dict[str, float]:
        """``judge_wb_score`` = (mean raw score - 5) * 2 and ``judge_wb_raw`` = the mean raw score (1-10)."""
        raw = _mean([v for v in parsed.values() if v is not None])
        return {self.metric: wb_normalised(raw), "judge_wb_raw": raw}

    def skip_reason(self, m: Material) -> str | None:
        return None if m.query else "empty prompt"

    def requests(self, m: Material) -> list[Request]:
        if self.skip_reason(m):
            return []
        checklist = wb_checklist(m.reference)
        return [
            Request((("user", wb_user_prompt(m.query, output, checklist)),), self.max_tokens, i)
            for i, output in enumerate(m.outputs)
        ]

    def parse(self, request: Request, answer: str) -> float | None:
        score = parse_wb_score(answer)
        return None if score is None else float(score)


class ArenaPairwise(Protocol):
    """WritingPrompts: each judged output against the base model's output #0, twice (round 1: candidate as A;
    round 2: base as A, score flipped to the candidate's side); a prompt counts when both rounds parse."""

    def skip_reason(self, m: Material) -> str | None:
        if m.opponent is None:
            return "no base-model output for this prompt"
        if not m.opponent.strip():
            return "empty base-model output"
        return None

    def requests(self, m: Material) -> list[Request]:
        if self.skip_reason(m):
            return []
        question = m.query.strip()
        out = []
        for i, candidate in enumerate(m.outputs):
            if not candidate.strip():
                continue  # the paper drops pairs with an empty side; counted as skipped
            for rnd, (a, b) in ((1, (candidate, m.opponent)), (2, (m.opponent, candidate))):
                user = arena_user_prompt(question, a, b)
                out.append(Request((("system", ARENA_SYSTEM), ("user", user)), self.max_tokens, i, rnd, rnd == 2))
        return out

    def prompt_values(self, parsed: Mapping[tuple[int, int], float | None]) -> dict[str, float]:
        """Per output, (round 1 + round 2) / 2 when both rounds parsed; the metric is their mean over the prompt's
        outputs, ``<metric>_r1`` / ``<metric>_r2`` the rounds' means over the same outputs."""
        both = [o for o in sorted({o for o, _ in parsed}) if parsed.get((o, 1)) is not None
                and parsed.get((o, 2)) is not None]  # fmt: skip
        r1 = [parsed[(o, 1)] for o in both]
        r2 = [parsed[(o, 2)] for o in both]
        return {
            self.metric: _mean([(a + b) / 2 for a, b in zip(r1, r2)]),
            f"{self.metric}_r1": _mean(r1),
            f"{self.metric}_r2": _mean(r2),
        }

    def verdict_label(self, request: Request, value: float) -> str:
        return f"round {request.round}: {value:g}"

    def parse(self, request: Request, answer: str) -> float | None:
        verdict = parse_arena_verdict(answer)
        if verdict is None:
            return None
        score = ARENA_SCORES[verdict]
        return 1.0 - score if request.round == 2 else score


SUMMARY = SummaryRanking(
    "summary_ranking", "pairwise ranking against the reference summary (Kirk et al. 2024)", "judge_win_rate", 256, 40
)
WB_SCORE = WBScore("wb_score", "WB-Score checklist grading, 1-10 (Lin et al. 2025)", "judge_wb_score", 1024, 450)
ARENA = ArenaPairwise(
    "arena_pairwise", "Arena-Hard pairwise against the base model's output #0, both orders", "judge_win_rate_vs_base",
    1024, 500, needs_opponent=True,
)  # fmt: skip
PROTOCOLS = {p.name: p for p in (SUMMARY, WB_SCORE, ARENA)}


def judge_spec(task: str) -> JudgeSpec:
    """How the task's record says it is judged (a task without one reads as an unmarked document)."""
    record = find_task(task)
    return record.judge if record is not None and record.judge is not None else JudgeSpec("")


def task_protocol(task: str, *, asked: bool = False) -> Protocol | None:
    """The judge protocol of a task (its record's ``judge``): the paper's judged tasks always, an opt-in one (listed
    by the paper, never judged: WB-Score with the paper's own no-checklist line) only when ``asked`` for by name."""
    spec = judge_spec(task)
    if not spec.protocol or (spec.opt_in and not asked):
        return None
    return PROTOCOLS[spec.protocol]


def judged_task_names(*, opt_in: bool = False) -> tuple[str, ...]:
    """The catalogue's tasks the judge reads by default (``opt_in``: those judged only when named)."""
    return tuple(r.name for r in task_records() if r.judge is not None and r.judge.opt_in == opt_in)


def _probe_task() -> str:
    """The task of the digest's fixed material: the first summarisation task whose prompt marks its source."""
    return next(r.name for r in task_records() if r.judge and r.judge.source_marker != JudgeSpec("").source_marker)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else NAN


def judge_text(answer: str) -> str:
    """The part of a judge's answer that is parsed: its own ``<think>`` block removed (a no-op for judges that do
    not think aloud, such as the paper's)."""
    return strip_cot(answer)
