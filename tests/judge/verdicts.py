"""Scripted judging for the tests: outputs carry a marker, the scripted judge answers by it, and the expected
scores follow by hand from the markers.

Markers in an output (or the base model's output):

* summaries: ``[good]`` the candidate ranks first, ``[bad]`` second, ``[tie]`` both first, ``[prose]`` like good
  but the ranking is wrapped in prose, ``[dict]`` an answer shaped as one dict (not a list: unparsed),
  ``[garbage]`` no ranking at all (unparsed), ``[refuse]`` a refusal;
* WB-Score: ``[score=N]`` the judge gives N in a JSON object after its analysis, ``[loose=N]`` the same in a
  broken JSON object (read by the regex fallback), ``[refuse]`` a refusal;
* Arena: ``[q=N]`` a quality level; the verdict compares A's level with B's (a difference of 2 or more is
  ``>>``); ``[biasA]`` makes the judge always answer ``[[A>B]]``;
* transport: ``[slow]`` the first attempt answers after the client's timeout, ``[flaky]`` the first attempt is a
  500, ``[ratelimit]`` a 429, ``[badreq]`` always a 400.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lm_eval_diversity.catalogue.tasks import get_task
from lm_eval_diversity.loader import DEMO_DATA_DIR
from tests.judge.scripted_server import Reply

TIMESTAMP = "2026-11-25T12-00-00.000000"
SLOW_S = 2.5  # the tests give the client a 1 s timeout


def demo_docs(task: str) -> list[dict]:
    """The shipped demo docs of a task (real field layout)."""
    spec = get_task(task).dataset
    path = Path(DEMO_DATA_DIR) / spec.local_path
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_task_samples(directory: Path, task: str, docs: list[dict], outputs: list[list[str]]) -> Path:
    """``samples_diversity_<task>_<ts>.jsonl`` as lm-eval writes it: the doc, the prompt, K responses per doc."""
    record = get_task(task)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"samples_{record.task_name}_{TIMESTAMP}.jsonl"
    lines = []
    for doc_id, (doc, outs) in enumerate(zip(docs, outputs)):
        lines.append(
            json.dumps(
                {
                    "doc_id": doc_id,
                    "doc": doc,
                    "target": record.target(doc),
                    "arguments": {"gen_args_0": {"arg_0": record.prompt(doc), "arg_1": {"until": []}}},
                    "resps": [list(outs)],
                    "filtered_resps": [list(outs)],
                    "filter": "div",
                    "metrics": ["ead"],
                }
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_MARKER_RE = re.compile(r"\[(good|bad|tie|prose|dict|garbage|refuse|slow|flaky|ratelimit|badreq)\]")


def _marker(text: str, name: str) -> bool:
    return f"[{name}]" in text


def _summary_answer(user: str) -> Reply:
    a = user.split("Summary A:", 1)[1].split("Summary B:", 1)[0]
    b = user.split("Summary B:", 1)[1]
    candidate_first = _MARKER_RE.search(a) is not None
    text = a if candidate_first else b
    cand, other = ("model_1", "model_2") if candidate_first else ("model_2", "model_1")
    if _marker(text, "refuse"):
        return Reply(content="", refusal="I can't help with ranking these.")
    if _marker(text, "garbage"):
        return Reply(content="Both summaries have merits; I cannot decide.")
    if _marker(text, "dict"):
        return Reply(content=f"{{'model': '{cand}', 'rank': 1}}")
    if _marker(text, "tie"):
        ranks = {cand: 1, other: 1}
    elif _marker(text, "bad"):
        ranks = {cand: 2, other: 1}
    else:
        ranks = {cand: 1, other: 2}
    listing = "[" + ", ".join(f"{{'model': '{m}', 'rank': {r}}}" for m, r in sorted(ranks.items())) + "]"
    if _marker(text, "prose"):
        return Reply(content=f"Here is my ranking:\n{listing}\nThe first summary covers the key points.")
    return Reply(content=listing)


def _wb_answer(user: str) -> Reply:
    response = user.split("<|begin_of_response|>", 1)[1].split("<|end_of_response|>", 1)[0]
    if _marker(response, "refuse"):
        return Reply(content="", refusal="I can't evaluate this.")
    m = re.search(r"\[(score|loose)=(\d+)\]", response)
    if m is None:
        return Reply(content="The response is fine. No rating.")
    kind, n = m.groups()
    analysis = 'The response addresses the query. {"note": "a first object without a score"}\n'
    if kind == "score":
        return Reply(content=analysis + json.dumps({"strengths": "clear", "weaknesses": "short", "score": n}))
    return Reply(content=analysis + '{"strengths": "clear", "weaknesses": "short", "score": ' + n)


def _level(answer: str) -> int:
    return int(re.search(r"\[q=(\d+)\]", answer).group(1))


def _arena_answer(user: str) -> Reply:
    a = user.split("<|The Start of Assistant A's Answer|>", 1)[1].split("<|The End of Assistant A's Answer|>")[0]
    b = user.split("<|The Start of Assistant B's Answer|>", 1)[1].split("<|The End of Assistant B's Answer|>")[0]
    if _marker(a, "biasA") or _marker(b, "biasA"):
        return Reply(content="A reads better. My final verdict is: [[A>B]]")
    diff = _level(a) - _level(b)
    label = {2: "A>>B", 1: "A>B", 0: "A=B", -1: "B>A", -2: "B>>A"}[max(-2, min(2, diff))]
    return Reply(content=f"Comparing both stories carefully.\n\nMy final verdict is [[{label}]].")


def decide(body: dict, attempt: int) -> Reply:
    """The scripted judge of these tests (see the module docstring)."""
    user = body["messages"][-1]["content"]
    if "[badreq]" in user:
        return Reply(status=400)
    if attempt == 0 and "[flaky]" in user:
        return Reply(status=500, headers={"retry-after-ms": "10"})
    if attempt == 0 and "[ratelimit]" in user:
        return Reply(status=429, headers={"retry-after-ms": "10"})
    if attempt == 0 and "[slow]" in user:
        return Reply(content="too late", delay_s=SLOW_S)
    if user.startswith("<|User Prompt|>"):
        return _arena_answer(user)
    if user.startswith("# Instruction"):
        return _wb_answer(user)
    return _summary_answer(user)
