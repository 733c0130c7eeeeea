"""Every write path records its change in the history, with its actor: every write operation of
the OpenAPI document (the test fails when one is added without a case here), the writing CLI
commands, and the seeding."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from swarm_director.cli.main import cli
from swarm_director.db import make_engine, utcnow
from swarm_director.db.actor import cli_actor
from swarm_director.models import HistoryEntry, Task
from swarm_director.store import keys
from swarm_director.web.context import database
from tests.api.conftest import AppFactory, url_text
from tests.dbtools import fresh_database

WRITES = ("post", "patch", "put", "delete")


class World:
    """Rows the cases act on, made through the API as the key under test."""

    def __init__(self, client: FlaskClient, n: int) -> None:
        self.client = client
        self.agent = self.post("/api/agents", {"name": f"subject-{n}", "agent_type": "worker"})
        self.other = self.post("/api/agents", {"name": f"other-{n}", "agent_type": "worker"})
        self.task = self.post("/api/tasks", {"type": "analysis", "title": "t"})
        self.draft = self.post(f"/api/tasks/{self.task}/drafts", {"content": "v1"})
        self.email = self.post(
            f"/api/tasks/{self.task}/emails",
            {"recipient": "a@example.com", "subject": "s", "body": "b"},
        )
        self.chat = self.post("/api/conversations", {"title": "c"})
        self.post(f"/api/conversations/{self.chat}/participants", {"agent_id": self.agent})
        self.message = self.post(f"/api/conversations/{self.chat}/messages", {"content": "m"})

    def post(self, url: str, body: dict[str, Any]) -> int:
        response = self.client.post(url, json=body)
        assert response.status_code in (200, 201), (url, response.get_json())
        return int(response.get_json()["id"])

    def claim(self) -> tuple[int, str]:
        task = self.post("/api/tasks", {"type": "communication", "title": "queued"})
        body = {"agent_id": self.agent, "types": ["communication"]}
        claim = self.client.post("/api/tasks/claim", json=body).get_json()["claims"][0]
        assert claim["task"]["id"] == task
        return task, claim["lease_token"]


#: (method, path) -> what to send, and the (entity, id, action) it must record; None: the
#: operation changes no tracked row (a heartbeat only renews a lease; logs are records).
Case = Callable[[World], tuple[str, str, dict[str, Any] | None, tuple[str, int, str] | None]]
CASES: dict[tuple[str, str], Case] = {
    ("post", "/api/agents"): lambda w: (
        "POST", "/api/agents", {"name": f"new-{w.agent}", "agent_type": "worker"},
        ("agent", 0, "create")),
    ("patch", "/api/agents/{agent_id}"): lambda w: (
        "PATCH", f"/api/agents/{w.agent}", {"status": "busy"}, ("agent", w.agent, "update")),
    ("delete", "/api/agents/{agent_id}"): lambda w: (
        "DELETE", f"/api/agents/{w.other}", None, ("agent", w.other, "delete")),
    ("post", "/api/tasks"): lambda w: (
        "POST", "/api/tasks", {"type": "analysis", "title": "x"}, ("task", 0, "create")),
    ("patch", "/api/tasks/{task_id}"): lambda w: (
        "PATCH", f"/api/tasks/{w.task}", {"title": "y"}, ("task", w.task, "update")),
    ("delete", "/api/tasks/{task_id}"): lambda w: (
        "DELETE", f"/api/tasks/{w.post('/api/tasks', {'type': 'analysis', 'title': 'd'})}",
        None, ("task", -1, "delete")),
    ("post", "/api/tasks/claim"): lambda w: _claim_case(w),
    ("post", "/api/tasks/{task_id}/heartbeat"): lambda w: _lease_case(w, "heartbeat", None),
    ("post", "/api/tasks/{task_id}/complete"): lambda w: _lease_case(w, "complete", "complete"),
    ("post", "/api/tasks/{task_id}/fail"): lambda w: _lease_case(w, "fail", "retry"),
    ("post", "/api/tasks/{task_id}/requeue"): lambda w: _requeue_case(w),
    ("post", "/api/tasks/{task_id}/logs"): lambda w: (
        "POST", f"/api/tasks/{w.task}/logs", {"agent_type": "a", "message": "m"}, None),
    ("post", "/api/tasks/{task_id}/drafts"): lambda w: (
        "POST", f"/api/tasks/{w.task}/drafts", {"content": "v2"}, ("draft", 0, "create")),
    ("patch", "/api/drafts/{draft_id}"): lambda w: (
        "PATCH", f"/api/drafts/{w.draft}", {"status": "under_review"},
        ("draft", w.draft, "update")),
    ("post", "/api/tasks/{task_id}/emails"): lambda w: (
        "POST", f"/api/tasks/{w.task}/emails",
        {"recipient": "b@example.com", "subject": "s", "body": "b"}, ("email", 0, "create")),
    ("patch", "/api/emails/{email_id}"): lambda w: (
        "PATCH", f"/api/emails/{w.email}", {"status": "queued"}, ("email", w.email, "update")),
    ("post", "/api/conversations"): lambda w: (
        "POST", "/api/conversations", {"title": "n"}, ("conversation", 0, "create")),
    ("patch", "/api/conversations/{conversation_id}"): lambda w: (
        "PATCH", f"/api/conversations/{w.chat}", {"title": "m"},
        ("conversation", w.chat, "update")),
    ("delete", "/api/conversations/{conversation_id}"): lambda w: (
        "DELETE", f"/api/conversations/{w.post('/api/conversations', {'title': 'd'})}", None,
        ("conversation", -1, "delete")),
    ("post", "/api/conversations/{conversation_id}/participants"): lambda w: (
        "POST", f"/api/conversations/{w.chat}/participants", {"agent_id": w.other},
        ("participant", 0, "create")),
    ("delete", "/api/conversations/{conversation_id}/participants/{agent_id}"): lambda w: (
        "DELETE", f"/api/conversations/{w.chat}/participants/{w.agent}", None,
        ("participant", -2, "update")),
    ("post", "/api/conversations/{conversation_id}/messages"): lambda w: (
        "POST", f"/api/conversations/{w.chat}/messages", {"content": "hi"},
        ("message", 0, "create")),
    ("patch", "/api/messages/{message_id}"): lambda w: (
        "PATCH", f"/api/messages/{w.message}", {"content": "edited"},
        ("message", w.message, "update")),
}  # fmt: skip


def _claim_case(w: World) -> Any:
    task = w.post("/api/tasks", {"type": "document_review", "title": "to claim"})
    body = {"agent_id": w.agent, "types": ["document_review"]}
    return "POST", "/api/tasks/claim", body, ("task", task, "claim")


def _lease_case(w: World, step: str, action: str | None) -> Any:
    task, token = w.claim()
    body: dict[str, Any] = {"lease_token": token}
    if step == "fail":
        body["error"] = "boom"
    return "POST", f"/api/tasks/{task}/{step}", body, ("task", task, action) if action else None


def _requeue_case(w: World) -> Any:
    task, _token = w.claim()
    with database(w.client.application).transaction() as session:  # the lease runs out
        session.execute(
            sa.update(Task)
            .where(Task.id == task)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    return "POST", f"/api/tasks/{task}/requeue", {}, ("task", task, "requeue")


@pytest.fixture
def keyed(make_app: AppFactory) -> tuple[Flask, FlaskClient]:
    app = make_app()
    with database(app).transaction() as session:
        token = keys.create_key(session, "auditor-key", "admin").token
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return app, client


def _newest(app: Flask) -> HistoryEntry | None:
    with database(app).read() as session:
        return session.scalars(sa.select(HistoryEntry).order_by(HistoryEntry.id.desc())).first()


def test_every_write_route_records_its_change_and_actor(keyed: tuple[Flask, FlaskClient]) -> None:
    app, client = keyed
    doc = client.get("/api/openapi.json").get_json()
    routes = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in WRITES}
    assert routes == set(CASES), "a write route without a history case (or a stale case)"
    for n, (route, case) in enumerate(sorted(CASES.items())):
        world = World(client, n)
        method, url, body, expected = case(world)
        before = _newest(app)
        response = client.open(url, method=method, json=body)
        assert response.status_code < 300, (route, response.get_json())
        row = _newest(app)
        if expected is None:
            assert row is not None and before is not None and row.id == before.id, route
            continue
        entity, entity_id, action = expected
        assert row is not None and (row.entity, row.action) == (entity, action), route
        if entity_id == 0:  # the new row's id, from the answer
            entity_id = response.get_json()["id"]
        if entity_id > 0:
            assert row.entity_id == entity_id, route
        assert row.actor == "auditor-key", route
        assert row.request_id == response.headers["X-Request-ID"], route


@pytest.fixture
def url(dialect: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(dialect, tmp_path) as fresh:
        text = url_text(fresh)
        assert CliRunner().invoke(cli, ["db", "init", "--database-url", text]).exit_code == 0
        yield text


def _rows(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(HistoryEntry).order_by(HistoryEntry.id)).all())
    finally:
        engine.dispose()


def test_every_writing_cli_command_records_its_changes_as_the_cli(url: str) -> None:
    runner = CliRunner()
    commands = [
        (["db", "seed", "--database-url", url], {"agent", "task", "draft", "email"}),
        (["db", "seed", "--database-url", url, "--scale", "3", "--logs-per-task", "1"], {"task"}),
        (["keys", "create", "robot", "--scope", "read", "--database-url", url], {"api_key"}),
        (["keys", "revoke", "robot", "--database-url", url], {"api_key"}),
    ]
    seen = 0
    for args, entities in commands:
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        rows = _rows(url)[seen:]
        seen += len(rows)
        assert rows, args
        assert {r.entity for r in rows} >= entities, args
        assert {r.actor for r in rows} == {cli_actor()}, args
