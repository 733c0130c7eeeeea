"""Fixtures for console tests: an app on each dialect with a small swarm, hostile text included."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event

from swarm_director.db import Database, utcnow
from swarm_director.store import agents, conversations, drafts, emails, logs, tasks
from swarm_director.web.context import database
from tests.api.conftest import AppFactory, make_app  # noqa: F401  (fixture)

#: Text that would run script or break markup if it were not escaped.
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'


@dataclass
class Swarm:
    director: int
    worker: int
    task: int
    subtask: int
    conversation: int


def fill(db: Database, *, extra_tasks: int = 0, logs_per_task: int = 3, name: str = "") -> Swarm:
    """A director with a worker, a task with a subtask, logs, two drafts, an email and a
    conversation, all with hostile titles and text; ``extra_tasks`` more tasks with logs."""
    with db.transaction() as s:
        director = agents.create_agent(
            s, {"name": f"director{name} {HOSTILE}", "agent_type": "supervisor"}
        )
        worker = agents.create_agent(
            s, {"name": f"writer{name}", "agent_type": "worker", "parent_id": director.id}
        )
        task = tasks.create_task(
            s,
            {
                "type": "email_draft",
                "title": f"Task {HOSTILE}",
                "description": HOSTILE,
                "assigned_agent_id": worker.id,
            },
        )
        sub = tasks.create_task(
            s, {"type": "analysis", "title": f"Sub {HOSTILE}", "parent_task_id": task.id}
        )
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "agent_type": "writer",
                "agent_id": worker.id,
                "message": f"step {i} {HOSTILE}",
                "log_level": ("info", "warning", "error")[i % 3],
                "session_id": f"s-{i % 2}",
                "metadata": {"html": HOSTILE},
                "timestamp": now - timedelta(seconds=100 - i),
            }
            for i in range(logs_per_task)
        ]
        logs.add_logs(s, task.id, rows)
        drafts.create_draft(s, task.id, {"content": f"Dear all,\n{HOSTILE}\n"})
        drafts.create_draft(s, task.id, {"content": "Dear all,\nplain\n"})
        emails.create_email(
            s, task.id, {"recipient": "a@example.com", "subject": HOSTILE, "body": HOSTILE}
        )
        convo = conversations.create_conversation(
            s, {"title": f"Talk {HOSTILE}", "task_id": task.id, "metadata": {"x": HOSTILE}}
        )
        conversations.add_participant(s, convo.id, worker.id)
        conversations.add_message(s, convo.id, {"content": HOSTILE, "sender_agent_id": worker.id})
        for n in range(extra_tasks):
            extra = tasks.create_task(
                s,
                {"type": "analysis", "title": f"extra {n}", "assigned_agent_id": worker.id},
            )
            logs.add_logs(s, extra.id, [dict(r) for r in rows])
        return Swarm(director.id, worker.id, task.id, sub.id, convo.id)


@pytest.fixture
def console_app(make_app: AppFactory) -> Flask:  # noqa: F811
    return make_app()


@pytest.fixture
def swarm(console_app: Flask) -> Swarm:
    return fill(database(console_app))


@pytest.fixture
def ui(console_app: Flask) -> FlaskClient:
    return console_app.test_client()


@dataclass
class Counter:
    statements: list[str]

    def __len__(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements() -> Iterator[Callable[[Engine], Counter]]:
    """Counts the SQL statements an engine runs from the moment it is attached."""
    attached: list[tuple[Engine, Any]] = []

    def attach(engine: Engine) -> Counter:
        counter = Counter([])

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            # "Do API keys exist?" is asked at most once a second, not per page: leave it out
            # so that counts do not depend on the clock.
            if "api_keys" not in statement:
                counter.statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        attached.append((engine, record))
        return counter

    yield attach
    for engine, record in attached:
        event.remove(engine, "before_cursor_execute", record)
