"""The console in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium against a real ``swarm-director serve``.

Without the browser these tests are skipped with the reason; under ``CI=true`` they fail.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL

from swarm_director.db import Database, make_engine
from swarm_director.web.context import database
from tests.api.conftest import AppFactory, url_text
from tests.console.conftest import Swarm, fill
from tests.dbtools import IN_CI
from tests.serving import ServeProcess, serve_env


def _wait_url(driver: Any, ok: Any, timeout: float = 10.0) -> None:
    """Wait until the page a click started has loaded (the machine may be slow)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: ok(d.current_url))


TOKEN = "browser-test-token"


def _missing_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "headless Chromium is missing: apt-get install -y chromium chromium-driver"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing_browser()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true requires the browser: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def served(db_url: URL, tmp_path: Any) -> Iterator[tuple[str, Swarm]]:
    """`swarm-director serve` with a token on a filled database of the test's dialect."""
    db = Database(make_engine(db_url))
    try:
        swarm = fill(db)
    finally:
        db.dispose()
    env = serve_env({"SWARM_API_TOKEN": TOKEN, "SWARM_DATA_DIR": str(tmp_path / "data")})
    with ServeProcess(url_text(db_url), tmp_path, env=env, workers=2) as server:
        yield server.url, swarm


def _errors(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def test_console_in_a_browser(browser: Any, served: tuple[str, Swarm]) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, swarm = served
    driver = browser
    driver.delete_all_cookies()
    driver.get_log("browser")  # drop what earlier tests left
    # Login: every page sends us to the form first.
    driver.get(f"{base}/ui/tasks/{swarm.task}")
    _wait_url(driver, lambda url: "/ui/login" in url)
    driver.find_element(By.ID, "key").send_keys("wrong")
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 10).until(lambda d: "does not open the console" in d.page_source)
    driver.find_element(By.ID, "key").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait_url(driver, lambda url: url == f"{base}/ui/tasks/{swarm.task}")
    # Hostile titles, log messages, metadata and draft text are shown, never run.
    assert '<script>alert("x")</script>' in driver.find_element(By.TAG_NAME, "h1").text
    _no_alert(driver)
    messages = driver.find_elements(By.CSS_SELECTOR, "#logs td.msg")
    assert len(messages) == 3 and "onerror=alert(1)" in messages[0].text
    # Links: the subtask, then back to its parent through the breadcrumb.
    driver.find_element(By.CSS_SELECTOR, f'a[href="/ui/tasks/{swarm.subtask}"]').click()
    _wait_url(driver, lambda url: url.endswith(f"/ui/tasks/{swarm.subtask}"))
    driver.find_element(By.CSS_SELECTOR, f'.crumbs a[href="/ui/tasks/{swarm.task}"]').click()
    _wait_url(driver, lambda url: url.endswith(f"/ui/tasks/{swarm.task}"))
    # A log filter goes into the query string and narrows the rows.
    Select(driver.find_element(By.ID, "f-level")).select_by_visible_text("error")
    driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
    _wait_url(driver, lambda url: "level=error" in url)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#logs tbody tr")) == 1
    # The task list's filters; the navigation; the agents tree.
    driver.find_element(By.LINK_TEXT, "Tasks").click()
    _wait_url(driver, lambda url: url.endswith("/ui/tasks"))
    Select(driver.find_element(By.ID, "f-type")).select_by_visible_text("analysis")
    driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
    _wait_url(driver, lambda url: "type=analysis" in url)
    rows = driver.find_elements(By.CSS_SELECTOR, "main tbody tr")
    assert len(rows) == 1 and "Sub <script>" in rows[0].text
    for label in ("Overview", "Agents", "Logs", "Conversations", "Activity", "Operations"):
        driver.find_element(By.LINK_TEXT, label).click()
        WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d, label=label: d.find_element(By.TAG_NAME, "h1").text == label
        )
        _no_alert(driver)
    driver.get(f"{base}/ui/conversations/{swarm.conversation}")
    _no_alert(driver)
    assert _errors(driver) == []
    # Logout ends the session.
    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
    _wait_url(driver, lambda url: "/ui/login" in url)
    driver.get(f"{base}/ui/")
    _wait_url(driver, lambda url: "/ui/login" in url)
    assert _errors(driver) == []


