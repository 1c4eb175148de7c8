"""``lm-eval-diversity judge`` end to end: the real ``openai`` client against a local scripted endpoint.

The outputs carry markers the scripted judge answers by (tests/judge/verdicts.py), so every expected score below is
worked out by hand from the markers; the server keeps every request, so the rendering, the order swaps, the retries
and the cache are checked on what was actually sent.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from lm_eval_diversity.cli import main
from tests.judge.scripted_server import ScriptedJudge
from tests.judge.verdicts import decide, demo_docs, write_task_samples

pytest.importorskip("openai")

SECRET = "sk-test-secret-never-recorded"

TLDR_FIRST = [  # output #0 decides the paper's score; #1 and #2 are judged with --judge_outputs all
    ["[good] Roommate eats my food.", "[bad] Food.", "[tie] Roommate and food."],
    ["[bad] A raise.", "[good] Raise: pay the loan or save?", ""],
    ["[tie] Summary of the post.", "[tie] Same.", "[good] Better."],
    ["<think>draft [bad]</think>[prose] The gist.", "[garbage] x", "[good] y"],
    ["[garbage] Cannot summarise.", "[bad] no", "[bad] no"],
]
CNN_FIRST = [
    ["[flaky][good] a"],
    ["[ratelimit][bad] b"],
    ["[slow][tie] c"],
    ["[badreq][good] d"],
    ["[refuse] e"],
]
WB_FIRST = [
    ["[score=7] menu"],
    ["[score=9] intervals"],
    ["[loose=4] weather"],
    ["[score=11] out of range"],
    ["[refuse] nothing"],
    ["<think>plan [score=1]</think>[score=3] answer"],
]
WP_BASE = [["[q=2] base story"]] * 5 + [[""]]
WP_MODEL = [["[q=4] s"], ["[q=3] s"], ["[q=2] s"], ["[q=1] s"], ["[q=2][biasA] s"], ["[q=5] s"]]


@pytest.fixture()
def runs(tmp_path):
    """A model run with the five judged tasks and its base run (writingprompts only)."""
    run, base = tmp_path / "run", tmp_path / "base"
    for task, outs in (("tldr", TLDR_FIRST), ("cnn_dailymail", CNN_FIRST), ("wildbench", WB_FIRST)):
        write_task_samples(run, task, demo_docs(task)[: len(outs)], outs)
    write_task_samples(run, "writingprompts", demo_docs("writingprompts"), WP_MODEL)
    write_task_samples(base, "writingprompts", demo_docs("writingprompts"), WP_BASE)
    return run, base


@pytest.fixture()
def judge(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ScriptedJudge(decide) as server:
        yield server


def _judge(server, run, base, out, *extra) -> int:
    return main(
        [
            "judge", str(run), "--judge_model", "scripted-judge", "--base_url", server.base_url,
            "--judge_base", str(base), "--timeout_s", "1", "--max_retries", "2", "--concurrency", "4",
            "--output_path", str(out), *extra,
        ]
    )  # fmt: skip


def _metric(result: dict, task: str, name: str) -> float:
    return result["tasks"][f"diversity_{task}"]["metrics"][name]["per_input_mean"]


def test_judge_scores_equal_hand_computation(judge, runs, tmp_path):
    run, base = runs
    out = tmp_path / "judged.json"
    cache = tmp_path / "cache.sqlite"
    rc = _judge(judge, run, base, out, "--cache_path", str(cache), "--log_judgments")
    assert rc == 1  # one request (the 400) failed: reported, left out, exit 1
    result = json.loads(out.read_text())

    # tldr: win, loss, tie, win (CoT stripped, ranking in prose), unparsed -> (1 + 0 + 0.5 + 1) / 4
    assert _metric(result, "tldr", "judge_win_rate") == pytest.approx(0.625)
    tldr = result["tasks"]["diversity_tldr"]
    assert [r["judge_win_rate"] for r in tldr["per_prompt"]] == [1.0, 0.0, 0.5, 1.0, None]
    assert tldr["diagnostics"]["judge"]["n_unparsed"] == 1
    assert tldr["diagnostics"]["judge"]["verdicts"] == {"loss": 1, "tie": 1, "win": 2}
    # cnn: retried 500 -> win, retried 429 -> loss, timed out then tie, 400 -> error, refusal -> unparsed
    assert _metric(result, "cnn_dailymail", "judge_win_rate") == pytest.approx(1.5 / 3)
    cnn = result["tasks"]["diversity_cnn_dailymail"]["diagnostics"]["judge"]
    assert (cnn["n_errors"], cnn["n_unparsed"], cnn["n_refused_or_empty"]) == (1, 1, 1)
    assert "HTTP 400" in cnn["errors"][0]
    # wildbench: 7, 9, 4 (broken JSON, regex fallback), 11 out of range, refusal, 3 (after the judged output's CoT)
    assert _metric(result, "wildbench", "judge_wb_raw") == pytest.approx((7 + 9 + 4 + 3) / 4)
    assert _metric(result, "wildbench", "judge_wb_score") == pytest.approx(((7 + 9 + 4 + 3) / 4 - 5) * 2)
    # writingprompts vs base [q=2]: levels 4, 3, 2, 1 and a judge biased to A; the last base output is empty
    # round 1 (model = A): 1, .75, .5, .25, .75; round 2 (base = A, flipped): 1, .75, .5, .25, .25
    assert _metric(result, "writingprompts", "judge_win_rate_vs_base_r1") == pytest.approx(3.25 / 5)
    assert _metric(result, "writingprompts", "judge_win_rate_vs_base_r2") == pytest.approx(2.75 / 5)
    assert _metric(result, "writingprompts", "judge_win_rate_vs_base") == pytest.approx(3.0 / 5)
    wp = result["tasks"]["diversity_writingprompts"]["diagnostics"]["judge"]
    assert wp["skipped"] == {"empty base-model output": 1}

    # transport: 500, 429 and the timeout each retried once; the 400 never; 5 + 5 + 6 + 10 requests otherwise
    sent = [m["messages"][-1]["content"] for m in judge.received]
    assert len(sent) == 5 + 5 + 6 + 10 + 3  # each request once (the 400 too), plus the three retries
    assert sum("[badreq]" in s for s in sent) == 1
    assert all(sum(f"[{m}]" in s for s in sent) == 2 for m in ("flaky", "ratelimit", "slow"))
    assert all(m["temperature"] == 0 and m["model"] == "scripted-judge" for m in judge.received)

    # settings recorded, the key nowhere
    settings = result["settings"]
    assert settings["judge_model"] == "scripted-judge" and settings["judge_outputs"] == "first"
    assert settings["judge_protocols"]["diversity_tldr"]["max_tokens"] == 256
    assert settings["judge_protocols"]["diversity_wildbench"]["max_tokens"] == 1024
    assert SECRET not in out.read_text() and SECRET not in out.with_suffix(".judgments.jsonl").read_text()
    log = [json.loads(line) for line in out.with_suffix(".judgments.jsonl").read_text().splitlines()]
    assert len(log) == 5 + 5 + 6 + 10 and sum(j["error"] is not None for j in log) == 1

    # a rerun costs nothing: every answered request comes from the cache, only the failed one is asked again
    before = len(judge.received)
    out2 = tmp_path / "again.json"
    assert _judge(judge, run, base, out2, "--cache_path", str(cache)) == 1
    assert len(judge.received) == before + 1
    again = json.loads(out2.read_text())
    assert again["tasks"]["diversity_tldr"]["metrics"] == result["tasks"]["diversity_tldr"]["metrics"]
    assert again["tasks"]["diversity_tldr"]["diagnostics"]["judge"]["n_cached"] == 5


def test_summary_order_follows_the_sha256_rule(judge, runs, tmp_path):
    run, base = runs
    assert _judge(judge, run, base, tmp_path / "o.json", "--no_cache", "--tasks", "tldr") == 0
    docs = demo_docs("tldr")
    seen = 0
    for body in judge.received:
        user = body["messages"][-1]["content"]
        assert body["messages"][0] == {
            "role": "system",
            "content": "You are a helpful assistant, that ranks models by the quality of their answers.",
        }
        a = re.search(r'Summary A:\n\{"model": "model_1", "summary": """(.*?)"""\}', user, re.S).group(1)
        b = re.search(r'Summary B:\n\{"model": "model_2", "summary": """(.*?)"""\}', user, re.S).group(1)
        doc = next(d for d in docs if d["summary"].strip() in (a, b))
        candidate, reference = (b, a) if a == doc["summary"].strip() else (a, b)
        source = doc["post"].strip()
        digest = hashlib.sha256(f"{source}\n||\n{candidate}\n||\n{reference}".encode()).hexdigest()
        assert (a == reference) == (int(digest[-1], 16) % 2 == 1)  # reference first iff the last hex digit is odd
        assert f'Post: """{source}"""' in user and "given forum post, without" in user
        seen += 1
    assert seen == 5


def test_every_output_judged_with_judge_outputs_all(judge, runs, tmp_path):
    run, base = runs
    out = tmp_path / "all.json"
    assert _judge(judge, run, base, out, "--no_cache", "--tasks", "tldr", "--judge_outputs", "all") == 0
    rows = json.loads(out.read_text())["tasks"]["diversity_tldr"]["per_prompt"]
    # doc 0: good, bad, tie; doc 1: bad, good, (empty: not judged); doc 2: tie, tie, good;
    # doc 3: good (prose), unparsed, good; doc 4: unparsed, bad, bad
    assert [r["judge_win_rate"] for r in rows] == pytest.approx([0.5, 0.5, 2 / 3, 1.0, 0.0])
    assert len(judge.received) == 13  # 14 requests; doc 4's two identical outputs are one question, asked once


def test_estimate_sends_nothing_and_counts_cached_requests(judge, runs, tmp_path, capsys):
    run, base = runs
    cache = tmp_path / "c.sqlite"
    args = ["--cache_path", str(cache), "--tasks", "tldr,wildbench"]
    assert _judge(judge, run, base, tmp_path / "e.json", *args, "--estimate") == 0
    assert judge.received == [] and not (tmp_path / "e.json").exists()
    text = capsys.readouterr().out
    assert "diversity_tldr: 5 requests (0 cached, 5 to send)" in text
    assert "diversity_wildbench: 6 requests (0 cached, 6 to send)" in text
    assert "cost unknown" in text  # a model without a list price and no --price_*: tokens only
    assert _judge(judge, run, base, tmp_path / "e.json", *args) == 0
    assert _judge(judge, run, base, tmp_path / "e.json", *args, "--estimate", "--price_input", "1",
                  "--price_output", "2") == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "total: 11 requests (11 cached, 0 to send); ~0 input tokens" in text
    assert "~$0.00" in text


def test_bad_inputs_fail_before_any_request(judge, runs, tmp_path, capsys):
    run, base = runs
    cases = [
        (["--tasks", "gsm8k"], "not among the run's tasks"),
        (["--tasks", "writingprompts", "--judge_base", str(tmp_path / "missing")], "no such file"),
        (["--judge_outputs", "some"], "invalid choice"),
        (["--concurrency", "0"], "--concurrency 0"),
        (["--score_json", str(tmp_path / "nope.json")], "--score_json"),
    ]
    for extra, message in cases:
        assert _judge(judge, run, base, tmp_path / "x.json", *extra) == 2
        assert message in capsys.readouterr().err
    assert judge.received == []
    wp_only = ["judge", str(run), "--judge_model", "m", "--base_url", judge.base_url, "--tasks", "writingprompts"]
    assert main(wp_only) == 2
    assert "--judge_base" in capsys.readouterr().err


def test_unknown_model_stops_the_run(monkeypatch, runs, tmp_path, capsys):
    from tests.judge.scripted_server import Reply

    run, base = runs
    with ScriptedJudge(lambda body, attempt: Reply(status=404)) as server:
        assert _judge(server, run, base, tmp_path / "x.json", "--no_cache", "--concurrency", "1") == 2
        assert len(server.received) <= 2  # stopped at the first 404 (one more may have been in flight)
    assert "NotFoundError" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_results_merge_into_a_score_json_and_compare_reads_them(judge, runs, tmp_path, capsys):
    run, base = runs
    score = {
        "settings": {"sbert_model": "m"},
        "tasks": {"diversity_tldr": {"n_prompts": 5, "k": 3, "metrics": {"ead": {"per_input_mean": 0.5}},
                                     "per_prompt": [{"doc_id": i, "ead": 0.1 * i} for i in range(5)]}},
    }  # fmt: skip
    score_path = tmp_path / "score.json"
    score_path.write_text(json.dumps(score))
    out = tmp_path / "merged.json"
    assert _judge(judge, run, base, out, "--no_cache", "--tasks", "tldr", "--score_json", str(score_path)) == 0
    merged = json.loads(out.read_text())
    rows = merged["tasks"]["diversity_tldr"]["per_prompt"]
    assert rows[1] == {"doc_id": 1, "ead": 0.1, "judge_win_rate": 0.0}
    assert merged["settings"]["sbert_model"] == "m" and merged["settings"]["judge_model"] == "scripted-judge"
    capsys.readouterr()
    assert main(["compare", str(out), "--metrics", "ead,judge_win_rate", "--format", "csv"]) == 0
    table = capsys.readouterr().out
    assert "diversity_tldr,judge_win_rate,0.625" in table
