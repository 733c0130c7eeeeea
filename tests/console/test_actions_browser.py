"""Console actions clicked in headless Chromium on a real ``swarm-director serve``, on both
dialects: each button and form, the confirmation pages, and the change checked in the
database and in the history with the key's name as the actor. Skipped without the browser
(failed under ``CI=true``), like :mod:`tests.console.test_browser`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from swarm_director.db import Database, make_engine
from swarm_director.models import Agent, ApiKey, Draft, HistoryEntry, MaintenanceEvent, Task
from swarm_director.store import tasks
from tests.api.conftest import url_text
from tests.console.test_actions import build_world
from tests.console.test_browser import browser  # noqa: F401  (the module's Chromium)
from tests.serving import ServeProcess, serve_env

TOKEN = "actions-browser-token"


@pytest.fixture
def served(db_url: URL, tmp_path: Path) -> Iterator[tuple[str, Database, dict[str, Any]]]:
    db = Database(make_engine(db_url))
    try:
        world = build_world(db)
        env = serve_env(
            {
                "SWARM_API_TOKEN": TOKEN,
                "SWARM_DATA_DIR": str(tmp_path / "data"),
                "SWARM_BACKUP_DIR": str(tmp_path / "backups"),
                # Task pages open a live log stream each; clicking through them fast on a
                # loaded machine can hold more than the default 4 per address for a moment.
                "SWARM_STREAM_MAX_PER_KEY": "20",
            }
        )
        with ServeProcess(url_text(db_url), tmp_path, env=env, workers=2) as server:
            yield server.url, db, world
    finally:
        db.dispose()


def _wait(driver: Any, ok: Any, timeout: float = 15.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: ok(d))


def _login(driver: Any, base: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/ui/login")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait(driver, lambda d: d.current_url.endswith("/ui/"))


def _click(driver: Any, css: str, then: str) -> None:
    """Click the button ``css`` and wait for ``then`` on the page that answers."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()
    try:
        _wait(driver, lambda d: then in d.page_source)
    except TimeoutException:
        main = driver.find_element(By.TAG_NAME, "main").text
        raise AssertionError(f"{then!r} not on {driver.current_url}: {main[:600]}") from None


def _row(db: Database, model: Any, row_id: int) -> Any:
    with db.read() as s:
        return s.get(model, row_id)


def _last(db: Database, entity: str, entity_id: int) -> tuple[str, str]:
    with db.read() as s:
        row = s.execute(
            sa.select(HistoryEntry.action, HistoryEntry.actor)
            .where(HistoryEntry.entity == entity, HistoryEntry.entity_id == entity_id)
            .order_by(HistoryEntry.id.desc())
            .limit(1)
        ).one()
    return row[0], row[1]


