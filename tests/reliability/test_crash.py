"""Crash safety: writers are SIGKILLed at random moments; nothing acknowledged is ever lost.

Two ways of writing are attacked:

* **store** — worker processes append batches through the store (logs, a draft version, an
  email and the previous email's status change in one transaction) and are killed mid-stream;
  two run at once, so the survivor keeps writing while the victim dies with an open
  transaction (and, on SQLite, possibly holding the write lock).
* **http** — clients send the same kinds of work to a real ``swarm-director serve``; the
  server's gunicorn workers are killed mid-request and respawned by the master.

After every kill, in one consistent snapshot: ``db check`` is clean; every acknowledged batch
is there whole; no batch is there in part; each draft version exists once and versions have
no gaps; email status changes are there exactly with the batch that made them.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from swarm_director.db import Database, make_engine
from swarm_director.models import AgentLog, Draft, EmailMessage
from swarm_director.ops.checks.db_check import run_check
from swarm_director.store import tasks
from tests.reliability.conftest import Figures, Scale, url_text
from tests.reliability.procs import Server, worker_context
from tests.reliability.workers import crash_http_client, crash_store_writer

BATCH = 50


def _new_task(url: URL) -> int:
    db = Database(make_engine(url))
    try:
        with db.transaction() as session:
            return tasks.create_task(session, {"type": "analysis", "title": "crash target"}).id
    finally:
        db.dispose()


def read_acks(path: Path) -> list[str]:
    """The complete lines of an acknowledgement file (a torn last line is not an ack)."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")
    return [line for line in lines[:-1] if line and line != "ready"]


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction that sees a single point in time on both dialects."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield conn
        else:
            with conn.begin():  # BEGIN IMMEDIATE: no writer commits while we look
                yield conn


@dataclass
class State:
    """What one snapshot holds of the crash writers' work."""

    log_counts: dict[str, int]
    draft_contents: Counter[str]
    draft_versions: list[int]
    emails: dict[str, tuple[str, bool]]
    rows: int

    @classmethod
    def read(cls, conn: Connection, task_id: int) -> State:
        log_counts = {
            str(session_id): int(count)
            for session_id, count in conn.execute(
                sa.select(AgentLog.session_id, sa.func.count())
                .where(AgentLog.task_id == task_id, AgentLog.agent_type == "crash")
                .group_by(AgentLog.session_id)
            )
        }
        draft_rows = conn.execute(
            sa.select(Draft.content, Draft.version).where(Draft.task_id == task_id)
        ).all()
        email_rows = conn.execute(
            sa.select(EmailMessage.subject, EmailMessage.status, EmailMessage.sent_at).where(
                EmailMessage.task_id == task_id
            )
        ).all()
        emails: dict[str, tuple[str, bool]] = {}
        for subject, status, sent_at in email_rows:
            assert subject not in emails, f"email {subject} stored twice"
            emails[subject] = (str(getattr(status, "value", status)), sent_at is not None)
        return cls(
            log_counts=log_counts,
            draft_contents=Counter(str(c) for c, _ in draft_rows),
            draft_versions=sorted(int(v) for _, v in draft_rows),
            emails=emails,
            rows=sum(log_counts.values()) + len(draft_rows) + len(email_rows),
        )

    def check_common(self) -> None:
        partial = {name: n for name, n in self.log_counts.items() if n != BATCH}
        assert not partial, f"partial log batches (of {BATCH}): {partial}"
        duplicated = [c for c, n in self.draft_contents.items() if n > 1]
        assert not duplicated, f"draft stored more than once: {duplicated}"
        versions = self.draft_versions
        assert versions == list(range(1, len(versions) + 1)), "draft versions have gaps"
        for subject, (status, has_sent_at) in self.emails.items():
            assert status in ("queued", "sent"), (subject, status)
            assert has_sent_at == (status == "sent"), (subject, status)


@dataclass
class Tally:
    kills: int = 0
    checks: int = 0
    rows_checked: int = 0
    acks_checked: int = 0
    unacked_committed: int = 0
    cut_requests: int = 0
    durations: list[float] = field(default_factory=list)


def _check_db(engine: Engine) -> None:
    report = run_check(engine)
    assert report.ok, [str(p) for p in report.problems]