def test_live_logs_appear_without_a_reload(
    browser: Any, make_app: AppFactory, dialect: str
) -> None:
    """Records stored after the task page opened are prepended through the live-tail stream
    (the real endpoint), once each, shown as text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    from swarm_director.api import streams
    from swarm_director.store import logs

    # A short heartbeat: under the development server a stream notices its client gone when a
    # write fails, and the teardown waits for that.
    app = make_app(
        SWARM_STREAM_POLL_S="0.1", SWARM_STREAM_MAX_S="30", SWARM_STREAM_HEARTBEAT_S="0.2"
    )
    swarm = fill(database(app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Request threads are joined on close: the stream's thread must end before the app's
    # database is disposed, or it takes a fresh pooled connection nobody closes.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        driver = browser
        driver.delete_all_cookies()
        driver.get_log("browser")
        driver.get(f"http://127.0.0.1:{server.server_port}/ui/tasks/{swarm.task}")
        before = len(driver.find_elements(By.CSS_SELECTOR, "#logs tbody tr"))
        time.sleep(0.5)  # the page's EventSource connects and fixes its starting point
        with database(app).transaction() as session:
            logs.add_logs(
                session,
                swarm.task,
                [
                    {
                        "agent_type": "live",
                        "message": f'live record {n} <img src=x onerror=alert("live")>',
                        "log_level": "warning",
                    }
                    for n in (1, 2)
                ],
            )
        WebDriverWait(driver, 15).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#logs tbody tr")) == before + 2
        )
        time.sleep(0.5)  # nothing arrives twice
        rows = driver.find_elements(By.CSS_SELECTOR, "#logs tbody tr")
        assert len(rows) == before + 2
        assert "live record 2" in rows[0].text and "live record 1" in rows[1].text
        assert 'onerror=alert("live")' in rows[0].text
        _no_alert(driver)
        assert _errors(driver) == []
    finally:
        browser.get("about:blank")
        # The stream would end at a failed write, but the browser does not always close its
        # connection at once (then it ran to SWARM_STREAM_MAX_S, 30 s): end it as the server
        # does on SIGTERM, within one poll, and join its thread.
        streams.begin_shutdown()
        server.shutdown()
        server.server_close()
        streams.SHUTDOWN.clear()


def test_the_timeline_shows_each_status_change_in_a_browser(
    browser: Any, served: tuple[str, Swarm], tmp_path: Any
) -> None:
    import httpx
    from selenium.webdriver.common.by import By

    base, _swarm = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=auth, timeout=60) as api:
        agent = api.post("/api/agents", json={"name": "browser-worker", "agent_type": "worker"})
        task = api.post("/api/tasks", json={"type": "communication", "title": "Ping the team"})
        task_id, agent_id = task.json()["id"], agent.json()["id"]
        body = {"agent_id": agent_id, "types": ["communication"], "limit": 100}
        claims = api.post("/api/tasks/claim", json=body).json()["claims"]
        token = next(c["lease_token"] for c in claims if c["task"]["id"] == task_id)
        failed = api.post(
            f"/api/tasks/{task_id}/fail", json={"lease_token": token, "error": "SMTP timeout"}
        )
        assert failed.status_code == 200
        api.patch(f"/api/tasks/{task_id}", json={"priority": "critical"})
    driver = browser
    driver.delete_all_cookies()
    driver.get(f"{base}/ui/login")
    driver.find_element(By.ID, "key").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait_url(driver, lambda url: url.endswith("/ui/"))
    driver.get(f"{base}/ui/tasks/{task_id}")
    steps = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ol.timeline li")]
    expected = [
        "created (pending)",
        f"claimed, attempt 1 by agent #{agent_id}",
        "attempt failed, will be retried, attempt 1: SMTP timeout",
        "priority: medium → critical",
    ]
    for text in expected:
        assert any(text in step and "(bootstrap)" in step for step in steps), (text, steps)
    driver.save_screenshot(str(tmp_path / "timeline.png"))
    driver.get(f"{base}/ui/activity?entity=task&entity_id={task_id}")
    rows = driver.find_elements(By.CSS_SELECTOR, "main tbody tr")
    assert len(rows) == 4 and all("bootstrap" in row.text for row in rows)
    assert _errors(driver) == []
