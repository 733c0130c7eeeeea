"""Console actions (Flask test client, SQLite and PostgreSQL): each action changes what the
same API call changes and the history names the session's key; every refusal (no or wrong
CSRF token, a foreign or missing Origin, a read-only session, a revoked key, a stale page, a
lesser scope) answers one plain message and changes nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from swarm_director.db import Database, utcnow
from swarm_director.enums import ApiScope
from swarm_director.models import Agent, ApiKey, Draft, HistoryEntry, MaintenanceEvent, Task
from swarm_director.store import agents, drafts, keys, queue, tasks
from swarm_director.web.context import database
from tests.api.conftest import AppFactory

TOKEN = "actions-bootstrap-token"
ORIGIN = {"Origin": "http://localhost"}


@dataclass
class World:
    app: Flask
    keys: dict[str, str]
    agent: int
    other_agent: int
    failed: int
    dead: int
    running: int
    stuck: int
    draft: int


def build_world(db: Database) -> dict[str, Any]:
    """API keys of each scope (and ``doomed``, write), two agents, tasks failed, dead (no
    attempt left), running (live lease), stuck (lease expired), a draft under review."""
    now = utcnow()
    with db.transaction() as s:
        made = {
            scope.value: keys.create_key(s, f"{scope.value}-operator", scope).token
            for scope in ApiScope
        }
        made["doomed"] = keys.create_key(s, "doomed", ApiScope.WRITE).token
        agent = agents.create_agent(s, {"name": "worker-a", "agent_type": "worker"})
        other = agents.create_agent(s, {"name": "worker-b", "agent_type": "worker"})
        ids = {}
        for name in ("failed", "dead", "running", "stuck"):
            ids[name] = tasks.create_task(
                s, {"type": "analysis", "title": f"{name} task", "max_attempts": 1}
            ).id
        draft_task = tasks.create_task(s, {"type": "email_draft", "title": "letter"})
        draft = drafts.create_draft(s, draft_task.id, {"content": "Dear all"})
        drafts.review_draft(s, draft.id, {"status": "under_review"})
        draft_id = draft.id
        agent_id, other_id = agent.id, other.id
    with db.transaction() as s:
        # Claims in id order: failed, dead, running, stuck (one attempt each).
        claims = queue.claim_tasks(s, agent_id, lease_s=3600, limit=4)
        token = {c.task.id: c.lease_token for c in claims}
        queue.fail_task(s, ids["failed"], token[ids["failed"]], "boom", retry=False)
        queue.fail_task(s, ids["dead"], token[ids["dead"]], "boom again", retry=False)
    with db.transaction() as s:  # the stuck task's lease ran out a minute ago
        s.execute(
            sa.update(Task)
            .where(Task.id == ids["stuck"])
            .values(lease_expires_at=now - timedelta(minutes=1))
        )
    return {
        "keys": made,
        "agent": agent_id,
        "other_agent": other_id,
        **ids,
        "draft": draft_id,
    }


@pytest.fixture
def world(make_app: AppFactory, tmp_path: Path) -> World:
    app = make_app(SWARM_API_TOKEN=TOKEN, SWARM_BACKUP_DIR=str(tmp_path / "backups"))
    return World(app=app, **build_world(database(app)))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


class Operator:
    """A browser's session: logged in with a key, reading pages and posting their forms."""

    def __init__(self, app: Flask, key: str) -> None:
        self.client: FlaskClient = app.test_client()
        form = self.client.get("/ui/login").get_data(as_text=True)
        done = self.client.post("/ui/login", data={"key": key, "csrf": _csrf(form)})
        assert done.status_code == 302, done.get_data(as_text=True)[:300]
        self.csrf = _csrf(self.client.get("/ui/").get_data(as_text=True))

    def page(self, url: str) -> str:
        response = self.client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response.get_data(as_text=True)

    def post(
        self, url: str, data: dict[str, Any], *, csrf: str | None = "", headers: Any = None
    ) -> Any:
        fields = dict(data)
        if csrf is not None:
            fields["csrf"] = csrf or self.csrf
        return self.client.post(url, data=fields, headers=ORIGIN if headers is None else headers)


def _stamp(db: Database, model: Any, row_id: int) -> str:
    with db.read() as s:
        row = s.get(model, row_id)
        assert row is not None
        return str(row.updated_at.isoformat())


def _row(db: Database, model: Any, row_id: int) -> Any:
    with db.read() as s:
        return s.get(model, row_id)


