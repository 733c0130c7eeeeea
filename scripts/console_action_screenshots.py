"""Screenshots of the console's actions, for docs/console.md.

    .venv/bin/python scripts/console_action_screenshots.py [--out docs/console]

Creates a fresh embedded database in a temporary folder (``db init`` and ``db seed``), adds a
failed, a running, a stuck task and a draft under review, starts ``swarm-director serve``
with a token and clicks through the actions in headless Chromium at 1280 px, photographing
each step: ``actions-<step>.png``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from console_screenshots import SWARM_DIRECTOR, browser, free_port

TOKEN = "screenshot-token-0123456789"  # noqa: S105  (a throwaway server's)


def _world(data_dir: Path) -> dict[str, Any]:
    """Tasks to act on (failed, running, stuck), a draft under review, and a read key."""
    import sqlalchemy as sa

    from swarm_director.config import load_settings
    from swarm_director.db import Database, utcnow
    from swarm_director.enums import ApiScope
    from swarm_director.models import Task
    from swarm_director.store import agents, drafts, keys, queue, tasks

    db = Database.from_settings(load_settings(SWARM_DATA_DIR=str(data_dir)))
    try:
        with db.transaction() as s:
            agent = agents.create_agent(s, {"name": "night-shift-writer", "agent_type": "worker"})
            made = {}
            for name, title in [
                ("failed", "Summarise the Q3 churn interviews"),
                ("running", "Draft the renewal reminder"),
                ("stuck", "Classify inbound support mail"),
            ]:
                attempts = 1 if name == "failed" else 3  # the failed one is dead: no attempt left
                made[name] = tasks.create_task(
                    s,
                    {
                        "type": "analysis",
                        "title": title,
                        "priority": "critical",
                        "max_attempts": attempts,
                    },
                ).id
            letter = tasks.create_task(s, {"type": "email_draft", "title": "Welcome letter"})
            draft = drafts.create_draft(s, letter.id, {"content": "Dear Ada,\nwelcome aboard.\n"})
            drafts.review_draft(s, draft.id, {"status": "under_review"})
            read_key = keys.create_key(s, "dashboard-reader", ApiScope.READ).token
            keys.create_key(s, "agent-7", ApiScope.WRITE)
            agent_id, letter_id = agent.id, letter.id
        with db.transaction() as s:
            claims = queue.claim_tasks(s, agent_id, lease_s=600, limit=10)
            token = {c.task.id: c.lease_token for c in claims}
            queue.fail_task(
                s, made["failed"], token[made["failed"]], "model timed out", retry=False
            )
            s.execute(
                sa.update(Task)
                .where(Task.id == made["stuck"])
                .values(lease_expires_at=utcnow() - timedelta(minutes=3))
            )
            agent_row = agents.get_agent(s, agent_id)
            agent_row.last_seen_at = utcnow() - timedelta(hours=1)
        return {**made, "letter": letter_id, "read_key": read_key}
    finally:
        db.dispose()


def main() -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        env = {**os.environ, "SWARM_DATA_DIR": str(data), "SWARM_ENV": "development"}
        env.pop("DATABASE_URL", None)
        env.pop("SWARM_API_TOKEN", None)
        run = {"env": env, "cwd": tmp, "check": True, "stdout": subprocess.DEVNULL}
        subprocess.run([*SWARM_DIRECTOR, "db", "init"], **run)  # type: ignore[call-overload]
        subprocess.run([*SWARM_DIRECTOR, "db", "seed"], **run)  # type: ignore[call-overload]
        world = _world(data)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*SWARM_DIRECTOR, "serve", "--port", str(port), "--workers", "1"],
            env={**env, "SWARM_API_TOKEN": TOKEN},
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        driver: Any = None
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.1)
            driver = browser(1280, 900, False)

            def shot(name: str, full: bool = False) -> None:
                if full:
                    height = driver.execute_script("return document.documentElement.scrollHeight")
                    driver.set_window_size(1280, min(int(height) + 100, 4000))
                target = args.out / f"actions-{name}.png"
                driver.save_screenshot(str(target))
                driver.set_window_size(1280, 900)
                print(target)

            def login(key: str) -> None:
                driver.delete_all_cookies()
                driver.get(f"{base}/ui/login")
                driver.find_element(By.ID, "key").send_keys(key)
                driver.find_element(By.CSS_SELECTOR, "form.login button").click()
                WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("/ui/"))

            def click(css: str, then: str) -> None:
                driver.find_element(By.CSS_SELECTOR, css).click()
                WebDriverWait(driver, 20).until(lambda d: then in d.page_source)

            login(TOKEN)
            driver.get(f"{base}/ui/queue")
            shot("queue", full=True)
            driver.get(f"{base}/ui/tasks/{world['running']}")
            shot("task")
            driver.find_element(By.ID, "a-reason").send_keys("the customer withdrew the request")
            click("#a-reason ~ button", "Please confirm")
            shot("fail-confirm")
            click("form.confirm button", "failed: the customer")
            shot("done")
            driver.get(f"{base}/ui/tasks?status=failed")
            click("form.bulk button", "Retry 2 failed tasks?")
            shot("bulk-confirm")
            driver.get(f"{base}/ui/tasks/{world['letter']}?version=1#h-drafts")
            driver.find_element(By.ID, "r-notes").send_keys("Warmer, and sign it from the team.")
            shot("draft-review")
            driver.get(f"{base}/ui/tasks/{world['stuck']}")
            _touch_task(data, world["stuck"])
            click("#a-priority ~ button", "changed since this page was shown")
            shot("stale")
            driver.get(f"{base}/ui/keys")
            driver.find_element(By.ID, "k-name").send_keys("reporting-job")
            shot("keys")
            click("form.act button[type=submit]", "shown this once")
            shot("key-created")
            narrow = browser(320, 900, True)  # the forms reflow on a phone, in dark mode
            try:
                driver, wide = narrow, driver
                login(TOKEN)
                driver.get(f"{base}/ui/tasks/{world['stuck']}")
                target = args.out / "actions-task-320-dark.png"
                driver.save_screenshot(str(target))
                print(target)
            finally:
                narrow.quit()
                driver = wide
            login(world["read_key"])
            driver.get(f"{base}/ui/tasks/{world['stuck']}")
            shot("read-only")
        finally:
            if driver is not None:
                driver.quit()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def _touch_task(data_dir: Path, task_id: int) -> None:
    """An agent changes the task after the page was shown (it claims it back, say)."""
    from swarm_director.config import load_settings
    from swarm_director.db import Database
    from swarm_director.store import tasks

    db = Database.from_settings(load_settings(SWARM_DATA_DIR=str(data_dir)))
    try:
        with db.transaction() as s:
            tasks.update_task(s, task_id, {"description": "picked up again by an agent"})
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
