"""agent_logs at scale: each figure beside its baseline, measured in the same run.

    .venv/bin/python bench/scale.py [--rows 10000000] [--dialect sqlite|postgresql|both]
                                    [--months 6] [--samples 1000] [--ingest-rows 100000]

For each dialect, on a fresh database migrated to head (PostgreSQL: partitioned by month):

0. Fill ``--rows`` logs spread evenly over the last ``--months`` months and 1,000 tasks, fast
   and not through the store (SQLite ``executemany`` of tuples, PostgreSQL ``COPY``; the
   months' partitions are made first with ``ensure_partitions``, the on-demand path; the
   secondary indexes are dropped first and rebuilt after, from their own DDL), then ANALYZE.
   Prints the fill rate and the database size per million logs.
1. Newest 50 logs of a task over HTTP (``swarm-director serve``, one request at a time):
   median and p99, beside the same query run raw on a driver connection in this process.
2. Store ingest (``store.logs.add_logs``, batches of 5,000, a transaction each) into the big
   table, beside the raw ceiling on the same table: ``executemany`` of pre-converted tuples
   (SQLite) or ``COPY`` of pre-converted rows (PostgreSQL).
3. Retention of the oldest month with ``cleanup_logs`` (PostgreSQL: the partition is dropped;
   SQLite: batched DELETE), beside the second-oldest month removed by batched ``DELETE``
   (2,000 ids a transaction, as retention does on a plain table): seconds and bytes returned.
4. Search (``--search``): the newest 50 hits for a rare word (20 logs) and for a word in every
   tenth log, through the store (``list_logs`` with ``q``) beside the raw FTS5 / GIN query, p50
   and p95 (``bench/search.py``'s ``measure``; the messages are that script's, so its words
   and frequencies hold here). PostgreSQL: again once the GIN pending lists that (2) filled
   are merged (as VACUUM does).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import (
    SWARM_DIRECTOR,
    bench_newest,
    free_port,
    new_tasks,
    percentile,
    server,
)
from bench.search import figure_lines
from bench.search import measure as search_measure
from bench.search import message as search_message
from swarm_director.db import Database, make_engine, utcnow
from swarm_director.db.partitions import (
    add_months,
    ensure_partitions,
    month_start,
    relation_bytes,
)
from swarm_director.migrations import migrate
from swarm_director.ops.dbinfo import database_bytes
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy
from swarm_director.store import logs

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LEVELS = ("debug", "info", "info", "info", "warning", "error")
COLUMNS = "task_id, agent_type, message, timestamp, log_level, session_id, metadata, created_at"
COPY = f"COPY agent_logs ({COLUMNS}) FROM STDIN"
TASKS = 1000
CHUNK = 100_000
STORE_BATCH = 5000
NEWEST = (
    "SELECT id, task_id, agent_type, message, timestamp, log_level, agent_id, session_id, "
    "metadata, created_at FROM agent_logs WHERE task_id = {p} "
    "ORDER BY timestamp DESC, id DESC LIMIT 50"
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.1f} MB"


class Target:
    """A fresh database of one dialect, dropped (or deleted) afterwards."""

    def __init__(self, dialect: str, work: Path) -> None:
        self.dialect = dialect
        if dialect == "sqlite":
            self.url = URL.create("sqlite", database=str(work / "scale.db"))
        else:
            self.name = f"sdbench_{uuid.uuid4().hex[:12]}"
            self._admin(f'CREATE DATABASE "{self.name}"')
            self.url = make_url(PG_ADMIN).set(database=self.name)
        self.database = Database(make_engine(self.url))
        migrate.upgrade(self.database.engine, "head")

    def _admin(self, sql: str) -> None:
        engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
        engine.dispose()

    def close(self) -> None:
        self.database.dispose()
        if self.dialect == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def raw(self) -> Any:
        if self.dialect == "sqlite":
            return sqlite3.connect(str(self.url.database), isolation_level=None)
        import psycopg

        return psycopg.connect(self.url.set(drivername="postgresql").render_as_string(False))

    def autocommit(self, sql: str) -> None:
        with self.database.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as c:
            c.exec_driver_sql(sql)

    def drop_indexes(self) -> list[str]:
        """Drop agent_logs' secondary indexes (whatever revisions made them) and, on SQLite,
        its full-text insert trigger; the DDL that puts them back (the full-text table is
        rebuilt from the rows in one pass first: faster than a trigger per row)."""
        after: list[str] = []
        with self.database.engine.begin() as conn:
            if self.dialect == "sqlite":
                found = conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'agent_logs' AND sql IS NOT NULL"
                ).all()
                triggers = conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name = 'agent_logs' AND sql LIKE '%AFTER INSERT%'"
                ).all()
                for name, _ in triggers:
                    conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
                rebuild = "INSERT INTO agent_logs_fts(agent_logs_fts) VALUES ('rebuild')"
                after = [rebuild] + [str(sql) for _, sql in triggers]
            else:
                found = conn.exec_driver_sql(
                    "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE i.indrelid = 'agent_logs'::regclass AND NOT i.indisprimary"
                ).all()
            for name, _ in found:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
        # A partitioned table's index reads "ON ONLY agent_logs": built without ONLY, it is
        # built on every partition too.
        return [str(sql).replace(" ON ONLY ", " ON ", 1) for _, sql in found] + after

    def logs_bytes(self) -> int:
        with self.database.engine.connect() as conn:
            if self.dialect == "postgresql":
                return relation_bytes(conn, "agent_logs")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            return int((pages - free) * size)  # used pages (the file keeps its free ones)


def _row(i: int, n: int, task_ids: list[int], first: datetime, span: float) -> tuple[Any, ...]:
    stamp = first + timedelta(seconds=span * i / n)
    return (
        task_ids[i % len(task_ids)],
        "draft_writer" if i % 3 else "director",
        search_message(i, n),
        stamp,
        LEVELS[i % len(LEVELS)],
        f"session-{i // 1000}",
        json.dumps({"step": i, "tokens": 120 + i % 50}),
        stamp,
    )


def _copy_line(values: tuple[Any, ...]) -> str:
    return "\t".join(str(v) for v in values) + "\n"


def _sqlite_params(values: tuple[Any, ...]) -> tuple[Any, ...]:
    stamp = values[3].replace(tzinfo=None).isoformat(" ", "microseconds")
    return (*values[:3], stamp, *values[4:7], stamp)


def fill(target: Target, rows: int, months: int, task_ids: list[int]) -> tuple[float, datetime]:
    """Raw fill over the last ``months`` months; returns (seconds, first month start)."""
    now = utcnow()
    first = add_months(month_start(now), -months)
    span = (now - first).total_seconds() - 60
    if target.dialect == "postgresql":
        with target.database.engine.begin() as conn:
            ensure_partitions(conn, "agent_logs", [add_months(first, m) for m in range(months + 1)])
    started = time.perf_counter()
    indexes = target.drop_indexes()  # a sorted build afterwards beats random inserts
    conn = target.raw()
    try:
        for base in range(0, rows, CHUNK):
            chunk = [
                _row(i, rows, task_ids, first, span) for i in range(base, min(rows, base + CHUNK))
            ]
            if target.dialect == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
                sql = f"INSERT INTO agent_logs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                conn.executemany(sql, [_sqlite_params(v) for v in chunk])
                conn.execute("COMMIT")
            else:
                with conn.transaction(), conn.cursor() as cur, cur.copy(COPY) as copy:
                    copy.write("".join(_copy_line(v) for v in chunk))
            done = min(rows, base + CHUNK)
            print(f"\r  filled {done:,}/{rows:,}", end="", flush=True)
    finally:
        conn.close()
    print()
    for definition in indexes:
        target.autocommit(definition)
    target.autocommit("ANALYZE" if target.dialect == "sqlite" else "VACUUM ANALYZE agent_logs")
    # A SQLite connection that was open while the full-text trigger was dropped and the table
    # rebuilt writes through that trigger 3-4x slower afterwards (measured; fresh connections
    # do not); a server's connections open after its migrations, so measure with fresh ones.
    target.database.engine.dispose()
    return time.perf_counter() - started, first


def raw_newest(target: Target, task_ids: list[int], samples: int) -> list[float]:
    """The newest-50 query on a bare driver connection (the baseline of the HTTP figure)."""
    rng = random.Random(7)
    sql = NEWEST.format(p="?" if target.dialect == "sqlite" else "%s")
    conn = target.raw()
    latencies = []
    try:
        for _ in range(samples):
            task_id = rng.choice(task_ids)
            start = time.perf_counter()
            got = conn.execute(sql, (task_id,)).fetchall()
            latencies.append(time.perf_counter() - start)
            assert len(got) == 50
    finally:
        conn.close()
    return latencies


def alternate_kept_alive(
    port: int, bare_port: int, task_ids: list[int], samples: int
) -> dict[str, list[float]]:
    """Newest 50 and the bare Flask endpoint, alternating, each over one kept-alive HTTP/1.1
    connection (as the Python client and browsers use): latencies in seconds."""
    rng = random.Random(11)
    conns = {
        "newest 50": (http.client.HTTPConnection("127.0.0.1", port, timeout=60), True),
        "bare Flask endpoint (baseline)": (
            http.client.HTTPConnection("127.0.0.1", bare_port, timeout=60),
            False,
        ),
    }
    found: dict[str, list[float]] = {name: [] for name in conns}
    try:
        for i in range(samples + 20):  # the first 20 warm up
            task_id = rng.choice(task_ids)
            for name, (conn, newest) in conns.items():
                path = f"/api/tasks/{task_id}/logs?limit=50" if newest else f"/bare/{task_id}"
                start = time.perf_counter()
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - start
                if response.status != 200 or (newest and len(json.loads(body)["items"]) != 50):
                    raise SystemExit(f"{name} failed: HTTP {response.status}")
                if i >= 20:
                    found[name].append(elapsed)
    finally:
        for conn, _ in conns.values():
            conn.close()
    return found


def ingest(target: Target, task_id: int, rows: int, rounds: int) -> tuple[float, float]:
    """(store rows/s, raw ceiling rows/s), medians over alternating rounds."""
    now = utcnow()
    dicts = [
        {"agent_type": "w", "message": f"ingest {i}", "log_level": LEVELS[i % 6],
         "session_id": "ingest", "metadata": {"i": i}, "timestamp": now - timedelta(seconds=i)}
        for i in range(rows)
    ]  # fmt: skip
    tuples = [
        (task_id, d["agent_type"], d["message"], d["timestamp"], d["log_level"], "ingest",
         json.dumps(d["metadata"]), now)
        for d in dicts
    ]  # fmt: skip
    if target.dialect == "sqlite":
        tuples = [_sqlite_params(v) for v in tuples]
    store_s, raw_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(0, rows, STORE_BATCH):
            with target.database.transaction() as session:
                logs.add_logs(session, task_id, dicts[i : i + STORE_BATCH])
        store_s.append(time.perf_counter() - start)
        conn = target.raw()
        try:
            start = time.perf_counter()
            for i in range(0, rows, STORE_BATCH):
                part = tuples[i : i + STORE_BATCH]
                if target.dialect == "sqlite":
                    conn.execute("BEGIN IMMEDIATE")
                    sql = f"INSERT INTO agent_logs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    conn.executemany(sql, part)
                    conn.execute("COMMIT")
                else:
                    with conn.transaction(), conn.cursor() as cur, cur.copy(COPY) as copy:
                        for values in part:
                            copy.write_row(values)
            raw_s.append(time.perf_counter() - start)
        finally:
            conn.close()
    return rows / statistics.median(store_s), rows / statistics.median(raw_s)


def batched_delete(target: Target, lower: datetime, upper: datetime) -> int:
    """Delete a month 2,000 ids a transaction (retention on a plain table); rows deleted."""
    table = sa.table("agent_logs", sa.column("id"), sa.column("timestamp"))
    chosen = (
        sa.select(table.c.id)
        .where(table.c.timestamp >= lower, table.c.timestamp < upper)
        .limit(2000)
        .scalar_subquery()
    )
    deleted = 0
    while True:
        with target.database.engine.begin() as conn:
            n = conn.execute(sa.delete(table).where(table.c.id.in_(chosen))).rowcount
        deleted += n
        if n == 0:
            return deleted


def retention(target: Target, first: datetime) -> None:
    second, third = add_months(first, 1), add_months(first, 2)
    now = utcnow()
    before = target.logs_bytes()
    policy = RetentionPolicy(older_than=now - second)
    start = time.perf_counter()
    report = cleanup_logs(target.database.engine, policy, now=now)
    drop_s = time.perf_counter() - start
    after = target.logs_bytes()
    how = (
        f"drop of {', '.join(report.partitions)} (the drop itself {report.drop_seconds:.3f} s)"
        if report.partitions
        else "batched DELETE"
    )
    print(
        f"(3) retention, oldest month ({report.deleted:,} rows) by cleanup-logs, {how}: "
        f"{drop_s:.2f} s, {_mb(before - after)} returned at once "
        f"(report: {_mb(report.bytes_freed)} freed)"
    )
    start = time.perf_counter()
    deleted = batched_delete(target, second, third)
    delete_s = time.perf_counter() - start
    gone = target.logs_bytes()
    print(
        f"    baseline: next month ({deleted:,} rows) by batched DELETE: {delete_s:.2f} s, "
        f"{_mb(after - gone)} returned at once (rows become reusable space after VACUUM)"
    )


#: The GIN indexes of PostgreSQL's partitions (the parent's is no index of its own).
_GIN_INDEXES = (
    "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
    "WHERE a.amname = 'gin' AND c.relkind = 'i'"
)


def search(target: Target, repeat: int) -> None:
    """Rare and common word, newest 50 hits, store beside the raw full-text query.

    On PostgreSQL the rows just ingested by (2) sit in the GIN indexes' pending lists (up to
    ``gin_pending_list_limit``, 4 MB), which every search reads through; VACUUM (autovacuum,
    ``db optimize``) merges them into the index. So the figures are taken as left by (2), and
    again once the lists are merged (``gin_clean_pending_list``)."""
    for line in figure_lines(search_measure(target.url, repeat)):
        print(f"(4) search {line}")
    if target.dialect != "postgresql":
        return
    with target.database.engine.connect() as conn:
        indexes = conn.exec_driver_sql(_GIN_INDEXES).scalars().all()
        pages = sum(
            conn.exec_driver_sql(f"SELECT gin_clean_pending_list('{name}'::regclass)").scalar() or 0
            for name in indexes
        )
        conn.commit()
    print(f"    GIN pending lists merged: {pages:,} pages ({_mb(pages * 8192)})")
    for line in figure_lines(search_measure(target.url, repeat)):
        print(f"(4) search, pending lists merged: {line}")


def run(dialect: str, args: argparse.Namespace, work: Path) -> None:
    print(f"== {dialect}: {args.rows:,} logs over {args.months} months, {TASKS} tasks")
    target = Target(dialect, work)
    try:
        task_ids = new_tasks(target.database, TASKS)
        seconds, first = fill(target, args.rows, args.months, task_ids)
        size = database_bytes(target.database.engine)
        print(
            f"(0) filled in {seconds:.0f} s ({args.rows / seconds:,.0f} rows/s); database "
            f"{_mb(size)} = {_mb(size / (args.rows / 1e6))} per million logs "
            f"(agent_logs with indexes {_mb(target.logs_bytes() / (args.rows / 1e6))}/M)"
        )
        raw = raw_newest(target, task_ids, args.samples)
        url = target.url.render_as_string(hide_password=False)
        port, bare_port = free_port(), free_port()
        command = [*SWARM_DIRECTOR, "serve", "--database-url", url, "--port", str(port),
                   "--workers", str(args.workers)]  # fmt: skip
        bare = [sys.executable, str(Path(__file__).with_name("api.py")), "--serve-bare",
                str(bare_port), "--workers", str(args.workers)]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "SWARM_API_TOKEN"}
        with server(command, port, env), server(bare, bare_port, env):
            per_request = bench_newest(port, task_ids, args.samples)
            kept = alternate_kept_alive(port, bare_port, task_ids, args.samples)
        print(
            f"(1) newest 50 of a task over HTTP, a connection per request: median "
            f"{_ms(statistics.median(per_request))}, p99 {_ms(percentile(per_request, 0.99))}; "
            f"raw query in-process: median {_ms(statistics.median(raw))}, "
            f"p99 {_ms(percentile(raw, 0.99))}"
        )
        for name, values in kept.items():
            print(
                f"    {name}, one kept-alive connection: median {_ms(statistics.median(values))}"
                f", p99 {_ms(percentile(values, 0.99))}"
            )
        store, ceiling = ingest(target, task_ids[0], args.ingest_rows, args.rounds)
        ceiling_name = "executemany of tuples" if dialect == "sqlite" else "COPY of rows"
        print(
            f"(2) ingest into the big table: store {store:,.0f} rows/s, raw {ceiling_name} "
            f"{ceiling:,.0f} rows/s -> {store / ceiling:.2f}"
        )
        if args.search:
            search(target, args.search_repeat)
        retention(target, first)
    finally:
        target.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--samples", type=int, default=1000, help="newest-50 requests")
    parser.add_argument("--ingest-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--search", action="store_true", help="add the search figures (4)")
    parser.add_argument("--search-repeat", type=int, default=40, help="searches per case")
    args = parser.parse_args(argv)
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    work = Path(tempfile.mkdtemp(prefix="sd-bench-scale-"))
    try:
        for dialect in dialects:
            run(dialect, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
