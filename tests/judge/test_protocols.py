"""The judge protocols' pure parts, on answers written the way judges write them; expected values by hand."""

from __future__ import annotations

import hashlib
import math

import pytest

from lm_eval_diversity.judge.protocols import (
    ARENA,
    NO_CHECKLIST,
    SUMMARY,
    WB_SCORE,
    Material,
    Request,
    judge_text,
    parse_arena_verdict,
    parse_ranking,
    parse_wb_score,
    summary_source,
    summary_swapped,
    wb_checklist,
)


@pytest.mark.parametrize(
    ("query", "task", "source"),
    [
        ("SUBREDDIT: r/x\nTITLE: t\nPOST:  the post body \nTL;DR:", "tldr", "the post body"),
        ("ARTICLE: line one\nline two\nTL;DR:", "xsum", "line one\nline two"),
        ("ARTICLE: a\nTL;DR: inside\nTL;DR:", "cnn_dailymail", "a\nTL;DR: inside"),  # the last marker ends it
        ("no scaffolding TL;DR:", "cnn_dailymail", "no scaffolding"),  # trailing marker without a newline
        ("SUBREDDIT: s\nTITLE: POST: in title\nPOST: body\nTL;DR:", "tldr", "in title\nPOST: body"),  # first marker
    ],
)
def test_summary_source(query, task, source):
    assert summary_source(query, task) == source


def test_swap_rule_reads_the_last_hex_digit_of_sha256():
    for cand in ("a", "b", "c", "d", "e", "f"):
        digest = hashlib.sha256(f"src\n||\n{cand}\n||\nref".encode()).hexdigest()
        assert summary_swapped("src", cand, "ref") is (digest[-1] in "13579bdf")


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]", "win"),
        ("[{'model': 'model_2', 'rank': 1}, {'model': 'model_1', 'rank': 2}]", "loss"),
        ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 1}]", "tie"),
        ('[{"model": "model_1", "rank": 2}, {"model": "model_2", "rank": 1}]', "loss"),  # JSON quoting
        ("Ranking:\n[{'model': 'model_1', 'rank': 1},\n {'model': 'model_2', 'rank': 2}]\nDone.", "win"),  # prose
        ("```python\n[{'model': 'model_1', 'rank': 2}, {'model': 'model_2', 'rank': 1}]\n```", "loss"),  # fenced
        # broken literal (missing bracket): the model/rank pairs are read one by one
        ("[{'model': 'model_1', 'rank': 2}, {'model': 'model_2', 'rank': 1}", "loss"),
        ("{'model': 'model_1', 'rank': 1}", None),  # a dict, not a list
        ("[{'model': 'model_1', 'rank': 1}]", None),  # model_2 missing
        ("[{'model': 'model_1', 'rank': 'first'}, {'model': 'model_2', 'rank': 2}]", None),  # not a number
        ("[{['x']: 1}]", None),  # unhashable key: evaluating fails
        ("Summary A is better.", None),
        ("", None),
        ("[]", None),
    ],
)
def test_parse_ranking(answer, outcome):
    assert parse_ranking(answer) == outcome


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ('Analysis...\n{"strengths": "s", "weaknesses": "w", "score": "7"}', 7),
        ('{"score": 3} then {"strengths": "s", "score": 8}', 8),  # the last object wins
        ('{"strengths": "s", "weaknesses": "w", "score": 6', 6),  # unclosed: the "score": N regex
        ('{"strengths": "s", "score": 7.0}', 7),  # 7.0 fails int(); the regex reads its digits
        ('{"score": "[1~10]"} Score: 9', 9),  # placeholder left in; the bare "Score: N" step
        ('{"score": 11}', None),  # outside 1..10 at every step
        ('{"score": "11"} score = 4', 4),
        ('{"score": 0} {"score": 12}', None),
        ("The response is good.", None),
        ("   ", None),
    ],
)
def test_parse_wb_score(answer, score):
    assert parse_wb_score(answer) == score


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("My final verdict is tie: [[A=B]]", "A=B"),
        ("[[B>>A]]", "B>>A"),
        ("Between [[A>B]] and [[B>A]] I pick the first.", "A>B"),  # the first label
        ("Verdict: A>>B", None),
        ("[[A>>>B]]", None),
    ],
)
def test_parse_arena_verdict(answer, verdict):
    assert parse_arena_verdict(answer) == verdict


