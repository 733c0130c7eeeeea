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
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import percentile
from bench.scale import Target, fill
from bench.scale import ingest as scale_ingest
from swarm_director.db import utcnow
from swarm_director.models.attempt_count import attempt_counts_drift
from swarm_director.models.error_group import error_groups_drift, rebuild_error_groups
from swarm_director.models.rollup import compact, log_hours_drift, rebuild_log_hours
from swarm_director.models.rollup_ddl import ROLLUPS
from swarm_director.ops.rollup_fold import fold_digests
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import driver_reads, log_ingest, reports
from swarm_director.store.reports import attempt_times as report_attempts

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
#: What the raw SQL of a report served by a rollup is: the statements that compute the same
#: figures from the rows themselves (for the others, the report's own statements).
RAW: dict[str, Callable[..., Any]] = {
    "tasks": lambda conn, query: reports.task_counts(conn, query, rollup=False),
    "tasks by type": lambda conn, query: reports.task_counts(
        conn, query.model_copy(update={"by": "type"}), rollup=False
    ),
    "logs": lambda conn, query: reports.log_volume(conn, query, rollup=False),
    "failures": lambda conn, query: reports.failures(conn, query, rollup=False),
    "durations": lambda conn, query: reports.durations(conn, query, rollup=False),
}


def capture(target: Target, report: Callable[..., Any], query: ReportQuery) -> list[Any]:
    """The statements and parameters one run of ``report`` sends to the driver."""
    sent: list[Any] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append((statement, parameters))

    def read_by_driver(connection: Any, stmt: Any, *args: Any) -> Any:
        # SQLite's durations read with the driver's cursor, which SQLAlchemy's event misses.
        statement = driver_reads.compiled(stmt, connection.dialect)
        sql, params = driver_reads.driver_statement(statement)
        sent.append((sql, [params[name] for name in statement.positiontup or ()]))
        return driver_reads.sqlite_rows(connection, stmt, *args)

    engine = target.database.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with (
            target.database.statement_reads() as conn,
            mock.patch.object(report_attempts, "sqlite_rows", read_by_driver),
        ):
            report(conn, query)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return sent


def measure(
    target: Target, query: ReportQuery, label: str, repeat: int, only: tuple[str, ...] = ()
) -> list[str]:
    lines = []
    raw = target.raw()
    try:
        for name, report in REPORTS.items():
            if only and name not in only:
                continue
            statements = capture(target, RAW.get(name, report), query)
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


def check_rollup(target: Target) -> None:
    """The fill wrote logs by the bare driver, which the store's counting does not see
    (SQLite; PostgreSQL's triggers appended deltas) and without the error logs' patterns
    (both): rebuild the rollups, timed. Both: check them (hour rows and deltas) against the
    rows."""
    with target.database.engine.begin() as conn:
        started = time.perf_counter()
        groups = rebuild_error_groups(conn)  # gives the fill's error logs their pattern
        took = time.perf_counter() - started
        print(f"  error_group_hours rebuilt ({groups:,} rows, patterns given) in {took:.1f} s")
        if target.dialect == "sqlite":
            started = time.perf_counter()
            rows = rebuild_log_hours(conn)  # the tasks' triggers fire on SQLite too
            took = time.perf_counter() - started
            print(f"  log_volume_hours rebuilt ({rows:,} rows) in {took:.1f} s")
        started = time.perf_counter()
        drift = log_hours_drift(conn) + error_groups_drift(conn) + attempt_counts_drift(conn)
    took = time.perf_counter() - started
    verdict = "exact" if not drift else f"{len(drift)} hours differ"
    print(
        f"  log_volume_hours, error_group_hours against the logs, attempt_count_hours against "
        f"the attempts ({took:.1f} s): {verdict}"
    )


def fold(target: Target) -> None:
    """Fold the rollups' deltas into their hour tables and digest the attempts of the ended
    hours (what ``db optimize`` runs first, and a server every 5 minutes), timed, with how many
    delta rows there were."""
    with target.database.engine.begin() as conn:
        deltas = conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM log_volume_deltas), (SELECT count(*) FROM "
            "task_count_deltas), (SELECT count(*) FROM error_group_deltas), (SELECT count(*) "
            "FROM attempt_count_deltas)"
        ).one()
        started = time.perf_counter()
        changed = compact(conn)
    print(
        f"  folded {deltas[0]:,} log, {deltas[1]:,} task, {deltas[2]:,} error and "
        f"{deltas[3]:,} attempt delta rows "
        f"into {changed:,} hour rows in {time.perf_counter() - started:.2f} s"
    )
    started = time.perf_counter()
    digested = fold_digests(target.database.engine, batches=1_000_000)
    took = time.perf_counter() - started
    print(f"  digested the attempts of {digested:,} ended hours in {took:.2f} s")
    if target.dialect == "postgresql":
        # What db optimize's VACUUM does next (and autovacuum after the server's folds): a
        # month of deltas folded at once leaves as many dead rows, which every report that
        # reads the deltas would otherwise scan until autovacuum comes by.
        started = time.perf_counter()
        digests = ("attempt_digests", "attempt_digest_marks")
        for table in (*(name for rollup in ROLLUPS for name in rollup[:2]), *digests):
            target.autocommit(f"VACUUM ANALYZE {table}")
        print(f"  vacuumed the rollup tables in {time.perf_counter() - started:.2f} s")