def _history(db: Database, entity: str, entity_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    with db.read() as s:
        rows = s.execute(
            sa.select(HistoryEntry.action, HistoryEntry.actor, HistoryEntry.changes)
            .where(HistoryEntry.entity == entity, HistoryEntry.entity_id == entity_id)
            .order_by(HistoryEntry.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _snapshot(db: Database) -> list[Any]:
    """Every row an action could change, and the history's and audit trail's length."""
    with db.read() as s:
        found: list[Any] = []
        for model in (Task, Agent, Draft, ApiKey):
            found += [tuple(r) for r in s.execute(sa.select(*model.__table__.c)).all()]
        found.append(s.scalar(sa.select(sa.func.count()).select_from(HistoryEntry)))
        found.append(s.scalar(sa.select(sa.func.count()).select_from(MaintenanceEvent)))
        return found


def _refused(response: Any, status: int, words: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, text[:500])
    assert words in text, text[:800]


# -- each action, through the same store call as the API, named in the history --------------


def test_retry_fail_requeue_priority_and_reassign(world: World) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["write"])
    page = op.page(f"/ui/tasks/{world.failed}")
    assert f'action="/ui/tasks/{world.failed}/retry"' in page
    seen = _stamp(db, Task, world.failed)
    response = op.post(f"/ui/tasks/{world.failed}/retry", {"seen": seen})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/ui/tasks/{world.failed}"
    assert "is pending again" in op.page(f"/ui/tasks/{world.failed}")  # shown once
    assert "is pending again" not in op.page(f"/ui/tasks/{world.failed}")
    task = _row(db, Task, world.failed)
    assert task.status.value == "pending" and task.max_attempts == 2  # one more attempt
    action, actor, changes = _history(db, "task", world.failed)[-1]
    assert (action, actor) == ("update", "write-operator")
    assert changes["status"] == ["failed", "pending"]

    # Fail asks first; the confirmation changes nothing.
    seen = _stamp(db, Task, world.running)
    before = _snapshot(db)
    asked = op.post(f"/ui/tasks/{world.running}/fail", {"seen": seen, "reason": "wrong input"})
    assert asked.status_code == 200 and "Please confirm" in asked.get_data(as_text=True)
    assert 'name="confirmed" value="yes"' in asked.get_data(as_text=True)
    assert _snapshot(db) == before
    response = op.post(
        f"/ui/tasks/{world.running}/fail",
        {"seen": seen, "reason": "wrong input", "confirmed": "yes"},
    )
    assert response.status_code == 303
    task = _row(db, Task, world.running)
    assert (task.status.value, task.last_error, task.lease_token) == ("failed", "wrong input", None)
    assert _history(db, "task", world.running)[-1][:2] == ("update", "write-operator")

    seen = _stamp(db, Task, world.stuck)
    assert op.post(f"/ui/tasks/{world.stuck}/requeue", {"seen": seen}).status_code == 303
    task = _row(db, Task, world.stuck)
    assert task.status.value == "pending" and task.assigned_agent_id is None
    assert task.lease_expires_at is None and task.max_attempts == 2
    action, actor, changes = _history(db, "task", world.stuck)[-1]
    assert (action, actor) == ("requeue", "write-operator")
    assert changes["status"] == ["in_progress", "pending"]
    assert "requeued by hand after its lease expired" in op.page(f"/ui/tasks/{world.stuck}")

    seen = _stamp(db, Task, world.dead)
    response = op.post(f"/ui/tasks/{world.dead}/priority", {"seen": seen, "priority": "critical"})
    assert response.status_code == 303
    assert _row(db, Task, world.dead).priority.value == "critical"
    seen = _stamp(db, Task, world.dead)
    response = op.post(
        f"/ui/tasks/{world.dead}/assign", {"seen": seen, "agent_id": str(world.other_agent)}
    )
    assert response.status_code == 303
    assert _row(db, Task, world.dead).assigned_agent_id == world.other_agent
    assert [h[:2] for h in _history(db, "task", world.dead)[-2:]] == [
        ("update", "write-operator"),
        ("update", "write-operator"),
    ]


def test_bulk_retry_counts_then_asks_then_retries_exactly_those(world: World) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["write"])
    listing = op.page("/ui/tasks?status=failed")
    assert 'action="/ui/tasks/retry"' in listing
    assert 'action="/ui/tasks/retry"' not in op.page("/ui/tasks")  # only on the failed list
    before = _snapshot(db)
    asked = op.post("/ui/tasks/retry", {"type": "analysis"})
    text = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Retry 2 failed tasks?" in text
    assert _snapshot(db) == before
    ids = re.search(r'name="ids" value="([^"]+)"', text)
    assert ids and sorted(map(int, ids.group(1).split(","))) == sorted([world.failed, world.dead])
    response = op.post(
        "/ui/tasks/retry", {"type": "analysis", "ids": ids.group(1), "confirmed": "yes"}
    )
    assert response.status_code == 303
    assert "2 failed tasks pending again" in op.page(response.headers["Location"])
    for task_id in (world.failed, world.dead):
        assert _row(db, Task, task_id).status.value == "pending"
        assert _history(db, "task", task_id)[-1][1] == "write-operator"
    # Nothing failed any more: the list is gone from the page, and a forged POST says so.
    _refused(op.post("/ui/tasks/retry", {}), 409, "no failed task matches")


def test_agent_offline_and_online_and_draft_review(world: World) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["write"])
    assert "Take offline" in op.page(f"/ui/agents/{world.agent}")
    seen = _stamp(db, Agent, world.agent)
    asked = op.post(f"/ui/agents/{world.agent}/status", {"seen": seen, "status": "offline"})
    assert asked.status_code == 200 and "Take agent" in asked.get_data(as_text=True)
    assert _row(db, Agent, world.agent).status.value != "offline"
    response = op.post(
        f"/ui/agents/{world.agent}/status",
        {"seen": seen, "status": "offline", "confirmed": "yes"},
    )
    assert response.status_code == 303
    assert _row(db, Agent, world.agent).status.value == "offline"
    seen = _stamp(db, Agent, world.agent)
    assert "Bring online" in op.page(f"/ui/agents/{world.agent}")
    response = op.post(f"/ui/agents/{world.agent}/status", {"seen": seen, "status": "idle"})
    assert response.status_code == 303
    assert _row(db, Agent, world.agent).status.value == "idle"
    assert [h[:2] for h in _history(db, "agent", world.agent)[-2:]] == [
        ("update", "write-operator"),
        ("update", "write-operator"),
    ]

    draft = _row(db, Draft, world.draft)
    queue_page = op.page("/ui/queue")
    assert f"/ui/tasks/{draft.task_id}?version=1" in queue_page  # waiting for review
    task_page = op.page(f"/ui/tasks/{draft.task_id}?version=1")
    assert f'action="/ui/drafts/{world.draft}/review"' in task_page
    seen = _stamp(db, Draft, world.draft)
    # Sending back needs notes.
    _refused(
        op.post(f"/ui/drafts/{world.draft}/review", {"seen": seen, "decision": "send_back"}),
        422,
        "notes",
    )
    response = op.post(
        f"/ui/drafts/{world.draft}/review",
        {"seen": seen, "decision": "send_back", "notes": "Too stiff; say hello."},
    )
    assert response.status_code == 303
    draft = _row(db, Draft, world.draft)
    assert (draft.status.value, draft.review_notes) == ("rejected", "Too stiff; say hello.")
    action, actor, changes = _history(db, "draft", world.draft)[-1]
    assert (action, actor, changes["status"]) == (
        "update",
        "write-operator",
        ["under_review", "rejected"],
    )
    # Decided: no more review form, and a forged approval is refused.
    seen = _stamp(db, Draft, world.draft)
    _refused(
        op.post(f"/ui/drafts/{world.draft}/review", {"seen": seen, "decision": "approve"}),
        409,
        "rejected already",
    )


