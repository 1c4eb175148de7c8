"""The HTML page of ``compare --format html`` (without a browser) and the per-metric text and Markdown tables.

The runs are tests/compare/report_fixture.py's: a baseline at T=1.0 and a collapsed run at T=0.3 on gsm8k, xsum and
writingprompts, 3 prompts each, K = 4; every expected number below is worked out by hand from its per-prompt values.
"""

from __future__ import annotations

import json
import re

import pytest

from lm_eval_diversity.compare import run_compare
from lm_eval_diversity.compare.page import change_colour
from lm_eval_diversity.compare.viewer import MAX_OUTPUT_CHARS
from tests.compare.report_fixture import HOSTILE, LONG, write_fixture_runs

LABELS = ["--labels", "T=1.0,T=0.3", "--baseline", "T=1.0", "--bootstrap_iters", "400"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    base, cold = write_fixture_runs(tmp / "runs")
    return tmp, [str(base), str(cold)]


@pytest.fixture(scope="module")
def page(runs) -> str:
    """The page with the default settings (written once for the module: matplotlib's figures take seconds)."""
    return _page(*runs)


def _page(tmp_path, run_args, *extra) -> str:
    out = tmp_path / f"report{len(extra)}.html"
    assert run_compare([*run_args, *LABELS, "--format", "html", "--output", str(out), *extra]) == 0
    return out.read_text(encoding="utf-8")


def _viewer(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="viewer-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def _board(page: str, metric: str) -> str:
    m = re.search(rf'<table class="board" data-metric="{metric}">(.*?)</table>', page, re.S)
    return m.group(1)


def test_page_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"<(script|img|link|iframe)[^>]*\s(src|href)\s*=", page)  # nothing loaded from anywhere
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # the figures' url(#id) references stay inside the page
    markup = page.split('id="viewer-data">')[0]  # the outputs' own text (one names a URL) aside
    assert "http://" not in markup.replace("http://www.w3.org/", "")  # only SVG/XML namespaces


def test_leaderboard_runs_rows_tasks_by_category_with_changes(page):
    board = _board(page, "sbert")
    # categories in the paper's order, the tasks under them, the task average first
    cats = re.findall(r'class="cat" scope="colgroup">([^<]+)<', board)
    assert cats == ["Summarisation", "Reasoning", "Creative writing"]
    heads = re.findall(r'class="sortable num" data-col="(\d+)" scope="col">([^<]+)<', board)
    assert [h for _, h in heads] == ["diversity", "xsum", "gsm8k", "writingprompts"]
    rows = re.findall(r'<tr data-run="([^"]+)">', board)
    assert rows == ["T=1.0", "T=0.3"]
    cold = board.split('<tr data-run="T=0.3">')[1]
    cells = re.findall(
        r'<td class="num" data-v="([^"]+)"( style="background:[^"]+")? title="[^"]*">([^<]*)'
        r'<span class="chg">([^<]*)(<span class="sig")?',
        cold,
    )
    values = [float(v) for v, *_ in cells]
    # gsm8k 0.25, xsum 13/30, writingprompts 0.7667; diversity = their mean
    assert values[1:] == pytest.approx([13 / 30, 0.25, 2.3 / 3])
    assert values[0] == pytest.approx((13 / 30 + 0.25 + 2.3 / 3) / 3)
    pct = [c[3] for c in cells]
    assert pct[2] == "-50.0%"  # gsm8k 0.5 -> 0.25
    assert pct[1] == "-38.1%"  # xsum 0.7 -> 0.4333
    # every gsm8k prompt dropped (0.2, 0.5, 0.05): the paired CI excludes 0; writingprompts went -0.05, +0.05,
    # -0.1: its CI includes 0
    marks = [bool(c[4]) for c in cells]
    assert marks[2] and not marks[3]
    assert "rgba(192,57,43" in cells[2][1]  # a loss is red
    base = board.split('<tr data-run="T=1.0">')[1].split("</tr>")[0]
    assert "baseline" in base and "background" not in base  # the baseline has no change to colour


def test_headline_metric_tabs_and_comparability(page):
    head = page.split('<section id="headline"')[1].split("</section>")[0]
    assert "T=0.3" in head and "vs T=1.0 (baseline)" in head
    # the task average: (0.7 + 0.5 + 0.8) / 3 -> (13/30 + 0.25 + 2.3/3) / 3, -27.5 %; its CI excludes 0
    assert re.search(r"<b>sbert</b> -27.5% \*", head)
    # the runs as a person names them: the GGUF file, not the folder it sits in
    runs = page.split('<section id="runs">')[1].split("</section>")[0]
    assert runs.count("<td>Smol-135M.Q4_1</td>") == 2 and "/opt/models" not in page
    tabs = re.findall(r'class="metric-tab" data-metric="([^"]+)" aria-pressed="(true|false)"', page)
    assert tabs == [("sbert", "true"), ("vendi", "false"), ("ead", "false"), ("acc", "false")]
    # the only difference between the runs, once, over all tasks
    comp = page.split('<section id="comparability">')[1].split("</section>")[0]
    assert comp.count("<tr><td>") == 1
    assert "<td>temperature</td><td>1.0</td><td>0.3</td><td>all 3</td>" in comp


def test_viewer_prompts_largest_drop_first_with_outputs(page):
    data = _viewer(page)
    tasks = {t["task"]: t for t in data["tasks"]}
    gsm = tasks["diversity_gsm8k"]
    assert gsm["metric"] == "sbert" and gsm["n_prompts"] == 3
    # sbert drops 0.2, 0.5, 0.05 -> docs 1, 0, 2
    assert [p["doc_id"] for p in gsm["prompts"]] == [1, 0, 2]
    assert [p["drop"] for p in gsm["prompts"]] == pytest.approx([0.5, 0.2, 0.05])
    p = gsm["prompts"][0]
    assert "Prompt 1 of diversity_gsm8k" in p["prompt"]
    base, cold = p["runs"]
    assert (base["run"], cold["run"]) == ("T=1.0", "T=0.3")
    assert cold["values"]["sbert"] == pytest.approx(0.1) and cold["values"]["k_correct"] == 3
    assert cold["values"]["dup_rate"] == 0.5
    outs = cold["outputs"]
    assert [o["text"] for o in outs] == ["The answer is 42."] * 3 + ["It is 41."]  # the thought is stripped
    assert [o["duplicate_of"] for o in outs] == [None, 0, 0, None]
    assert [o["correct"] for o in outs] == [True, True, True, False]
    assert len(base["outputs"]) == 4 and base["outputs"][1]["correct"] is False
    # ungraded task: no verdicts; a long output is cut and says how long it was
    wp = tasks["diversity_writingprompts"]
    # drops 0.05, -0.05, 0.1 -> docs 2, 0, 1
    assert [p["doc_id"] for p in wp["prompts"]] == [2, 0, 1]
    long_out = wp["prompts"][1]["runs"][0]["outputs"][0]
    assert long_out["chars"] == len(LONG.strip()) and len(long_out["text"]) == MAX_OUTPUT_CHARS
    assert long_out["correct"] is None


def test_an_output_cannot_break_out_of_the_page(page):
    assert HOSTILE not in page and "pwned" in page  # present, but only as escaped JSON text
    script = page.split('id="viewer-data">')[1].split("</script>")[0]
    assert "<" not in script
    xsum = {t["task"]: t for t in _viewer(page)["tasks"]}["diversity_xsum"]
    texts = [o["text"] for p in xsum["prompts"] for r in p["runs"] for o in r["outputs"]]
    assert HOSTILE in texts  # shown to the reader as it was written


def test_viewer_bounded_per_task_without_baseline(runs, capsys):
    tmp, run_args = runs
    out = tmp / "no_baseline.html"
    argv = [*run_args, "--labels", "T=1.0,T=0.3", "--viewer_prompts", "1", "--bootstrap_iters", "50"]
    assert run_compare([*argv, "--format", "html", "--output", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "No baseline: the runs are listed side by side" in page and 'class="chg"' not in page
    data = _viewer(page)
    assert (data["reference"], data["reference_role"]) == ("T=1.0", "first run")
    # against the first run, the largest drop of each task only: gsm8k doc 1 (0.5), xsum doc 1 (0.5),
    # writingprompts doc 2 (0.1)
    assert [(t["task"], [p["doc_id"] for p in t["prompts"]]) for t in data["tasks"]] == [
        ("diversity_gsm8k", [1]),
        ("diversity_writingprompts", [2]),
        ("diversity_xsum", [1]),
    ]
    assert run_compare([*run_args, "--format", "html", "--viewer_prompts", "51"]) == 2
    assert "--viewer_prompts 51" in capsys.readouterr().err


def test_figures_inline_svg(page):
    pytest.importorskip("matplotlib")
    figures = page.split('<section id="figures">')[1].split("</section>")[0]
    titles = re.findall(r"<figure><h3>([^<]+)</h3><svg", figures)
    assert titles == [
        "Change per task against the baseline",
        "Along the runs",
        "Where the diversity went: QC / residual split",
    ]
    ids = re.findall(r'\sid="([^"]+)"', figures)
    assert len(ids) == len(set(ids))  # three SVGs on one page share no id


def test_markdown_and_text_one_table_per_metric_tasks_as_rows(runs, capsys):
    tmp, run_args = runs
    assert run_compare([*run_args, *LABELS, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert [t for t in re.findall(r"^## (.+)$", md, re.M) if t.startswith("Leaderboard")] == [
        "Leaderboard: sbert",
        "Leaderboard: vendi",
        "Leaderboard: ead",
        "Leaderboard: acc",
    ]
    sbert = md.split("## Leaderboard: sbert")[1].split("## ")[0]
    header = next(line for line in sbert.splitlines() if line.startswith("| task"))
    assert header == "| task | category | prompts | T=1.0 | T=0.3 | T=0.3 - T=1.0 |"
    rows = [line.split(" | ")[0].strip("| ") for line in sbert.splitlines() if line.startswith("| ")][1:]
    assert rows == ["diversity (mean)", "xsum", "gsm8k", "writingprompts"]
    gsm = next(line for line in sbert.splitlines() if line.startswith("| gsm8k"))
    assert "| Reasoning | 3 | 0.5000 [" in gsm and "| 0.2500 [" in gsm and "-0.2500 [" in gsm and "(-50.0%) * |" in gsm
    assert run_compare([*run_args, *LABELS, "--format", "table"]) == 0
    text = capsys.readouterr().out
    block = text.split("== Leaderboard: sbert ==")[1].split("==")[0]
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("note")]
    assert max(len(line) for line in lines) < 140  # readable in a terminal


def test_change_colour_scale():
    assert change_colour(-50.0, True) == "rgba(192,57,43,0.65)"  # a full loss
    assert change_colour(-100.0, True) == change_colour(-50.0, True)  # clipped at the full scale
    assert change_colour(25.0, True) == "rgba(33,102,172,0.38)"  # half a gain: 0.10 + 0.55 / 2
    assert change_colour(25.0, False) == "rgba(192,57,43,0.38)"  # a rise of a lower-is-better metric is a loss
    assert change_colour(0.0, True) is None and change_colour(float("nan"), True) is None


def test_prompts_and_verdicts_read_from_samples(runs):
    from lm_eval_diversity.samples import read_samples_file

    tmp, run_args = runs
    path = next((tmp / "runs" / "temperature-0.3").glob("samples_diversity_gsm8k_*.jsonl"))
    sf = read_samples_file(path)
    assert sf.correct[1] == [True, True, True, False] and sf.correct[0] == [True, False, True, False]
    assert sf.prompts[2].startswith("<|im_start|>user\nPrompt 2 of diversity_gsm8k")
    xsum = next((tmp / "runs" / "temperature-0.3").glob("samples_diversity_xsum_*.jsonl"))
    assert read_samples_file(xsum).correct == {}  # not graded: no verdicts, never "incorrect"
