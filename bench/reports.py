"""Reports at scale: each report's time (p50, p95) beside the same SQL on a bare driver.

    .venv/bin/python bench/reports.py [--logs 1000000] [--tasks 100000] [--days 30]
        [--dialect sqlite|postgresql|both] [--repeat 9]

Fills a fresh database per dialect: ``--tasks`` tasks created over the last ``--days`` days
with their work-queue history (create, claim, complete; a tenth retried, a twentieth failed
for good, errors with numbers in them), ``--logs`` log records over the same days (the scale
bench's filler, so about a month), drafts and emails. Then runs each report over the whole
range by day and over the last 24 hours by hour, ``--repeat`` times, and, in the same run,
replays the SQL statements the report sent (captured once) on a bare ``sqlite3`` /
``psycopg`` connection: the ratio is what the store's Python (SQLAlchemy, pydantic, the
buckets) adds to the database's own work. The issue's target is every report under 200 ms
p95 at 10 M logs and 1 M tasks; run what the machine allows and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import percentile
from bench.scale import Target, fill
from swarm_director.db import utcnow
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import reports

TYPES = ("email_draft", "document_review", "communication", "analysis")
PRIORITIES = ("low", "medium", "medium", "high", "critical")
ERRORS = ("model timeout after {n} s", "rate limited (retry in {n} s)", "table t_{n} missing")
AGENTS = 12
CHUNK = 20_000


def _stamp(dialect: str, value: Any) -> Any:
    if dialect == "sqlite":
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def _insert(target: Target, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows through the bare driver: executemany on SQLite, COPY on PostgreSQL."""
    conn = target.raw()
    try:
        if target.dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            conn.execute("COMMIT")
        else:
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
    finally:
        conn.close()


def fill_swarm(target: Target, tasks: int, days: int) -> list[int]:
    """Agents, tasks and their history over the last ``days`` days; returns the task ids."""
    d = target.dialect
    rng = random.Random(21)
    now = utcnow()
    start = now - timedelta(days=days)
    span = (now - start).total_seconds() - 3600
    with target.database.engine.begin() as conn:
        for i in range(AGENTS):
            conn.execute(
                sa.text(
                    "INSERT INTO agents (name, agent_type, status, capabilities, config, "
                    "total_conversations, total_messages_sent, average_response_time, "
                    "created_at, updated_at) VALUES (:n, 'worker', 'idle', '[]', '{}', 0, 0, "
                    "0, :t, :t)"
                ),
                {"n": f"bench-agent-{i}", "t": _stamp(d, now)},
            )
        first_agent = conn.execute(sa.text("SELECT min(id) FROM agents")).scalar_one()
        base = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM tasks")).scalar_one()
    task_cols = [
        "id", "type", "status", "title", "priority", "assigned_agent_id", "attempts",
        "max_attempts", "created_at", "updated_at", "completed_at", "last_error",
    ]  # fmt: skip
    hist_cols = ["entity", "entity_id", "action", "changes", "actor", "at"]
    task_rows: list[tuple[Any, ...]] = []
    hist_rows: list[tuple[Any, ...]] = []

    def history(task_id: int, action: str, changes: dict[str, Any], at: Any) -> None:
        hist_rows.append(("task", task_id, action, json.dumps(changes), "bench", _stamp(d, at)))

    for n in range(tasks):
        task_id = base + n + 1
        created = start + timedelta(seconds=span * n / tasks)
        agent = first_agent + rng.randrange(AGENTS)
        kind = TYPES[n % len(TYPES)]
        history(task_id, "create", {"status": [None, "pending"], "type": [None, kind]}, created)
        at, attempt, status, error, completed = created, 0, "completed", None, None
        while True:
            attempt += 1
            at += timedelta(seconds=rng.expovariate(1 / 60))
            history(
                task_id,
                "claim",
                {"status": ["pending", "in_progress"], "assigned_agent_id": [None, agent],
                 "attempt": [attempt - 1, attempt]},
                at,
            )  # fmt: skip
            at += timedelta(seconds=rng.expovariate(1 / 30))
            roll = rng.random()
            if roll < 0.1 and attempt < 3:
                error = rng.choice(ERRORS).format(n=rng.randint(1, 500))
                retry = {
                    "status": ["in_progress", "pending"],
                    "last_error": [None, error],
                    "not_before": [None, at.isoformat()],
                }
                history(task_id, "retry", retry, at)
                continue
            if roll < 0.15:
                status, error = "failed", rng.choice(ERRORS).format(n=rng.randint(1, 500))
                history(task_id, "fail", {"status": ["in_progress", "failed"],
                        "last_error": [None, error]}, at)  # fmt: skip
            else:
                completed = at
                history(task_id, "complete", {"status": ["in_progress", "completed"]}, at)
            break
        task_rows.append(
            (task_id, kind, status, f"bench task {n}", rng.choice(PRIORITIES), agent, attempt, 3,
             _stamp(d, created), _stamp(d, at),
             _stamp(d, completed) if completed else None, error)
        )  # fmt: skip
        if len(task_rows) >= CHUNK or n == tasks - 1:
            _insert(target, "tasks", task_cols, task_rows)
            _insert(target, "history", hist_cols, hist_rows)
            task_rows, hist_rows = [], []
            print(f"\r  tasks {n + 1:,}/{tasks:,}", end="", flush=True)
    print()
    return list(range(base + 1, base + tasks + 1))