def _verify_store(engine: Engine, task_id: int, ack_files: dict[str, Path], tally: Tally) -> None:
    acks = {tag: read_acks(path) for tag, path in ack_files.items()}  # before the snapshot
    with snapshot(engine) as conn:
        state = State.read(conn, task_id)
    state.check_common()
    _check_db(engine)
    committed_all = set(state.log_counts)
    for tag, acked in acks.items():
        committed = sorted(
            (int(name.rsplit("-", 1)[1]) for name in committed_all if name.startswith(f"{tag}-")),
        )
        # A writer commits batches in order: what is there is a prefix 0..m-1.
        assert committed == list(range(len(committed))), f"{tag}: batches missing in between"
        missing = [name for name in acked if name not in committed_all]
        assert not missing, f"acknowledged batches lost: {missing}"
        names = [f"{tag}-{i}" for i in range(len(committed))]
        for i, name in enumerate(names):
            assert state.draft_contents[name] == 1, f"batch {name} without its draft"
            status, _ = state.emails[name]
            expected = "queued" if i == len(names) - 1 else "sent"
            assert status == expected, f"email of {name} is {status}, expected {expected}"
    tally.acks_checked = sum(len(acked) for acked in acks.values())
    stray = set(state.draft_contents) - committed_all
    assert not stray, f"drafts without their batch: {stray}"
    assert set(state.emails) == committed_all, "emails and batches disagree"
    tally.rows_checked += state.rows
    tally.checks += 1


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_store_writers_survive_sigkill(
    migrated_url: URL, dialect: str, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    url = url_text(migrated_url)
    task_id = _new_task(migrated_url)
    engine = make_engine(migrated_url)
    ctx = worker_context()
    rng = random.Random(20261123)
    ack_files: dict[str, Path] = {}
    running: dict[str, Any] = {}
    tally = Tally()
    incarnation = 0

    def spawn() -> None:
        nonlocal incarnation
        tag = f"s{incarnation}"
        incarnation += 1
        ack_files[tag] = tmp_path / f"{tag}.acks"
        proc = ctx.Process(
            target=crash_store_writer, args=(url, str(ack_files[tag]), tag, task_id, BATCH)
        )
        proc.start()
        running[tag] = proc

    started = time.monotonic()
    try:
        spawn()
        spawn()
        while tally.kills < scale.crash_store_kills:
            victim = rng.choice(sorted(running))
            _wait_ready(ack_files[victim], running[victim])
            time.sleep(rng.uniform(0.05, 0.6))
            proc = running.pop(victim)
            _kill(proc.pid)
            proc.join(timeout=30)
            assert proc.exitcode == -signal.SIGKILL, f"writer ended by itself: {proc.exitcode}"
            tally.kills += 1
            _verify_store(engine, task_id, ack_files, tally)
            spawn()
    finally:
        for proc in running.values():
            _kill(proc.pid)
            proc.join(timeout=30)
        _verify_store(engine, task_id, ack_files, tally)
        engine.dispose()
    figures.record(
        f"crash_store_{dialect}",
        {
            "kills": tally.kills,
            "consistency_checks": tally.checks,
            "rows_read_by_the_checks": tally.rows_checked,
            "acknowledged_batches": tally.acks_checked,
            "batches_committed": sum(1 for _ in _batches(migrated_url, task_id)),
            "seconds": round(time.monotonic() - started, 1),
        },
    )


def _batches(url: URL, task_id: int) -> list[str]:
    engine = make_engine(url)
    try:
        with snapshot(engine) as conn:
            return list(State.read(conn, task_id).log_counts)
    finally:
        engine.dispose()


def _wait_ready(ack_file: Path, proc: Any, timeout_s: float = 60.0) -> None:
    """Until the worker has written something after its start (it imported and connected)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ack_file.exists() and ack_file.stat().st_size > len("ready\n"):
            return
        if not proc.is_alive():
            raise AssertionError(f"worker died on its own: exit {proc.exitcode}")
        time.sleep(0.02)
    raise AssertionError("worker never acknowledged a batch")


def _verify_http(engine: Engine, task_id: int, ack_files: list[Path], tally: Tally) -> None:
    acked = [line.split(" ", 1) for path in ack_files for line in read_acks(path)]
    with snapshot(engine) as conn:
        state = State.read(conn, task_id)
    state.check_common()
    _check_db(engine)
    for kind, name in acked:
        if kind == "L":
            assert state.log_counts.get(name) == BATCH, f"acknowledged log batch {name} lost"
        elif kind == "D":
            assert state.draft_contents[name] == 1, f"acknowledged draft {name} lost"
        elif kind == "E":
            assert name in state.emails, f"acknowledged email {name} lost"
        elif kind == "S":
            assert state.emails[name] == ("sent", True), f"acknowledged sent of {name} lost"
    tally.acks_checked = sum(1 for kind, _ in acked if kind != "F")
    tally.cut_requests = sum(1 for kind, _ in acked if kind == "F")
    acked_logs = {name for kind, name in acked if kind == "L"}
    tally.unacked_committed = len(set(state.log_counts) - acked_logs)
    tally.rows_checked += state.rows
    tally.checks += 1


def test_api_workers_survive_sigkill(
    migrated_url: URL, dialect: str, tmp_path: Path, scale: Scale, figures: Figures
) -> None:
    task_id = _new_task(migrated_url)
    engine = make_engine(migrated_url)
    server = Server(url_text(migrated_url), tmp_path / "server.log", workers=2).start()
    ctx = worker_context()
    rng = random.Random(4242)
    ack_files = [tmp_path / f"h{i}.acks" for i in range(2)]
    clients = [
        ctx.Process(
            target=crash_http_client, args=(server.port, str(path), f"h{i}", task_id, BATCH)
        )
        for i, path in enumerate(ack_files)
    ]
    tally = Tally()
    started = time.monotonic()
    try:
        for client in clients:
            client.start()
        for path, client in zip(ack_files, clients, strict=True):
            _wait_ready(path, client)
        while tally.kills < scale.crash_http_kills:
            workers = server.wait_serving()  # a worker still loading the app has no request
            time.sleep(rng.uniform(0.05, 0.5))
            _kill(rng.choice(workers))
            tally.kills += 1
            _verify_http(engine, task_id, ack_files, tally)
        for client in clients:
            _kill(client.pid)
            client.join(timeout=30)
        _verify_http(engine, task_id, ack_files, tally)
    finally:
        for client in clients:
            if client.is_alive():
                _kill(client.pid)
                client.join(timeout=30)
        server.stop()
        engine.dispose()
    log = server.output()
    assert "Traceback" not in log, log[-3000:]
    figures.record(
        f"crash_api_{dialect}",
        {
            "worker_kills": tally.kills,
            "consistency_checks": tally.checks,
            "rows_read_by_the_checks": tally.rows_checked,
            "acknowledged_requests": tally.acks_checked,
            "requests_cut_by_a_kill": tally.cut_requests,
            "committed_but_unacknowledged_batches": tally.unacked_committed,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