@contextmanager
def rollup_off(target: Target) -> Iterator[None]:
    """Log inserts without the rollups' upkeep (their triggers off; SQLite: the store's
    counts). The error logs' patterns are still computed and written: they are columns."""
    if target.dialect == "postgresql":
        triggers = ("log_volume_hours_insert", "error_group_hours_insert")
        for trigger in triggers:
            target.autocommit(f"ALTER TABLE agent_logs DISABLE TRIGGER {trigger}")
        try:
            yield
        finally:
            for trigger in triggers:
                target.autocommit(f"ALTER TABLE agent_logs ENABLE TRIGGER {trigger}")
        return
    saved = log_ingest.count_inserted, log_ingest.count_inserted_errors
    log_ingest.count_inserted = lambda *_args: None  # type: ignore[assignment]
    log_ingest.count_inserted_errors = lambda *_args: None  # type: ignore[assignment]
    try:
        yield
    finally:
        log_ingest.count_inserted, log_ingest.count_inserted_errors = saved  # type: ignore[assignment]


def ingest_cost(target: Target, task_id: int, rows: int, rounds: int) -> None:
    """The store's bulk ingest (batches of 5,000, as bench/scale.py) with the rollup kept and
    without, alternating, beside the raw driver's insert of the same rows (no rollup)."""
    with_s, without_s, raw_s = [], [], []
    for round_ in range(rounds):
        for kept in (True, False) if round_ % 2 else (False, True):  # each first every other
            with contextlib.nullcontext() if kept else rollup_off(target):
                store, raw = scale_ingest(target, task_id, rows, 1)
            (with_s if kept else without_s).append(rows / store)
            raw_s.append(rows / raw)
    w, wo, r = (rows / statistics.median(x) for x in (with_s, without_s, raw_s))
    print(
        f"  ingest {rows:,} rows x {rounds}: store with rollup {w:,.0f} rows/s, without "
        f"{wo:,.0f} rows/s ({w / wo:.2f}); raw driver {r:,.0f} rows/s; ratio to raw "
        f"{w / r:.2f} with, {wo / r:.2f} without; load average {os.getloadavg()[0]:.1f}"
    )


def explain(target: Target, query: ReportQuery, label: str) -> None:
    """The plan of every statement each report sends, as the database ran it: EXPLAIN
    (ANALYZE, BUFFERS) on PostgreSQL, EXPLAIN QUERY PLAN on SQLite."""
    raw = target.raw()
    prefix = (
        "EXPLAIN (ANALYZE, BUFFERS) " if target.dialect == "postgresql" else ("EXPLAIN QUERY PLAN ")
    )
    try:
        for name, report in REPORTS.items():
            for statement, parameters in capture(target, report, query):
                print(f"  --- {label} {name}: {' '.join(statement.split())[:160]}")
                cur = raw.cursor()
                cur.execute(prefix + statement, parameters)
                for row in cur.fetchall():
                    print(f"      {row[-1]}")
                cur.close()
    finally:
        raw.close()


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
        check_rollup(target)
        d = target.dialect
        now = utcnow()
        month = ReportQuery(since=now - timedelta(days=args.days), until=now, bucket="day")
        day = ReportQuery(since=now - timedelta(hours=24), until=now, bucket="hour")
        if args.explain:
            explain(target, month, f"{args.days}d/day")
        # Before the first fold: PostgreSQL's deltas (a row per task and per finished step:
        # the fill is one month of writes with no db optimize run), read by the rolled-up
        # reports; on both, no attempt digested yet.
        rolled = ("tasks", "tasks by type", "logs", "failures", "durations")
        measure(
            target, month, "unfolded", args.repeat, only=rolled[-1:] if d == "sqlite" else rolled
        )
        fold(target)
        measure(target, month, f"{args.days}d/day", args.repeat)
        measure(target, day, "24h/hour", args.repeat)
        if args.ingest:
            ingest_cost(target, task_ids[-1], args.ingest, args.rounds)
            fold(target)
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
    parser.add_argument("--explain", action="store_true", help="print each statement's plan")
    parser.add_argument("--ingest", type=int, default=100_000, help="rows per ingest round")
    parser.add_argument("--rounds", type=int, default=3, help="ingest rounds")
    args = parser.parse_args(argv)
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="sd-bench-reports-") as work:
        for dialect in dialects:
            run(dialect, args, Path(work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