def _severe(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_each_action_clicked_in_a_browser(
    browser: Any,  # noqa: F811
    served: tuple[str, Database, dict[str, Any]],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, db, w = served
    driver = browser
    driver.get_log("browser")
    _login(driver, base, w["keys"]["write"])

    # Retry a failed task from its page.
    driver.get(f"{base}/ui/tasks/{w['failed']}")
    _click(driver, f'form[action="/ui/tasks/{w["failed"]}/retry"] button', "is pending again")
    assert _row(db, Task, w["failed"]).status.value == "pending"
    assert _last(db, "task", w["failed"]) == ("update", "write-operator")

    # Fail a running task with a reason: a confirmation page first.
    driver.get(f"{base}/ui/tasks/{w['running']}")
    driver.find_element(By.ID, "a-reason").send_keys("customer withdrew")
    _click(driver, "#a-reason ~ button", "Please confirm")
    assert _row(db, Task, w["running"]).status.value == "in_progress"
    _click(driver, "form.confirm button", "failed: customer withdrew")
    task = _row(db, Task, w["running"])
    assert (task.status.value, task.last_error) == ("failed", "customer withdrew")
    assert _last(db, "task", w["running"]) == ("update", "write-operator")

    # Requeue the stuck task from the work queue page.
    driver.get(f"{base}/ui/queue")
    _click(driver, f'form[action="/ui/tasks/{w["stuck"]}/requeue"] button', "is pending again")
    assert _row(db, Task, w["stuck"]).status.value == "pending"
    assert _last(db, "task", w["stuck"]) == ("requeue", "write-operator")

    # Priority and reassignment of the dead task.
    driver.get(f"{base}/ui/tasks/{w['dead']}")
    Select(driver.find_element(By.ID, "a-priority")).select_by_visible_text("high")
    _click(driver, "#a-priority ~ button", "now has priority high")
    field = driver.find_element(By.ID, "a-agent")
    field.clear()
    field.send_keys(str(w["other_agent"]))
    _click(driver, "#a-agent ~ button", f"is assigned to agent {w['other_agent']}")
    task = _row(db, Task, w["dead"])
    assert (task.priority.value, task.assigned_agent_id) == ("high", w["other_agent"])

    # Bulk retry from the failed list: the count, then the confirmation.
    driver.get(f"{base}/ui/tasks?status=failed")
    _click(driver, "form.bulk button", "Retry 2 failed tasks?")
    _click(driver, "form.confirm button", "2 failed tasks pending again")
    for task_id in (w["dead"], w["running"]):
        assert _row(db, Task, task_id).status.value == "pending"
        assert _last(db, "task", task_id) == ("update", "write-operator")

    # An agent offline (asks first) and back online.
    driver.get(f"{base}/ui/agents/{w['agent']}")
    _click(driver, "section.actions button", "Take it offline")
    _click(driver, "form.confirm button", "is offline")
    assert _row(db, Agent, w["agent"]).status.value == "offline"
    _click(driver, "section.actions button", "back online")
    assert _row(db, Agent, w["agent"]).status.value == "idle"
    assert _last(db, "agent", w["agent"]) == ("update", "write-operator")

    # The draft waiting for review: from the queue page to its text, sent back with notes.
    driver.get(f"{base}/ui/queue")
    driver.find_element(By.PARTIAL_LINK_TEXT, "review it").click()
    _wait(driver, lambda d: "Send back with notes" in d.page_source)
    driver.find_element(By.ID, "r-notes").send_keys("Warmer, please.")
    _click(driver, 'button[value="send_back"]', "sent back to its writer")
    draft = _row(db, Draft, w["draft"])
    assert (draft.status.value, draft.review_notes) == ("rejected", "Warmer, please.")
    assert _last(db, "draft", w["draft"]) == ("update", "write-operator")
    assert _severe(driver) == []

    # A stale page: the task changes after the page was shown; the click is refused.
    driver.get(f"{base}/ui/tasks/{w['dead']}")
    with db.transaction() as s:
        tasks.update_task(s, w["dead"], {"status": "in_progress"})
    Select(driver.find_element(By.ID, "a-priority")).select_by_visible_text("low")
    _click(driver, "#a-priority ~ button", "changed since this page was shown")
    assert _row(db, Task, w["dead"]).priority.value == "high"

    # An admin: a key created (its secret shown once) and revoked; a backup taken.
    _login(driver, base, w["keys"]["admin"])
    driver.get(f"{base}/ui/keys")
    driver.find_element(By.ID, "k-name").send_keys("agent-9")
    Select(driver.find_element(By.ID, "k-scope")).select_by_visible_text("write")
    _click(driver, "#k-expires ~ button, form.act button[type=submit]", "shown this once")
    secret = driver.find_element(By.ID, "secret").get_attribute("value")
    assert secret.startswith("sdk_")
    driver.get(f"{base}/ui/keys")
    assert secret not in driver.page_source
    revoke = '//tr[td[text()="agent-9"]]//button'
    driver.find_element(By.XPATH, revoke).click()
    _wait(driver, lambda d: "Revoke the key" in d.page_source)
    _click(driver, "form.confirm button", "is revoked")
    with db.read() as s:
        key = s.scalars(sa.select(ApiKey).where(ApiKey.name == "agent-9")).one()
        assert key.revoked_at is not None
        key_pk = key.id
    assert _last(db, "api_key", key_pk) == ("update", "admin-operator")
    driver.get(f"{base}/ui/ops")
    _click(driver, 'form[action="/ui/ops/backup"] button', "Backup written")
    with db.read() as s:
        event = s.scalars(
            sa.select(MaintenanceEvent).order_by(MaintenanceEvent.id.desc()).limit(1)
        ).one()
    assert event.details["actor"] == "admin-operator" and event.status.value == "ok"