def test_checklist_bullets():
    assert wb_checklist("Is it correct?; Is it short?") == "- Is it correct?\n- Is it short?"
    assert wb_checklist("  ") == NO_CHECKLIST
    assert wb_checklist("a; ; b") == "- a\n- b"  # blank items dropped, items not otherwise stripped


def test_judge_thinking_is_removed_before_parsing():
    assert parse_arena_verdict(judge_text("<think>maybe [[B>>A]]</think>Final: [[A>B]]")) == "A>B"


def test_summary_requests_and_scores():
    m = Material("tldr", "SUBREDDIT: s\nTITLE: t\nPOST: p\nTL;DR:", " ref ", ("cand", "", "c2"))
    reqs = SUMMARY.requests(m)
    assert [r.output for r in reqs] == [0, 2]  # the empty output is not judged
    assert all(r.max_tokens == 256 and r.messages[0][0] == "system" for r in reqs)
    for r in reqs:
        user = r.messages[1][1]
        first = user.split("Summary A:")[1].split("Summary B:")[0]
        assert ('"""ref"""' in first) is r.swapped  # the stripped reference sits in A exactly when swapped
    win = "[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]"
    shown_first = Request((), 256, swapped=False)
    shown_second = Request((), 256, swapped=True)
    assert SUMMARY.parse(shown_first, win) == 1.0 and SUMMARY.parse(shown_second, win) == 0.0
    assert SUMMARY.prompt_values({(0, 1): 1.0, (1, 1): 0.5, (2, 1): None}) == {"judge_win_rate": 0.75}
    assert math.isnan(SUMMARY.prompt_values({(0, 1): None})["judge_win_rate"])
    assert SUMMARY.skip_reason(Material("tldr", "q", "  ", ("x",))) == "no reference summary"


def test_wb_values():
    v = WB_SCORE.prompt_values({(0, 1): 8.0, (1, 1): 5.0, (2, 1): None})
    assert v == {"judge_wb_score": 3.0, "judge_wb_raw": 6.5}  # (6.5 - 5) * 2
    (req,) = WB_SCORE.requests(Material("wildbench", "q", "", ("o",)))
    assert [role for role, _ in req.messages] == ["user"] and NO_CHECKLIST in req.messages[0][1]
    assert req.max_tokens == 1024


def test_arena_rounds_and_values():
    m = Material("writingprompts", "  prompt \n\n", "", ("mine", "  "), opponent="base")
    reqs = ARENA.requests(m)
    assert [(r.output, r.round) for r in reqs] == [(0, 1), (0, 2)]  # the blank output is dropped
    r1, r2 = (r.messages[1][1] for r in reqs)
    assert r1.startswith("<|User Prompt|>\nprompt\n\n<|The Start of Assistant A's Answer|>\nmine\n")
    assert "<|The Start of Assistant A's Answer|>\nbase\n" in r2
    assert ARENA.parse(reqs[0], "[[A>B]]") == 0.75 and ARENA.parse(reqs[1], "[[A>B]]") == 0.25
    # output 0 both rounds, output 1 only round 1 (left out): (0.75 + 0.25) / 2
    v = ARENA.prompt_values({(0, 1): 0.75, (0, 2): 0.25, (1, 1): 1.0, (1, 2): None})
    assert v == {"judge_win_rate_vs_base": 0.5, "judge_win_rate_vs_base_r1": 0.75, "judge_win_rate_vs_base_r2": 0.25}
    assert ARENA.skip_reason(Material("writingprompts", "q", "", ("x",))) == "no base-model output for this prompt"


def test_template_digests_differ_per_protocol_and_are_stable():
    digests = {p.template_digest() for p in (SUMMARY, WB_SCORE, ARENA)}
    assert len(digests) == 3 and SUMMARY.template_digest() == SUMMARY.template_digest()


def test_docs_task_table_matches_the_catalogue_and_protocols(repo_root):
    from lm_eval_diversity.catalogue.tasks import task_records
    from lm_eval_diversity.judge.protocols import task_protocol

    text = (repo_root / "docs" / "quality.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.split("| task | grader", 1)[1].split("\n\n", 1)[0].splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    assert list(rows) == [r.name for r in task_records()]
    for r in task_records():
        grader, judge, reward = rows[r.name]
        assert grader == (r.grader.rule if r.grader else "—"), r.name
        protocol = task_protocol(r.name, asked=True)
        assert judge.startswith(f"`{protocol.name}`") if protocol else judge == "—", r.name
        assert (f"`{protocol.metric}`" in judge) if protocol else True
        assert ("on request" in judge) == (r.judge is not None and r.judge.opt_in)
        assert reward == "yes"
