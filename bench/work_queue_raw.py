"""The raw driver baseline of bench/work_queue.py's claim + complete: the store's statements
(``store.queue.claim_tasks`` then ``complete_task``, as SQLAlchemy renders them) written by hand
on a sqlite3 or psycopg connection, with the same parameters and checks."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url

from swarm_director.models import Task

ACTOR = "bench-worker"
RESULT = {"rows": 3, "summary": "done"}
PRIORITIES = ("critical", "high", "medium", "low")
COLUMNS = [c.name for c in Task.__table__.columns]
COLS = ", ".join(COLUMNS)
AT = {name: i for i, name in enumerate(COLUMNS)}


class Raw:
    """Claim + complete written by hand on a driver connection: the store's statements."""

    def __init__(self, dialect: str, url: str) -> None:
        self.pg = dialect == "postgresql"
        p = "%s" if self.pg else "?"
        lock = " FOR UPDATE SKIP LOCKED" if self.pg else ""
        self.agent = (
            f"UPDATE agents SET last_seen_at={p}, updated_at={p} WHERE id = {p} RETURNING id"
        )
        self.expired = (
            "SELECT id, attempts, max_attempts, assigned_agent_id FROM tasks "
            f"WHERE status = {p} AND lease_expires_at <= {p} ORDER BY lease_expires_at "
            f"LIMIT {p}{lock}"
        )
        self.ready = (
            f"SELECT id, attempts, assigned_agent_id FROM tasks WHERE status = {p} "
            f"AND (not_before IS NULL OR not_before <= {p}) "
            f"AND (assigned_agent_id IS NULL OR assigned_agent_id = {p}) AND priority = {p} "
            f"ORDER BY id LIMIT {p}{lock}"
        )
        self.take = (
            f"UPDATE tasks SET status={p}, assigned_agent_id={p}, attempts={p}, not_before={p}, "
            f"lease_token={p}, lease_expires_at={p}, claimed_at={p}, updated_at={p} "
            f"WHERE id = {p} RETURNING {COLS}"
        )
        self.history = (
            "INSERT INTO history (entity, entity_id, action, changes, actor, request_id, at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
        )
        self.holder = f"SELECT {COLS} FROM tasks WHERE id = {p}" + (
            " FOR NO KEY UPDATE" if self.pg else ""
        )
        self.done = (
            f"UPDATE tasks SET status={p}, completed_at={p}, lease_token={p}, "
            f"lease_expires_at={p}, result={p}, updated_at={p} WHERE id = {p} RETURNING {COLS}"
        )
        if self.pg:
            import psycopg
            from psycopg.types.json import Jsonb

            self.conn: Any = psycopg.connect(
                make_url(url).set(drivername="postgresql").render_as_string(False)
            )
            self.json: Callable[[Any], Any] = Jsonb
        else:
            path = make_url(url).database
            self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
            for pragma in ("foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL"):
                self.conn.execute(f"PRAGMA {pragma}")  # what the store's engine sets
            self.json = json.dumps

    def _t(self, value: datetime | None) -> Any:
        if value is None or self.pg:
            return value
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def _begin(self) -> Any:
        return self.conn if self.pg else self.conn.execute("BEGIN IMMEDIATE")

    def cycle(self, agent_id: int) -> None:
        c, t = self.conn, self._t
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=60)
        self._begin()
        assert c.execute(self.agent, (t(now), t(now), agent_id)).fetchone() is not None
        assert not c.execute(self.expired, ("in_progress", t(now), 100)).fetchall()
        for priority in PRIORITIES:
            picked = c.execute(self.ready, ("pending", t(now), agent_id, priority, 1)).fetchall()
            if picked:
                break
        task_id, attempts, assigned = picked[0]
        token = secrets.token_urlsafe(24)
        values = ("in_progress", agent_id, attempts + 1, None, token, t(expires), t(now), t(now))
        c.execute(self.take, (*values, task_id)).fetchall()
        changes = {
            "status": ["pending", "in_progress"],
            "assigned_agent_id": [assigned, agent_id],
            "attempt": [attempts, attempts + 1],
            "lease_expires_at": [None, expires.isoformat()],
        }
        at = datetime.now(UTC)
        c.execute(self.history, ("task", task_id, "claim", self.json(changes), ACTOR, None, t(at)))
        c.commit() if self.pg else c.execute("COMMIT")

        now = datetime.now(UTC)
        self._begin()
        row = c.execute(self.holder, (task_id,)).fetchone()
        status, held, until = row[AT["status"]], row[AT["lease_token"]], row[AT["lease_expires_at"]]
        assert status == "in_progress" and secrets.compare_digest(held.encode(), token.encode())
        assert until > t(now)
        values = ("completed", t(now), None, None, self.json(RESULT), t(now))
        c.execute(self.done, (*values, task_id)).fetchall()
        changes = {
            "status": ["in_progress", "completed"],
            "attempt": [row[AT["attempts"]], row[AT["attempts"]]],
            "result": [row[AT["result"]], RESULT],
        }
        at = datetime.now(UTC)
        c.execute(
            self.history, ("task", task_id, "complete", self.json(changes), ACTOR, None, t(at))
        )
        c.commit() if self.pg else c.execute("COMMIT")
