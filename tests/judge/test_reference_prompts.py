"""The judge protocols against the paper's own judge scripts, loaded from the reference repository at run time.

Set ``LMEDS_REFERENCE_REPO`` to a checkout (or a bare git directory) of ckarouzos/where-diversity-collapses; without
it these tests are skipped. Citations are file:line of that repository (HEAD f193bfa):

* ``scripts/compute_summarization_quality.py``: system prompt :49-51, ranking template :55-76, source extraction
  :115-154, order rule :103-112 (used :509-517), skips :496-507, request :426-449 (max_tokens 256), parser :169-230,
  swap undone :669-682, win rate :699;
* ``scripts/compute_wildbench_quality.py``: WB-Score template :62-99, checklist bullets :185-196, request :347-364
  (user message only, max_tokens 1024), parser :385-423, (mean - 5) * 2 :517;
* ``scripts/compute_writingprompts_quality.py``: Arena system prompt :59-75, user template :77-86, verdict scores
  :89-95, request :250-275, rounds :377-401, empty pairs dropped :361-364, parser :428-436, round 2 flipped
  :496-503, prompts with both rounds and the mean of the two round means :519-531.

Two checks: (1) the reference's whole ``prepare`` step runs on the same outputs written as lighteval details
parquets, and every request body it writes equals ours; (2) the reference's ``score`` step reads the scripted judge's
answers to its own requests, and its win rates / WB-Score equal ours from the same judge over HTTP. The parsers are
also compared answer by answer (where the reference raises, ours reports unparsed).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from lm_eval_diversity.catalogue.tasks import get_task
from lm_eval_diversity.judge import protocols as P
from lm_eval_diversity.judge.cache import JudgeCache
from lm_eval_diversity.judge.client import JudgeClient
from lm_eval_diversity.judge.run import JudgeSettings, plan_task, run_judge
from lm_eval_diversity.preprocess import strip_cot
from lm_eval_diversity.samples import read_samples
from tests.judge.scripted_server import ScriptedJudge
from tests.judge.verdicts import decide, demo_docs, write_task_samples

SCRIPTS = ("compute_summarization_quality", "compute_wildbench_quality", "compute_writingprompts_quality")
BASE_DIR = "allenai__OLMo-3-1025-7B"  # compute_writingprompts_quality.py:55
MODEL_DIR = "org__model"


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    root = os.environ.get("LMEDS_REFERENCE_REPO")
    if not root:
        pytest.skip("LMEDS_REFERENCE_REPO (the reference repository) not set")
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    src = Path(root)
    out = tmp_path_factory.mktemp("reference")
    modules = {}
    for name in SCRIPTS:
        rel = f"scripts/{name}.py"
        if (src / rel).is_file():
            text = (src / rel).read_text(encoding="utf-8")
        else:
            text = subprocess.run(
                ["git", f"--git-dir={src}", "show", f"HEAD:{rel}"], capture_output=True, text=True, check=True
            ).stdout
        (out / f"{name}.py").write_text(text, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"reference_{name}", out / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[name] = module
    return argparse.Namespace(summ=modules[SCRIPTS[0]], wb=modules[SCRIPTS[1]], arena=modules[SCRIPTS[2]])


TRICKY = 'naïve “quotes” """triple""" {braces} {0} \\n 🙂'
OUTPUTS = {  # (output #0 of each demo doc, with a second output that is not judged)
    "tldr": ["[good] Roommate eats food.", f"<think>plan {TRICKY}</think>\n[bad] {TRICKY}", "[tie] x",
             "  [prose] Loan or savings?  ", "[garbage] ?"],
    "cnn_dailymail": ["[good] Storm.", "[bad] A", "</think>[tie] orphan close", "", "[dict] d"],
    "xsum": ["[good] One line.", "[refuse] no", f"[prose] {TRICKY}", "[bad] b", "[good] g"],
    "wildbench": ["[score=7] menu", f"[loose=4] {TRICKY}", "[score=11] x", "[refuse] r", "<think>a</think>[score=2]",
                  "no marker at all"],
    "writingprompts": ["[q=4] s", "[q=3][biasA] s", f"[q=1] {TRICKY}", "[q=2] s", "   ", "[q=5] s"],
}  # fmt: skip
BASE_OUTPUTS = ["[q=2] b", "[q=2] b", "[q=3] b", "[q=2] b", "[q=2] b", ""]


def _parquet(path: Path, task: str, docs: list[dict], outputs: list[str]) -> None:
    import pandas as pd

    record = get_task(task)
    rows = [
        {"doc": {"query": record.prompt(d), "choices": [record.target(d)]}, "model_response": {"text": [o, "other"]}}
        for d, o in zip(docs, outputs)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)


def _details(runs: Path, experiment: str, model: str, task: str) -> Path:
    return runs / experiment / model / "details" / "x" / f"details_{task}_diversity|0_2026-01-01T00-00-00.parquet"


@pytest.fixture(scope="module")
def world(ref, tmp_path_factory):
    """The same outputs as lighteval details (reference side) and as lm-eval samples (our side)."""
    tmp = tmp_path_factory.mktemp("world")
    runs = tmp / "runs"
    docs = {t: demo_docs(t)[: len(o)] for t, o in OUTPUTS.items()}
    for task in ("tldr", "cnn_dailymail", "xsum"):
        _parquet(_details(runs, "diversity", MODEL_DIR, task), task, docs[task], OUTPUTS[task])
    for task in ("wildbench", "writingprompts"):
        _parquet(_details(runs, "open_ended", MODEL_DIR, task), task, docs[task], OUTPUTS[task])
    _parquet(_details(runs, "open_ended", BASE_DIR, "writingprompts"), "writingprompts", docs["writingprompts"],
             BASE_OUTPUTS)  # fmt: skip
    for task, outs in OUTPUTS.items():
        write_task_samples(tmp / "ours", task, docs[task], [[o, "other"] for o in outs])
    write_task_samples(tmp / "base", "writingprompts", docs["writingprompts"], [[o] for o in BASE_OUTPUTS])
    batches = tmp / "batches"
    ref.summ.prepare(argparse.Namespace(runs_dir=runs, output_dir=batches / "summ", dry_run=False))
    ref.wb.prepare(argparse.Namespace(runs_dir=str(runs), output=str(batches / "wb"), dry_run=False))
    ref.arena.prepare(argparse.Namespace(runs_dir=str(runs), batch_dir=str(batches / "wp"), dry_run=False))
    return argparse.Namespace(tmp=tmp, runs=runs, docs=docs, batches=batches)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _our_plans(world, settings: JudgeSettings) -> dict:
    ours = read_samples([world.tmp / "ours"])
    base = read_samples([world.tmp / "base"])["diversity_writingprompts"]
    opponents = {g.doc_id: (g.doc, g) for g in base.groups}
    return {
        t: plan_task(t, P.task_protocol(t), sf, settings, opponents)
        for t, sf in ours.items()
    }


def _body(messages, max_tokens) -> dict:
    return {"messages": [dict(m) for m in messages], "max_tokens": max_tokens, "temperature": 0}


SETTINGS = JudgeSettings("gpt-4.1-mini", "http://127.0.0.1:1/v1", judge_base="base")


def test_every_request_body_equals_the_references(world):
    plans = _our_plans(world, SETTINGS)
    expected = {
        "diversity_tldr": _read_jsonl(world.batches / "summ" / "batch_tldr.jsonl"),
        "diversity_cnn_dailymail": _read_jsonl(world.batches / "summ" / "batch_cnn_dailymail.jsonl"),
        "diversity_xsum": _read_jsonl(world.batches / "summ" / "batch_xsum.jsonl"),
        "diversity_wildbench": _read_jsonl(world.batches / "wb" / f"{MODEL_DIR}.jsonl"),
        "diversity_writingprompts": _read_jsonl(world.batches / "wp" / f"round1_{MODEL_DIR}.jsonl")
        + _read_jsonl(world.batches / "wp" / f"round2_{MODEL_DIR}.jsonl"),
    }
    for task, lines in expected.items():
        reqs = [r for _, r in plans[task].requests]
        if task.endswith("writingprompts"):  # the reference writes all of round 1, then all of round 2
            reqs = sorted(reqs, key=lambda r: r.round)
        theirs = [
            {k: line["body"][k] for k in ("messages", "max_tokens", "temperature")} | {"model": line["body"]["model"]}
            for line in lines
        ]
        mine = [_body(r.as_openai(), r.max_tokens) | {"model": "gpt-4.1-mini"} for r in reqs]
        assert mine == theirs, task
        assert len(mine) >= 3, task  # the cases above leave several requests per task
    # the reference's swap flags (its custom ids end in ||0 / ||1) are our order flags
    flags = [line["custom_id"].endswith("||1") for line in expected["diversity_tldr"]]
    assert flags == [r.swapped for _, r in plans["diversity_tldr"].requests]


def _answer_file(lines: list[dict], path: Path) -> None:
    rows = []
    for line in lines:
        reply = decide(line["body"], 1)
        rows.append({"custom_id": line["custom_id"], "response": {"body": {"choices": [
            {"message": {"content": reply.content}}]}}})  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_scores_equal_the_references_on_the_same_answers(ref, world, tmp_path):
    res = tmp_path / "results"
    summ = sorted((world.batches / "summ").glob("batch_*.jsonl"))
    for path in summ:
        if path.name != "batch_all_summarization.jsonl":
            _answer_file(_read_jsonl(path), res / "summ" / path.name)
    _answer_file(_read_jsonl(world.batches / "wb" / f"{MODEL_DIR}.jsonl"), res / "wb" / "r.jsonl")
    for rnd in (1, 2):
        name = f"round{rnd}_{MODEL_DIR}.jsonl"
        _answer_file(_read_jsonl(world.batches / "wp" / name), res / "wp" / name)
    ref.summ.score(argparse.Namespace(results_dir=res / "summ", output_dir=tmp_path / "summ_out"))
    ref.wb.score(argparse.Namespace(results_dir=str(res / "wb"), output_csv=str(tmp_path / "wb.csv")))
    ref.arena.score(argparse.Namespace(results_dir=str(res / "wp"), output_dir=str(tmp_path / "wp_out")))
    summ_rows = {r["task"]: r for r in _csv(tmp_path / "summ_out" / "all_summarization_quality.csv")}
    (wb_row,) = _csv(tmp_path / "wb.csv")
    (wp_row,) = _csv(tmp_path / "wp_out" / "all_writingprompts_quality.csv")

    with ScriptedJudge(decide) as server:
        settings = JudgeSettings("gpt-4.1-mini", server.base_url, judge_base="base", max_retries=0)
        plans = list(_our_plans(world, settings).values())
        client = JudgeClient("gpt-4.1-mini", server.base_url, max_retries=0)
        done = run_judge(plans, settings, client, JudgeCache(None), progress=False)
    ours = done.result["tasks"]

    def mean(task: str, metric: str) -> float:
        return ours[f"diversity_{task}"]["metrics"][metric]["per_input_mean"]

    for task in ("tldr", "cnn_dailymail", "xsum"):
        row = summ_rows[task]
        assert mean(task, "judge_win_rate") == pytest.approx(float(row["win_rate"]), abs=1e-6), task  # CSV: 6 dp
        d = ours[f"diversity_{task}"]["diagnostics"]["judge"]
        assert d["n_requests"] - d["n_unparsed"] == int(row["n_samples"]), task
    assert mean("wildbench", "judge_wb_score") == pytest.approx(float(wb_row["wb_score"]), abs=1e-4)
    assert mean("wildbench", "judge_wb_raw") == pytest.approx(float(wb_row["raw_mean"]), abs=1e-4)
    assert mean("writingprompts", "judge_win_rate_vs_base") == pytest.approx(float(wp_row["win_rate"]), abs=1e-6)
    assert mean("writingprompts", "judge_win_rate_vs_base_r1") == pytest.approx(float(wp_row["win_rate_r1"]), abs=1e-6)
    assert mean("writingprompts", "judge_win_rate_vs_base_r2") == pytest.approx(float(wp_row["win_rate_r2"]), abs=1e-6)
    assert int(wp_row["n_samples"]) == ours["diversity_writingprompts"]["diagnostics"]["judge"]["n_prompts_scored"]


RANKINGS = [
    "[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]",
    "[{'model': 'model_2', 'rank': 1}, {'model': 'model_1', 'rank': 2}]",
    "[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 1}]",
    '[{"model": "model_1", "rank": 2}, {"model": "model_2", "rank": 1}]',
    "Sure!\n[{'model': 'model_1', 'rank': 1},\n {'model': 'model_2', 'rank': 2}]\nHope this helps.",
    "```python\n[{'model': 'model_1', 'rank': 2}, {'model': 'model_2', 'rank': 1}]\n```",
    "[{'model': 'model_1', 'rank': 2}, {'model': 'model_2', 'rank': 1}",
    "{'model': 'model_1', 'rank': 1}",
    "[{'model': 'model_1', 'rank': 1}]",
    "[{'model': 'model_1', 'rank': 1.9}, {'model': 'model_2', 'rank': 2}]",
    "[{'model': 'model_1', 'rank': True}, {'model': 'model_2', 'rank': 2}]",
    "[{'model': 'model_1', 'rank': 'first'}, {'model': 'model_2', 'rank': 2}]",
    "[{['x']: 1}]",
    "I prefer [Summary A] over [Summary B].",
    "'model': 'model_2' ... 'rank': 1 and 'model': 'model_1', 'rank': 3",
    "",
    "[]",
    "0",
]
WB_ANSWERS = [
    'Analysis.\n{"strengths": "s", "weaknesses": "w", "score": "7"}',
    '{"score": 3} then {"strengths": "s", "score": 8}',
    '{"strengths": "s", "weaknesses": "w", "score": 6',
    '{"strengths": "s", "score": 7.0}',
    '{"score": "[1~10]"} Score: 9',
    '{"score": 11}',
    '{"score": "11"} score = 4',
    '{"score": 0} {"score": 12}',
    '{"score": true}',
    '{"score": " 5 "}',
    '{"a": {"score": 6}}',
    "Score: 10/10",
    "score=3",
    "The response is good.",
    "   ",
    "",
]
ARENA_ANSWERS = ["[[A=B]]", "x [[B>>A]] y", "[[A>B]] then [[B>A]]", "A>>B", "[[A>>>B]]", "[[ A>B ]]", ""]
THINK = ["<think>a</think>b", "x</think>y", "<think>open", "<think>a</think><think>b</think>c", " plain ", "</think>"]


def test_parsers_agree_answer_by_answer(ref):
    for answer in RANKINGS:
        try:
            expected = ref.summ._parse_kirk_verdict(answer)
        except (ValueError, TypeError):  # the reference crashes (int() of a word, an unhashable literal)
            expected = None
        assert P.parse_ranking(answer) == expected, answer
    for answer in WB_ANSWERS:
        assert P.parse_wb_score(answer) == ref.wb.parse_score(answer), answer
    for answer in ARENA_ANSWERS:
        assert P.parse_arena_verdict(answer) == ref.arena.parse_verdict(answer), answer
    assert P.ARENA_SCORES == ref.arena.SCORE_MAP


def test_source_order_and_stripping_agree(ref, world):
    for task in ("tldr", "cnn_dailymail", "xsum"):
        for doc in world.docs[task]:
            query = get_task(task).prompt(doc)
            assert P.summary_source(query, task) == ref.summ._extract_source(query, task)
        assert P.judge_spec(task).doc_type == ref.summ.TASK_DOC_TYPE[task]
    for cand in ("a", "b", "c", "d", TRICKY):
        assert P.summary_swapped("src", cand, "ref") == ref.summ._should_swap("src", cand, "ref")
    for text in THINK:
        assert strip_cot(text) == ref.summ._strip_cot(text) == ref.wb._strip_cot(text) == ref.arena._strip_cot(text)
