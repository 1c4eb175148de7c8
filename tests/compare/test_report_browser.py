"""The report page in a real browser: Debian's Chromium, headless, driven by selenium (docs/report.md, "Tested in a
browser").

On a page written from fixture runs (tests/compare/report_fixture.py): it loads with no console error and requests
nothing but itself, sorting changes the row order, the viewer shows the K outputs of a chosen prompt (stripped,
duplicates and verdicts marked, a hostile output shown as text), and screenshots are written as CI artifacts
(``$LM_EVAL_DIVERSITY_ARTIFACTS``, ``artifacts/`` in ``.ci/run``). The same generic checks run on any page named by
``LM_EVAL_DIVERSITY_REPORT_PAGE`` (e.g. the demo's ``out/demo/report.html``).

Skipped only where Chromium is not installed; ``.ci/run`` installs it and sets ``LM_EVAL_DIVERSITY_REQUIRE_BROWSER=1``
so that in CI a missing browser fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lm_eval_diversity.compare import run_compare
from tests.compare import browser
from tests.compare.report_fixture import HOSTILE, K, write_fixture_runs

pytestmark = pytest.mark.slow  # starting Chromium and writing the page's figures take more than 5 s


@pytest.fixture
def driver(tmp_path):
    """A headless Chromium; skipped where it is not installed (failed instead when CI requires it)."""
    with browser.chromium_or_skip(tmp_path / "profile") as d:
        yield d


def test_fixture_report_in_chromium(driver, tmp_path):
    base, cold = write_fixture_runs(tmp_path / "runs")
    page = tmp_path / "report.html"
    argv = [str(base), str(cold), "--labels", "T=1.0,T=0.3", "--baseline", "T=1.0", "--bootstrap_iters", "300"]
    assert run_compare([*argv, "--format", "html", "--output", str(page)]) == 0
    artifacts = browser.artifacts_dir(tmp_path / "artifacts")
    browser.check_page(driver, page, artifacts, "fixture-report")
    for shot in ("fixture-report-top.png", "fixture-report-viewer.png"):
        assert (artifacts / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from selenium.webdriver.common.by import By

    # another metric's board: accuracy on gsm8k rose (0.667 -> 1.0), so sorting its column puts T=0.3 first
    driver.find_element(By.CSS_SELECTOR, '.metric-tab[data-metric="acc"]').click()
    assert browser.row_order(driver) == ["T=1.0", "T=0.3"]
    headers = browser.visible_board(driver).find_elements(By.CSS_SELECTOR, "th.sortable")
    gsm_col = next(int(h.get_attribute("data-col")) for h in headers if h.text.startswith("gsm8k"))
    assert browser.click_header(driver, gsm_col) == "descending"
    assert browser.row_order(driver) == ["T=0.3", "T=1.0"]
    assert browser.column_values(driver, gsm_col) == pytest.approx([1.0, 2 / 3])

    # the viewer on gsm8k, the prompt that collapsed most (doc 1: sbert 0.6 -> 0.1)
    assert browser.choose(driver, "viewer-task", text_prefix="gsm8k").startswith("gsm8k (3 of 3 prompts)")
    assert browser.choose(driver, "viewer-prompt", index=0) == "doc 1 · drop 0.500 · Question: question 1 Answer:"
    base_col, cold_col = browser.shown_runs(driver)
    assert (base_col["run"], cold_col["run"]) == ("T=1.0", "T=0.3")
    assert len(base_col["texts"]) == len(cold_col["texts"]) == K
    assert cold_col["texts"] == ["The answer is 42."] * 3 + ["It is 41."]
    assert ["✓ correct" in h for h in cold_col["heads"]] == [True, True, True, False]
    assert "✗ incorrect" in cold_col["heads"][3]
    assert ["duplicate of #1" in h for h in cold_col["heads"]] == [False, True, True, False]
    assert "sbert 0.100" in cold_col["values"] and "k_correct 3" in cold_col["values"]

    # an output written to break out of the page is shown as text and does nothing
    browser.choose(driver, "viewer-task", text_prefix="xsum")
    browser.choose(driver, "viewer-prompt", index=0)
    cold_col = browser.shown_runs(driver)[1]
    assert cold_col["texts"][0] == HOSTILE
    assert driver.title == "Diversity report · lm-eval-diversity"
    assert driver.find_elements(By.CSS_SELECTOR, "#viewer-runs img, #viewer-runs script") == []
    assert browser.load(driver, page)["errors"] == []


def test_given_report_page_in_chromium(request, tmp_path):
    """``LM_EVAL_DIVERSITY_REPORT_PAGE=out/demo/report.html pytest -m slow -k given_report``: the demo's page."""
    given = os.environ.get("LM_EVAL_DIVERSITY_REPORT_PAGE")
    if not given:
        pytest.skip("set LM_EVAL_DIVERSITY_REPORT_PAGE to a report page (e.g. out/demo/report.html) to check it")
    driver = request.getfixturevalue("driver")
    data = browser.check_page(driver, Path(given), browser.artifacts_dir(tmp_path / "artifacts"), "given-report")
    assert any(t["prompts"] for t in data["tasks"]), "the viewer shows no prompt"


def test_the_checks_see_requests_and_errors(driver, tmp_path):
    """The load check can fail: a page that fetches an image and logs an error is caught on both counts."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><title>t</title><img src="missing.png"><script>console.error("boom")</script>')
    loaded = browser.load(driver, bad)
    assert (tmp_path / "missing.png").as_uri() in loaded["requested"]
    assert any("boom" in e["message"] for e in loaded["errors"])