def test_draft_approval(world: World) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["write"])
    seen = _stamp(db, Draft, world.draft)
    response = op.post(f"/ui/drafts/{world.draft}/review", {"seen": seen, "decision": "approve"})
    assert response.status_code == 303
    assert _row(db, Draft, world.draft).status.value == "approved"
    assert _history(db, "draft", world.draft)[-1][1] == "write-operator"


def test_admin_creates_and_revokes_keys_and_takes_a_backup(world: World, tmp_path: Path) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["admin"])
    assert "Back up now" in op.page("/ui/ops")
    page = op.page("/ui/keys")
    assert "read-operator" in page
    response = op.post("/ui/keys", {"name": "agent-7", "scope": "write", "expires": "30d"})
    assert response.status_code == 200
    token = re.search(r'id="secret"[^>]*value="([^"]+)"', response.get_data(as_text=True))
    assert token and token.group(1).startswith("sdk_")
    api = world.app.test_client()
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    assert api.get("/api/tasks", headers=headers).status_code == 200
    assert token.group(1) not in op.page("/ui/keys")  # shown once, never again
    with db.read() as s:
        created = s.scalars(sa.select(ApiKey).where(ApiKey.name == "agent-7")).one()
        key_pk = created.id
        assert created.expires_at is not None
    assert _history(db, "api_key", key_pk)[-1][:2] == ("create", "admin-operator")
    asked = op.post("/ui/keys/revoke", {"name": "agent-7"})
    assert asked.status_code == 200 and "Revoke the key" in asked.get_data(as_text=True)
    assert api.get("/api/tasks", headers=headers).status_code == 200
    response = op.post("/ui/keys/revoke", {"name": "agent-7", "confirmed": "yes"})
    assert response.status_code == 303
    assert api.get("/api/tasks", headers=headers).status_code == 401
    assert _history(db, "api_key", key_pk)[-1][1] == "admin-operator"

    response = op.post("/ui/ops/backup", {})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert "Backup written" in op.page("/ui/ops")
    files = [p for p in (tmp_path / "backups").iterdir() if not p.name.endswith(".json")]
    assert len(files) == 1
    with db.read() as s:
        event = s.scalars(
            sa.select(MaintenanceEvent).order_by(MaintenanceEvent.id.desc()).limit(1)
        ).one()
    assert event.operation.value == "backup" and event.status.value == "ok"
    assert event.details["actor"] == "admin-operator" and event.details["kind"] == "console"


