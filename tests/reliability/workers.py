"""Code that runs in the worker processes of the reliability tests (see ``procs.py``).

Crash writers acknowledge each unit of work in a file *after* it was committed (or after the
server answered 2xx), one line each, written with ``os.write`` and fsynced, so that after a
SIGKILL the parent knows a lower bound of what must be in the database. Contention workers
time every operation and write a JSON summary at the end; an exception a caller should never
see (a locked database, a serialization failure, anything but the documented domain errors)
is recorded, not swallowed.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import traceback
from pathlib import Path
from typing import Any

from sqlalchemy import select

from swarm_director.db import Database, make_engine
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.models import Task, TaskStatus
from swarm_director.store import conversations, drafts, emails, logs, tasks

#: A crash writer stops on its own after this long (the parent normally kills it first).
WRITER_LIFETIME_S = 300.0
RECIPIENT = "crash@test.example"
SENT = {"status": "sent"}


def _ack(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())
    os.fsync(fd)


def crash_store_writer(url: str, ack_path: str, tag: str, task_id: int, batch: int) -> None:
    """Appends batches through the store until killed; each batch is one transaction of
    ``batch`` logs (session_id = batch id), one draft version (content = batch id), one queued
    email (subject = batch id) and the previous batch's email moved to ``sent``."""
    db = Database(make_engine(url))
    fd = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _ack(fd, "ready")
    previous_email: int | None = None
    deadline = time.monotonic() + WRITER_LIFETIME_S
    n = 0
    while time.monotonic() < deadline:
        name = f"{tag}-{n}"
        rows = [
            {
                "agent_type": "crash",
                "message": f"{name} #{i}",
                "session_id": name,
                "metadata": {"i": i},
            }
            for i in range(batch)
        ]
        with db.transaction() as session:
            logs.add_logs(session, task_id, rows)
            drafts.create_draft(session, task_id, {"content": name})
            email = emails.create_email(
                session,
                task_id,
                {"recipient": RECIPIENT, "subject": name, "body": name, "status": "queued"},
            )
            if previous_email is not None:
                emails.set_email_status(session, previous_email, "sent")
        _ack(fd, name)
        previous_email = email.id
        n += 1


