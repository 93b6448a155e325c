"""The dashboard and the report in a real browser: headless Chromium driven by selenium.

Debian's ``chromium`` and ``chromium-driver`` are used as installed (selenium is never
allowed to download a driver); without them, or without selenium, these tests skip.
"""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chump.loop.app import App
from pytest_chump.observe.report import write_report
from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import repo  # noqa: F401  (fixture)
from tests.observe.test_report import HOSTILE, ended, git_repo

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING = "no chromium/chromedriver: apt-get install chromium chromium-driver"
EXECUTE = ("dispatch", "--no-dry-run", "--watch")
TWO = "gaps:\n  - {id: WEB-1, priority: P1, effort: s}\n  - {id: WEB-2, priority: P1, effort: s}\n"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("no selenium: pip install -e '.[test]'")
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(MISSING)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    try:  # the driver given explicitly: selenium's own driver download is never tried
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    except WebDriverException as exc:
        pytest.skip(f"{MISSING} ({exc.msg or exc})")
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def ready(driver: WebDriver) -> None:
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "1")


def script(driver: WebDriver, js: str) -> Any:
    return driver.execute_script(js)


def attrs(driver: WebDriver, selector: str, *names: str) -> list[list[str | None]]:
    """The ``data-*`` values ``names`` of every element matching ``selector``."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(n => arguments[1].map(k => n.dataset[k] ?? null))",
        selector,
        list(names),
    )


class Serving:
    """``chump serve --port 0`` as a process; its URL is its first line."""

    def __init__(self, root: Path, *args: str) -> None:
        self.chump = ChumpProcess(root, "serve", "--port", "0", *args)
        (line,) = self.chump.wait_for("chump: serving ")
        self.url = line.removeprefix("chump: serving ")

    def stop(self) -> None:
        self.chump.signal(signal.SIGTERM)
        assert self.chump.finish() == 0, self.chump.text


def test_the_report_draws_its_embedded_history_from_a_file(
    browser: WebDriver, tmp_path: Path
) -> None:
    root = git_repo(tmp_path / "repo")
    with Store.for_repo(root) as store:
        start = 1_714_564_800.0  # 2024-05-01 12:00 UTC
        ids = [
            ended(store, "REP-1", "shipped", start, cost_usd=0.5),
            ended(store, "REP-2", "ci_failed", start + 60, reason=HOSTILE, cause=HOSTILE),
            ended(store, "REP-3", "shipped", start + 86400, 30),
        ]
    page = tmp_path / "report.html"
    write_report(page, root, App.create({"repo_root": str(root)}).settings, 0.0)
    browser.get(page.as_uri())
    ready(browser)
    assert script(browser, "return document.body.dataset.mode") == "report"
    assert attrs(browser, "#timeline rect.bar", "dispatchId", "outcome", "lane") == [
        [str(ids[0]), "shipped", "0"],
        [str(ids[1]), "ci_failed", "1"],
        [str(ids[2]), "shipped", "0"],
    ]
    assert attrs(browser, "#recent tbody tr", "dispatchId") == [[str(i)] for i in ids[::-1]]
    assert attrs(browser, "#outcomes-table tr[data-outcome]", "outcome") == [
        ["shipped"],
        ["ci_failed"],
    ]
    assert attrs(browser, "#shiprate circle", "day", "rate") == [
        ["2024-05-01", "0.500"],
        ["2024-05-02", "1.000"],
    ]
    assert len(attrs(browser, "#days rect", "day")) == 2
    assert str(root) in browser.title
    # the hostile text is shown as text, and nothing it holds ran or became an element
    reasons = script(browser, "return [...document.querySelectorAll('#recent td.reason')]"
                              ".map(n => n.textContent)")  # fmt: skip
    assert HOSTILE in reasons
    assert script(browser, "return document.scripts.length") == 2
    assert script(browser, "return document.getElementById('error').hidden") is True


def test_a_live_run_on_the_dashboard(browser: WebDriver, repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text(TWO)
    gate = repo.parent / "gate"
    server = Serving(repo)
    run: ChumpProcess | None = None
    try:
        browser.get(server.url)
        ready(browser)
        wait(browser, lambda d: script(d, "return document.getElementById('conn').dataset.state")
             == "live")  # fmt: skip
        assert attrs(browser, ".card", "dispatchId") == []
        run = ChumpProcess(repo, *EXECUTE, env={"AGENT_MODE": "gate", "AGENT_GATE": str(gate)})

        def cards(d: WebDriver) -> list[list[str | None]] | None:
            found = attrs(d, "#col-running .card[data-kind='dispatch']", "gapId", "dispatchId")
            return found if len(found) == 2 else None

        running = wait(browser, cards)
        assert sorted(gap for gap, _ in running) == ["WEB-1", "WEB-2"]
        ids = {str(i) for _, i in running}
        assert int(script(browser, "return document.body.dataset.events || '0'")) > 0
        bars = attrs(browser, "#timeline rect.bar", "dispatchId", "outcome")
        assert sorted(bars) == sorted([i, "running"] for i in ids)
        # clicked in the page in one step: a refresh may redraw the card between a lookup and
        # a WebDriver click (a stale element)
        browser.execute_script("document.querySelector('#col-running .card').click()")
        wait(browser, lambda d: attrs(d, "#log", "loaded") == [["1"]])
        assert "could not read" not in browser.find_element("id", "log-lines").text

        gate.write_text("go")

        def shipped(d: WebDriver) -> bool:
            done = {i for i, o in attrs(d, "#timeline rect.bar", "dispatchId", "outcome")
                    if o == "shipped"}  # fmt: skip
            return ids <= done

        wait(browser, shipped, timeout=60)
        assert attrs(browser, ".card[data-kind='dispatch']", "dispatchId") == []
        assert {r[0] for r in attrs(browser, "#recent tbody tr", "dispatchId")} == ids
        assert run.finish() == 0, run.text
    finally:
        if run is not None and run.proc.poll() is None:
            run.signal(signal.SIGINT)
            run.finish()
        server.stop()


def test_with_a_token_the_page_works_and_the_api_refuses_requests_without_it(
    browser: WebDriver, tmp_path: Path
) -> None:
    root = git_repo(tmp_path / "repo")
    log = tmp_path / "agent.log"
    log.write_text("first line\nworking on TOK-1\n")
    with Store.for_repo(root) as store:
        running = store.add_dispatch("TOK-1", "chump/TOK-1", "/wt", "claude", "o:1:1")
        store.update_dispatch(running, state="running", log_path=str(log))
    server = Serving(root, "--token", "t0k-en/+")
    try:
        for path in ("", "api/v1/state", "api/v1/events", f"api/v1/dispatches/{running}/log"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(server.url + path, timeout=30)
            assert refused.value.code == 401, path
        browser.get(server.url + "?token=t0k-en%2F%2B")
        ready(browser)
        wait(browser, lambda d: script(d, "return document.getElementById('conn').dataset.state")
             == "live")  # fmt: skip
        assert attrs(browser, ".card", "gapId", "state") == [["TOK-1", "running"]]
        browser.execute_script("document.querySelector('.card').click()")  # (see above)
        wait(browser, lambda d: attrs(d, "#log", "loaded") == [["1"]])
        assert browser.find_element("id", "log-lines").text == "first line\nworking on TOK-1"
        browser.get(server.url)  # without it: the server's 401, no dashboard
        assert "token is required" in browser.page_source
    finally:
        server.stop()