# -- refusals: one plain message, nothing changed ---------------------------------------------


def _retry(op: Operator, world: World, **kwargs: Any) -> Any:
    seen = _stamp(database(world.app), Task, world.failed)
    return op.post(f"/ui/tasks/{world.failed}/retry", {"seen": seen}, **kwargs)


def test_csrf_and_origin_are_checked(world: World) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["write"])
    before = _snapshot(db)
    _refused(_retry(op, world, csrf=None), 403, "security token does not match")
    _refused(_retry(op, world, csrf="x" * 32), 403, "security token does not match")
    other = Operator(world.app, world.keys["write"])  # another session's token
    _refused(_retry(op, world, csrf=other.csrf), 403, "security token does not match")
    for origin in (
        "http://evil.example",
        "null",
        "http://localhost.evil.example",
        "http://localhost:1",
    ):
        _refused(_retry(op, world, headers={"Origin": origin}), 403, "Origin header")
    _refused(_retry(op, world, headers={}), 403, "Origin header")
    assert _snapshot(db) == before
    assert _retry(op, world).status_code == 303  # the same form, right: accepted


def test_a_read_session_sees_no_buttons_and_is_refused(world: World) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["read"])
    for url in (
        f"/ui/tasks/{world.failed}",
        f"/ui/agents/{world.agent}",
        "/ui/queue",
        "/ui/tasks?status=failed",
    ):
        html = op.page(url)
        assert 'method="post"' not in html.replace('class="logout" method="post"', ""), url
    before = _snapshot(db)
    _refused(_retry(op, world), 403, "needs a key with scope write")
    seen = _stamp(db, Agent, world.agent)
    _refused(
        op.post(
            f"/ui/agents/{world.agent}/status",
            {"seen": seen, "status": "offline", "confirmed": "yes"},
        ),
        403,
        "scope write",
    )
    assert _snapshot(db) == before


def test_a_write_session_cannot_manage_keys_or_take_backups(world: World, tmp_path: Path) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["write"])
    assert "Back up now" not in op.client.get("/ui/ops").get_data(as_text=True)
    assert op.client.get("/ui/keys").status_code == 403
    before = _snapshot(db)
    _refused(op.post("/ui/keys", {"name": "mine", "scope": "admin"}), 403, "scope admin")
    _refused(
        op.post("/ui/keys/revoke", {"name": "admin-operator", "confirmed": "yes"}),
        403,
        "scope admin",
    )
    _refused(op.post("/ui/ops/backup", {}), 403, "scope admin")
    assert _snapshot(db) == before
    assert not (tmp_path / "backups").exists()


def test_a_revoked_key_ends_the_session_and_its_forms(world: World) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["doomed"])
    seen = _stamp(db, Task, world.failed)
    with db.transaction() as s:
        keys.revoke_key(s, "doomed")
    before = _snapshot(db)
    response = op.post(f"/ui/tasks/{world.failed}/retry", {"seen": seen})
    assert response.status_code == 302 and "/ui/login" in response.headers["Location"]
    assert _snapshot(db) == before