def _http(port: int, method: str, path: str, body: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            method, path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None
    finally:
        conn.close()


def crash_http_client(port: int, ack_path: str, tag: str, task_id: int, batch: int) -> None:
    """Sends log batches, draft versions, emails and email status changes to the API until
    killed, acknowledging every 2xx answer. Failed requests (a worker killed mid-request) are
    not retried: the next unit of work gets a new id."""
    fd = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _ack(fd, "ready")
    deadline = time.monotonic() + WRITER_LIFETIME_S
    previous_email: tuple[str, int] | None = None
    n = 0
    while time.monotonic() < deadline:
        name = f"{tag}-{n}"
        n += 1
        rows = [
            {
                "agent_type": "crash",
                "message": f"{name} #{i}",
                "session_id": name,
                "metadata": {"i": i},
            }
            for i in range(batch)
        ]
        try:
            status, _ = _http(port, "POST", f"/api/tasks/{task_id}/logs", rows)
            if status == 201:
                _ack(fd, f"L {name}")
            status, _ = _http(port, "POST", f"/api/tasks/{task_id}/drafts", {"content": name})
            if status == 201:
                _ack(fd, f"D {name}")
            created, email = _http(
                port,
                "POST",
                f"/api/tasks/{task_id}/emails",
                {"recipient": RECIPIENT, "subject": name, "body": name, "status": "queued"},
            )
            if created == 201:
                _ack(fd, f"E {name}")
            if previous_email is not None:
                status, _ = _http(port, "PATCH", f"/api/emails/{previous_email[1]}", SENT)
                if status == 200:
                    _ack(fd, f"S {previous_email[0]}")
            previous_email = (name, email["id"]) if created == 201 else None
        except (OSError, http.client.HTTPException, ValueError):
            _ack(fd, f"F {name}")  # a request cut off by a kill: not acknowledged
            previous_email = None
            time.sleep(0.05)  # the worker was killed; the master is starting another


# --- contention -----------------------------------------------------------------------------

#: Expected refusals under contention (the caller is told, nothing is half-done).
EXPECTED = (ConflictError, NotFoundError, ValidationError)
#: pending → in_progress → failed → pending: legal moves only, around and around.
CYCLE = {
    TaskStatus.PENDING: TaskStatus.IN_PROGRESS,
    TaskStatus.IN_PROGRESS: TaskStatus.FAILED,
    TaskStatus.FAILED: TaskStatus.PENDING,
}


class _Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.counts: dict[str, Any] = {}
        self.refused: dict[str, int] = {}
        self.errors: list[str] = []

    def timed(self, op: str, fn: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            result = fn(*args)
        except EXPECTED as error:
            key = f"{op}:{type(error).__name__}"
            self.refused[key] = self.refused.get(key, 0) + 1
            result = None
        except Exception as error:  # anything else is a failure the test reports
            self.errors.append(f"{op}: {type(error).__name__}: {str(error).splitlines()[:1]}")
            if len(self.errors) <= 3:
                self.errors.append(traceback.format_exc(limit=4))
            result = None
        self.latencies.setdefault(op, []).append(time.perf_counter() - started)
        return result

    def bump(self, key: str, by: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + by

    def save(self, path: str) -> None:
        payload = {
            "latencies": self.latencies,
            "counts": self.counts,
            "refused": self.refused,
            "errors": self.errors,
        }
        Path(path).write_text(json.dumps(payload))


def contention_writer(url: str, wid: int, seconds: float, plan: dict[str, Any], out: str) -> None:
    """Mixes bulk ingest, task status changes, draft versions, messages and participant churn
    for ``seconds``; counts what it committed so the parent can check nothing was lost."""
    db = Database(make_engine(url))
    rng = random.Random(wid)
    rec = _Recorder()
    task_ids: list[int] = plan["tasks"]
    conv_ids: list[int] = plan["conversations"]
    core: list[int] = plan["core_agents"]
    churn: list[int] = plan["churn_agents"]
    batch = int(plan["batch"])
    deadline = time.monotonic() + seconds

    def ingest() -> None:
        task_id = rng.choice(task_ids)
        rows = [{"agent_type": f"w{wid}", "message": "bulk", "session_id": "ingest"}] * batch
        with db.transaction() as session:
            logs.add_logs(session, task_id, rows)
        rec.bump(f"logs:{task_id}", batch)

    def status() -> None:
        # Read-then-write: read the status under a row lock, move it one step, and log the
        # move in the same transaction; the parent replays the logs of every task.
        task_id = rng.choice(task_ids)
        with db.transaction() as session:
            current = session.scalars(
                select(Task.status).where(Task.id == task_id).with_for_update(key_share=True)
            ).one()
            target = CYCLE[current]
            tasks.update_task(session, task_id, {"status": target})
            logs.add_log(
                session,
                task_id,
                {
                    "agent_type": f"w{wid}",
                    "message": f"{current.value}->{target.value}",
                    "session_id": "status",
                },
            )
        rec.bump(f"moves:{task_id}")

    def draft() -> None:
        task_id = rng.choice(task_ids)
        with db.transaction() as session:
            drafts.create_draft(session, task_id, {"content": f"w{wid}"})
        rec.bump(f"drafts:{task_id}")

    def message() -> None:
        conv = rng.choice(conv_ids)
        sender = rng.choice(core + churn)
        with db.transaction() as session:
            conversations.add_message(session, conv, {"content": "hi", "sender_agent_id": sender})
        rec.bump(f"messages:{conv}")
        rec.bump(f"sent:{sender}")

    def churn_step() -> None:
        conv = rng.choice(conv_ids)
        agent = rng.choice(churn)
        with db.transaction() as session:
            if rng.random() < 0.5:
                conversations.add_participant(session, conv, agent)
            else:
                conversations.remove_participant(session, conv, agent)

    ops = [(ingest, 3), (status, 3), (draft, 2), (message, 3), (churn_step, 2)]
    population = [op for op, weight in ops for _ in range(weight)]
    try:
        while time.monotonic() < deadline:
            op = rng.choice(population)
            rec.timed(op.__name__, op)
            rec.bump("ops")
    finally:
        rec.save(out)
        db.dispose()


def contention_reader(url: str, rid: int, seconds: float, plan: dict[str, Any], out: str) -> None:
    """List queries (logs of a task, tasks by status, messages, drafts) for ``seconds``."""
    db = Database(make_engine(url))
    rng = random.Random(1000 + rid)
    rec = _Recorder()
    deadline = time.monotonic() + seconds

    def list_logs() -> None:
        with db.read() as session:
            logs.list_logs(session, {"task_id": rng.choice(plan["tasks"])}, limit=100)

    def list_tasks() -> None:
        with db.read() as session:
            tasks.list_tasks(session, {"status": rng.choice(list(TaskStatus))}, limit=100)

    def list_messages() -> None:
        with db.read() as session:
            conversations.list_messages(session, rng.choice(plan["conversations"]), limit=100)

    def list_drafts() -> None:
        with db.read() as session:
            drafts.list_drafts(session, rng.choice(plan["tasks"]), limit=100)

    readers = [list_logs, list_tasks, list_messages, list_drafts]
    try:
        while time.monotonic() < deadline:
            op = rng.choice(readers)
            rec.timed(op.__name__, op)
            rec.bump("ops")
    finally:
        rec.save(out)
        db.dispose()