def fill_outputs(target: Target, task_ids: list[int], days: int) -> None:
    """A draft (1-4 versions, the last approved) for every tenth task, an email (sent or
    failed) for every fifth."""
    d = target.dialect
    rng = random.Random(5)
    now = utcnow()
    drafts, emails, hist = [], [], []
    for i, task_id in enumerate(task_ids):
        at = now - timedelta(seconds=rng.uniform(0, days * 86400))
        if i % 10 == 0:
            versions = rng.randint(1, 4)
            for v in range(1, versions + 1):
                status = "approved" if v == versions else "rejected"
                drafts.append((task_id, v, "text", status, _stamp(d, at), _stamp(d, at)))
        if i % 5 == 0:
            sent = rng.random() < 0.9
            emails.append(
                (task_id, "a@example.com", "s", "b", "sent" if sent else "failed", "[]", "[]",
                 _stamp(d, at) if sent else None, _stamp(d, at), _stamp(d, at))
            )  # fmt: skip
            if not sent:
                changes = json.dumps({"status": ["queued", "failed"]})
                hist.append(("email", task_id, "update", changes, "bench", _stamp(d, at)))
    draft_cols = ["task_id", "version", "content", "status", "created_at", "updated_at"]
    _insert(target, "drafts", draft_cols, drafts)
    _insert(target, "email_messages",
            ["task_id", "recipient", "subject", "body", "status", "cc", "bcc", "sent_at",
             "created_at", "updated_at"], emails)  # fmt: skip
    _insert(target, "history", ["entity", "entity_id", "action", "changes", "actor", "at"], hist)
    target.autocommit("ANALYZE" if d == "sqlite" else "VACUUM ANALYZE")


REPORTS: dict[str, Callable[..., Any]] = {
    "tasks": reports.task_counts,
    "tasks by type": lambda conn, query: reports.task_counts(
        conn, query.model_copy(update={"by": "type"})
    ),
    "durations": reports.durations,
    "failures": reports.failures,
    "logs": reports.log_volume,
    "emails": reports.email_outcomes,
    "drafts": reports.draft_approvals,
}


def capture(target: Target, report: Callable[..., Any], query: ReportQuery) -> list[Any]:
    """The statements and parameters one run of ``report`` sends to the driver."""
    sent: list[Any] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append((statement, parameters))

    engine = target.database.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with target.database.statement_reads() as conn:
            report(conn, query)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return sent


def measure(target: Target, query: ReportQuery, label: str, repeat: int) -> list[str]:
    lines = []
    raw = target.raw()
    try:
        for name, report in REPORTS.items():
            statements = capture(target, report, query)
            store_times, raw_times = [], []
            for _ in range(repeat):  # alternate, so both see the same machine
                started = time.perf_counter()
                with target.database.statement_reads() as conn:
                    report(conn, query)
                store_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                cur = raw.cursor()
                for statement, parameters in statements:
                    cur.execute(statement, parameters)
                    cur.fetchall()
                cur.close()
                raw_times.append(time.perf_counter() - started)
            p95, raw95 = percentile(store_times, 0.95), percentile(raw_times, 0.95)
            lines.append(
                f"  {label:>9} {name:<14} store p50 {statistics.median(store_times) * 1e3:8.1f} ms"
                f" p95 {p95 * 1e3:8.1f} ms | raw SQL p50 {statistics.median(raw_times) * 1e3:8.1f}"
                f" ms p95 {raw95 * 1e3:8.1f} ms | ratio {p95 / raw95:5.2f}"
                f" | {'ok' if p95 < 0.2 else 'OVER'} 200 ms"
            )
            print(lines[-1], flush=True)
    finally:
        raw.close()
    return lines


def run(dialect: str, args: argparse.Namespace, work: Path) -> None:
    print(f"== {dialect}: {args.tasks:,} tasks over {args.days} days, {args.logs:,} logs")
    target = Target(dialect, work)
    try:
        started = time.perf_counter()
        task_ids = fill_swarm(target, args.tasks, args.days)
        fill_outputs(target, task_ids, args.days)
        if args.logs:
            fill(target, args.logs, 1, task_ids[-1000:])
        print(f"  filled in {time.perf_counter() - started:.0f} s; "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        now = utcnow()
        month = ReportQuery(since=now - timedelta(days=args.days), until=now, bucket="day")
        day = ReportQuery(since=now - timedelta(hours=24), until=now, bucket="hour")
        measure(target, month, f"{args.days}d/day", args.repeat)
        measure(target, day, "24h/hour", args.repeat)
        print(f"  load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        target.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="sd-bench-reports-") as work:
        for dialect in dialects:
            run(dialect, args, Path(work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