def test_a_stale_page_is_refused(world: World) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["write"])
    seen = _stamp(db, Task, world.failed)
    with db.transaction() as s:  # an agent (or another operator) changes the task meanwhile
        tasks.update_task(s, world.failed, {"status": "pending"})
    before = _snapshot(db)
    _refused(
        op.post(f"/ui/tasks/{world.failed}/retry", {"seen": seen}),
        409,
        "changed since this page was shown (it is pending now)",
    )
    _refused(
        op.post(f"/ui/tasks/{world.failed}/priority", {"seen": seen, "priority": "low"}),
        409,
        "changed since this page was shown",
    )
    # A bulk retry confirmed for a list that changed meanwhile retries none of it.
    _refused(
        op.post("/ui/tasks/retry", {"ids": f"{world.dead},{world.failed}", "confirmed": "yes"}),
        409,
        "no longer failed",
    )
    assert _snapshot(db) == before


@pytest.mark.parametrize(
    ("url", "data", "words"),
    [
        ("/ui/tasks/{failed}/retry", {}, "change stamp"),
        ("/ui/tasks/{running}/fail", {"seen": "x", "reason": " "}, "must not be empty"),
        ("/ui/tasks/{dead}/priority", {"seen": "x", "priority": "urgent"}, "must be one of"),
        ("/ui/tasks/{dead}/assign", {"seen": "x", "agent_id": "-1"}, "whole number"),
        ("/ui/tasks/{dead}/assign", {"seen": "{stamp}", "agent_id": "424242"}, "does not exist"),
        ("/ui/tasks/{running}/requeue", {"seen": "{stamp}"}, "is live until"),
        ("/ui/tasks/424242/retry", {"seen": "x"}, "not found"),
        ("/ui/tasks/retry", {"ids": "1,x", "confirmed": "yes"}, "damaged"),
        ("/ui/agents/{agent}/status", {"seen": "x", "status": "busy"}, "must be one of"),
        ("/ui/drafts/{draft}/review", {"seen": "x", "decision": "maybe"}, "approve or send_back"),
    ],
)
def test_bad_input_is_one_plain_message(
    world: World, url: str, data: dict[str, str], words: str
) -> None:
    db = database(world.app)
    op = Operator(world.app, world.keys["admin"])
    path = url.format(**vars(world))
    model_id = {"{dead}": world.dead, "{running}": world.running}
    stamp = next((_stamp(db, Task, i) for k, i in model_id.items() if k in url), "x")
    fields = {k: v.replace("{stamp}", stamp) for k, v in data.items()}
    before = _snapshot(db)
    response = op.post(path, fields)
    text = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, (response.status_code, text[:300])
    assert words in text and "Traceback" not in text
    assert text.count('class="error"') == 1
    assert _snapshot(db) == before


def test_an_open_console_acts_as_anonymous_with_the_same_checks(make_app: AppFactory) -> None:
    """Without a token or keys the console is open (like the API) and its forms work; the
    history says ``anonymous``, as for the API. The Origin and CSRF checks still apply."""
    app = make_app()
    db = database(app)
    with db.transaction() as s:
        task = tasks.create_task(s, {"type": "analysis", "title": "t", "priority": "low"})
        task_id = task.id
    client = app.test_client()
    html = client.get(f"/ui/tasks/{task_id}").get_data(as_text=True)
    assert f'action="/ui/tasks/{task_id}/priority"' in html
    form = {"csrf": _csrf(html), "seen": _stamp(db, Task, task_id), "priority": "high"}
    _refused(client.post(f"/ui/tasks/{task_id}/priority", data=form), 403, "Origin header")
    forged = {**form, "csrf": "x" * 32}
    _refused(
        client.post(f"/ui/tasks/{task_id}/priority", data=forged, headers=ORIGIN),
        403,
        "security token",
    )
    done = client.post(f"/ui/tasks/{task_id}/priority", data=form, headers=ORIGIN)
    assert done.status_code == 303
    assert _row(db, Task, task_id).priority.value == "high"
    assert _history(db, "task", task_id)[-1][:2] == ("update", "anonymous")


def test_a_backup_that_cannot_be_written_is_one_plain_message(
    make_app: AppFactory, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the backup folder should be")
    app = make_app(SWARM_API_TOKEN=TOKEN, SWARM_BACKUP_DIR=str(blocked))
    op = Operator(app, TOKEN)
    response = op.post("/ui/ops/backup", {"back": "/ui/ops"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400, text[:300]
    assert "could not be written" in text and text.count('class="error"') == 1
    assert 'href="/ui/ops">Back to the page' in text
    with database(app).read() as s:
        event = s.scalars(sa.select(MaintenanceEvent)).one()  # the trail says it failed
    assert event.status.value == "failed" and event.details["actor"] == "bootstrap"
