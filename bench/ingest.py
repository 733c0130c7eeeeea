"""Bulk log ingest through the store vs the raw driver, same rows, same table, same run.

    .venv/bin/python bench/ingest.py [--rows 200000] [--batch 5000] [--rounds 3] [--no-postgres]

Both sides start from the same rows, as an agent hands them over (dicts with a datetime and a
metadata dict). SQLite: ``store.logs.add_logs`` (validation, conversion, one executemany per
batch, each batch its own transaction) against hand-written ``sqlite3`` code that converts each
batch to tuples (``json.dumps``, ISO timestamps) and calls ``executemany`` in a transaction, into
a fresh copy of the same schema. PostgreSQL (if reachable): the same against raw ``psycopg``
``COPY`` (``write_row`` of tuples). Prints rows/s of each and the ratio store/raw (the median
over rounds, the two alternating so machine noise hits both), plus the raw rate without the
conversion step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from swarm_director.db import Base, Database, make_engine
from swarm_director.models import Task, TaskType
from swarm_director.store import logs

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LEVELS = ("debug", "info", "info", "info", "warning", "error")
COLUMNS = "task_id, agent_type, message, timestamp, log_level, session_id, metadata, created_at"


def make_rows(n: int) -> list[dict[str, Any]]:
    """What agents send: one dict per record."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        {
            "agent_type": "draft_writer" if i % 3 else "director",
            "message": f"step {i}: drafted paragraph {i % 17} of the customer reply",
            "log_level": LEVELS[i % len(LEVELS)],
            "session_id": f"session-{i // 1000}",
            "metadata": {"step": i, "tokens": 120 + i % 50},
            "timestamp": start + timedelta(milliseconds=i),
        }
        for i in range(n)
    ]


def raw_params(rows: list[dict[str, Any]], task_id: int, sqlite: bool) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    return [
        (
            task_id,
            r["agent_type"],
            r["message"],
            r["timestamp"].replace(tzinfo=None).isoformat(" ") if sqlite else r["timestamp"],
            r["log_level"],
            r["session_id"],
            json.dumps(r["metadata"]),
            now.replace(tzinfo=None).isoformat(" ") if sqlite else now,
        )
        for r in rows
    ]


def new_task(database: Database) -> int:
    with database.transaction() as session:
        task = Task(type=TaskType.ANALYSIS, title="ingest benchmark")
        session.add(task)
        session.flush()
        return task.id


def time_store(database: Database, task_id: int, rows: list[dict[str, Any]], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        with database.transaction() as session:
            logs.add_logs(session, task_id, rows[i : i + batch])
    return time.perf_counter() - start


def chunks(params: list[tuple[Any, ...]], batch: int) -> list[list[tuple[Any, ...]]]:
    return [params[i : i + batch] for i in range(0, len(params), batch)]


def bench_sqlite(rows: list[dict[str, Any]], batch: int, rounds: int) -> tuple[float, float, float]:
    work = Path(tempfile.mkdtemp(prefix="sd-ingest-"))
    template = work / "template.db"
    engine = make_engine(URL.create("sqlite", database=str(template)))
    Base.metadata.create_all(engine)
    engine.dispose()
    store_times: list[float] = []
    raw_times: list[float] = []
    bare_times: list[float] = []
    try:
        for r in range(rounds):
            store_file, raw_file = work / f"store{r}.db", work / f"raw{r}.db"
            shutil.copyfile(template, store_file)
            shutil.copyfile(template, raw_file)

            database = Database(make_engine(URL.create("sqlite", database=str(store_file))))
            task_id = new_task(database)
            store_times.append(time_store(database, task_id, rows, batch))
            database.dispose()

            conn = sqlite3.connect(raw_file, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(
                "INSERT INTO tasks (type, status, title, priority, created_at, updated_at) "
                "VALUES ('analysis', 'pending', 'raw', 'medium', '2026-11-01', '2026-11-01')"
            )
            sql = f"INSERT INTO agent_logs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            start = time.perf_counter()
            for i in range(0, len(rows), batch):
                params = raw_params(rows[i : i + batch], 1, sqlite=True)
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, params)
                conn.execute("COMMIT")
            raw_times.append(time.perf_counter() - start)
            conn.execute("DELETE FROM agent_logs")
            prepared = chunks(raw_params(rows, 1, sqlite=True), batch)
            start = time.perf_counter()
            for chunk in prepared:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, chunk)
                conn.execute("COMMIT")
            bare_times.append(time.perf_counter() - start)
            conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tuple(statistics.median(t) for t in (store_times, raw_times, bare_times))  # type: ignore[return-value]


def _pg_admin(sql: str) -> None:
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


def bench_postgres(
    rows: list[dict[str, Any]], batch: int, rounds: int
) -> tuple[float, float, float]:
    import psycopg

    name = f"sdbench_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN).set(database=name)
    database = Database(make_engine(url))
    Base.metadata.create_all(database.engine)
    store_times: list[float] = []
    raw_times: list[float] = []
    bare_times: list[float] = []
    try:
        for _ in range(rounds):
            task_id = new_task(database)
            store_times.append(time_store(database, task_id, rows, batch))
            raw_task = new_task(database)
            sql = f"COPY agent_logs ({COLUMNS}) FROM STDIN"
            with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as conn:
                start = time.perf_counter()
                for i in range(0, len(rows), batch):
                    params = raw_params(rows[i : i + batch], raw_task, sqlite=False)
                    with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                        for values in params:
                            copy.write_row(values)
                raw_times.append(time.perf_counter() - start)
                prepared = chunks(raw_params(rows, raw_task, sqlite=False), batch)
                start = time.perf_counter()
                for chunk in prepared:
                    with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                        for values in chunk:
                            copy.write_row(values)
                bare_times.append(time.perf_counter() - start)
    finally:
        database.dispose()
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return tuple(statistics.median(t) for t in (store_times, raw_times, bare_times))  # type: ignore[return-value]


def report(label: str, n: int, result: tuple[float, float, float]) -> float:
    store_s, raw_s, bare_s = result
    ratio = raw_s / store_s
    print(
        f"{label:<11} store {n / store_s:>9,.0f} rows/s   raw {n / raw_s:>9,.0f} rows/s   "
        f"store/raw = {ratio:.2f}   (raw of pre-converted tuples: "
        f"{n / bare_s:,.0f} rows/s, store/that = {bare_s / store_s:.2f})"
    )
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    rows = make_rows(args.rows)
    print(f"{args.rows:,} log rows in batches of {args.batch:,}, median of {args.rounds} rounds")
    benches: list[tuple[str, Callable[..., tuple[float, float, float]]]] = [
        ("sqlite", bench_sqlite)
    ]
    if not args.no_postgres:
        benches.append(("postgresql", bench_postgres))
    ratios = [report(label, args.rows, fn(rows, args.batch, args.rounds)) for label, fn in benches]
    return 0 if all(r >= 0.5 for r in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
