"""Drive the system Chromium (Debian's ``chromium`` + ``chromium-driver``, never a downloaded browser) headless over a
report page, and check what any report page must do: load with no console error and no request beyond the page file,
sort its leaderboard, show the K outputs of a chosen prompt, and leave screenshots.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--window-size=1366,1000",
)
REQUIRE_ENV = "LM_EVAL_DIVERSITY_REQUIRE_BROWSER"  # set by .ci/run: a missing browser fails instead of skipping
ARTIFACTS_ENV = "LM_EVAL_DIVERSITY_ARTIFACTS"  # where the screenshots go (.ci/run: artifacts/)


def missing_browser() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver; .ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[dev]')"
    return None


@contextmanager
def chromium(user_data_dir: Path) -> Iterator:
    """A headless Chromium session with a fresh profile, recording the console and the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # a driver path given: Selenium Manager (which would download one) is never run
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def chromium_or_skip(user_data_dir: Path) -> Iterator:
    """:func:`chromium`, or skip the test where the browser is missing (fail it when
    ``$LM_EVAL_DIVERSITY_REQUIRE_BROWSER`` is 1, as in CI)."""
    why = missing_browser()
    if why:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but the browser test cannot run: {why}")
        pytest.skip(why)
    with chromium(user_data_dir) as driver:
        yield driver


def load(driver, page: Path) -> dict:
    """Open the page; returns its URL, the console errors and every URL requested for it (Chromium's network log,
    filtered to the page's document: the browser's own start page may still be loading beside it)."""
    url = page.resolve().as_uri()
    driver.get(url)
    console = driver.get_log("browser")
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent" and params.get("documentURL") == url:
            requested.append(params["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            requested.append(params.get("url", "websocket"))
    return {"url": url, "errors": [e for e in console if e["level"] == "SEVERE"], "requested": requested}


def visible_board(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, ".board-wrap:not([hidden]) table.board")


def row_order(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [tr.get_attribute("data-run") for tr in visible_board(driver).find_elements(By.CSS_SELECTOR, "tbody tr")]


def column_values(driver, col: int) -> list[float | None]:
    """The sort values of one leaderboard column, top to bottom (None: undefined)."""
    values = driver.execute_script(
        "const t = document.querySelector('.board-wrap:not([hidden]) table.board');"
        "return Array.from(t.tBodies[0].rows).map(r => r.cells[arguments[0]].dataset.v);",
        col,
    )
    return [float(v) if v not in ("", None) else None for v in values]


def click_header(driver, col: int) -> str:
    """Click a leaderboard column header; returns its aria-sort afterwards."""
    from selenium.webdriver.common.by import By

    th = visible_board(driver).find_element(By.CSS_SELECTOR, f'th[data-col="{col}"]')
    th.click()
    return th.get_attribute("aria-sort")


def choose(driver, select_id: str, text_prefix: str | None = None, index: int | None = None) -> str:
    """Pick an option of a viewer select (by the start of its text, or its index); returns the option's text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    select = Select(driver.find_element(By.ID, select_id))
    if text_prefix is not None:
        option = next(o for o in select.options if o.text.startswith(text_prefix))
        select.select_by_visible_text(option.text)
        return option.text
    select.select_by_index(index or 0)
    return select.options[index or 0].text


def shown_runs(driver) -> list[dict]:
    """The viewer's run columns as shown: label, output texts and the marks of each output."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#viewer-runs .run-col')).map(col => ({"
        "  run: col.dataset.run,"
        "  texts: Array.from(col.querySelectorAll('.out pre')).map(p => p.textContent),"
        "  heads: Array.from(col.querySelectorAll('.out .out-head')).map(h => h.textContent),"
        "  values: col.querySelector('.values').textContent}));"
    )


def viewer_data(driver) -> dict:
    return driver.execute_script("return JSON.parse(document.getElementById('viewer-data').textContent);")


def artifacts_dir(fallback: Path) -> Path:
    """Where screenshots go: ``$LM_EVAL_DIVERSITY_ARTIFACTS`` (CI keeps it as an artifact), else ``fallback``."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(driver, path: Path, element_id: str | None = None) -> Path:
    """A screenshot of the window scrolled to the top, or to an element."""
    from selenium.webdriver.common.by import By

    if element_id is None:
        driver.execute_script("window.scrollTo(0, 0);")
    else:
        driver.execute_script("arguments[0].scrollIntoView();", driver.find_element(By.ID, element_id))
    driver.save_screenshot(str(path))
    return path


def _sorted_as_said(values: list[float | None], direction: str) -> bool:
    defined = [v for v in values if v is not None]
    ordered = sorted(defined, reverse=direction == "descending")
    return defined == ordered and values[len(defined) :] == [None] * (len(values) - len(defined))


def check_page(driver, page: Path, artifacts: Path, stem: str) -> dict:
    """What every report page must do in a browser (screenshots and a copy of the page go to ``artifacts``, named
    ``stem``); returns the viewer's data for further checks."""
    loaded = load(driver, page)
    assert loaded["errors"] == [], f"console errors: {loaded['errors']}"
    assert set(loaded["requested"]) == {loaded["url"]}, f"requests beyond the page: {loaded['requested']}"
    assert driver.title == "Diversity report · lm-eval-diversity"
    screenshot(driver, artifacts / f"{stem}-top.png")  # what a reader sees first
    # sorting: by run name, then by the task average both ways; the order must change at least once
    initial = row_order(driver)
    assert click_header(driver, 0) == "ascending"
    orders = [row_order(driver)]
    assert sorted(orders[0]) == sorted(initial)
    for direction in ("descending", "ascending"):
        assert click_header(driver, 1) == direction
        assert _sorted_as_said(column_values(driver, 1), direction)
        orders.append(row_order(driver))
    if len(set(initial)) > 1:
        assert any(o != initial for o in orders), "no click changed the row order"
    # the viewer: the first task's largest drop, each run's K outputs as the JSON holds them
    data = viewer_data(driver)
    task = next(t for t in data["tasks"] if t["prompts"])
    choose(driver, "viewer-task", index=0)
    choose(driver, "viewer-prompt", index=0)
    prompt = task["prompts"][0]
    shown = shown_runs(driver)
    assert [s["run"] for s in shown] == [r["run"] for r in prompt["runs"]]
    for s, r in zip(shown, prompt["runs"]):
        assert s["texts"] == [o["text"] for o in r["outputs"]] and len(s["heads"]) == len(r["outputs"])
    screenshot(driver, artifacts / f"{stem}-viewer.png", "viewer")
    shutil.copyfile(page, artifacts / f"{stem}.html")
    return data
