"""Operations benchmark on a SQLite database of >= 1,000,000 agent logs.

    .venv/bin/python bench/ops.py [--logs 1000000] [--rounds 3] [--keep DIR]

1. Generates the data set with raw ``sqlite3`` ``executemany`` into a schema at head.
2. Backup: ``ops.backup.create.create_backup`` (online backup API in a pinned read
   transaction, fsync, SHA-256, row counts, manifest, audit row) against the ``sqlite3``
   module's own ``Connection.backup`` into a file, alternating, ``--rounds`` each; prints the
   medians and the ratio (target: within 1.5x).
3. ``db check`` (``run_check``) on the whole database.
4. Statement-timing overhead: the same 20,000 point queries with and without the collector.
5. Cleanup of half the logs (``cleanup_logs --older-than 30d``, batches of 2,000) while a
   writer in another process inserts one log per transaction: rows/s and the writer's
   longest wait.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from swarm_director.db import Database, make_engine
from swarm_director.migrations import migrate
from swarm_director.ops.backup.create import create_backup
from swarm_director.ops.checks.db_check import run_check
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy
from swarm_director.ops.stats.timings import StatementTimings

LEVELS = ("debug", "info", "info", "info", "warning", "error")
TASKS = 10_000


def generate(path: Path, n_logs: int) -> float:
    """Schema at head via the migrations, then tasks and logs with raw executemany."""
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    # Load without the log indexes and build them afterwards: several times faster.
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'agent_logs' "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    now = datetime.now(UTC).replace(tzinfo=None)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO tasks (id, type, status, title, priority, created_at, updated_at) "
        "VALUES (?, 'analysis', 'completed', ?, 'medium', ?, ?)",
        ((i, f"task {i}", stamp, stamp) for i in range(1, TASKS + 1)),
    )
    span = timedelta(days=60)
    batch = 50_000
    for start in range(0, n_logs, batch):
        rows = []
        for i in range(start, min(start + batch, n_logs)):
            # Ages spread evenly over 60 days: exactly half are older than 30 days.
            ts = (now - span * ((i + 0.5) / n_logs)).strftime("%Y-%m-%d %H:%M:%S.%f")
            rows.append(
                (
                    i % TASKS + 1,
                    "draft_writer" if i % 3 else "director",
                    f"step {i}: drafted paragraph {i % 17} of the customer reply",
                    ts,
                    LEVELS[i % len(LEVELS)],
                    f"session-{i // 1000}",
                    f'{{"step": {i}, "tokens": {120 + i % 50}}}',
                    ts,
                )
            )
        conn.executemany(
            "INSERT INTO agent_logs (task_id, agent_type, message, timestamp, log_level, "
            "session_id, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def raw_backup(source: Path, target: Path) -> float:
    began = time.perf_counter()
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    src.backup(dst)
    dst.close()
    src.close()
    return time.perf_counter() - began


def ours_backup(database: Database, folder: Path) -> float:
    began = time.perf_counter()
    result = create_backup(database.engine, folder)
    elapsed = time.perf_counter() - began
    result.path.unlink()
    Path(str(result.path) + ".manifest.json").unlink()
    return elapsed


def writer(url: str, stop: Any, out: Any) -> None:
    """Insert one log per transaction until ``stop`` is set; report the waits."""
    engine = make_engine(url)
    waits = []
    slow: list[float] = []
    insert = sa.text(
        "INSERT INTO agent_logs (task_id, agent_type, message, timestamp, log_level, "
        "created_at) VALUES (1, 'worker', 'live', :ts, 'info', :ts)"
    )
    while not stop.is_set():
        began = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(insert, {"ts": datetime.now(UTC).replace(tzinfo=None)})
        waits.append(time.perf_counter() - began)
        if waits[-1] > 0.5:
            slow.append(waits[-1])
        time.sleep(0.002)
    engine.dispose()
    out.put(
        (len(waits), max(waits) if waits else 0.0, statistics.median(waits) if waits else 0.0, slow)
    )


def point_queries(database: Database, n: int) -> float:
    query = sa.text("SELECT title FROM tasks WHERE id = :id")
    began = time.perf_counter()
    with database.engine.connect() as conn:
        for i in range(n):
            conn.execute(query, {"id": i % TASKS + 1}).scalar()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Keep the generated database in this folder.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    path = (args.keep or work) / "bench.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    try:
        seconds = generate(path, args.logs)
        size = path.stat().st_size
        print(
            f"generated {args.logs:,} logs + {TASKS:,} tasks in {seconds:.1f} s "
            f"({args.logs / seconds:,.0f} rows/s), file {size / 2**20:.0f} MiB"
        )
        database = Database(make_engine(f"sqlite:///{path}"))

        raw, ours = [], []
        for _ in range(args.rounds):
            target = work / "raw.sqlite3"
            raw.append(raw_backup(path, target))
            target.unlink()
            ours.append(ours_backup(database, work / "backups"))
        r, o = statistics.median(raw), statistics.median(ours)
        print(
            f"backup: db backup {o:.2f} s vs sqlite3 Connection.backup {r:.2f} s "
            f"(medians of {args.rounds}) -> ratio {o / r:.2f}x "
            f"({size / 2**20 / o:.0f} MiB/s)"
        )

        report = run_check(database.engine)
        print(f"db check: {report.seconds:.2f} s, {report.problem_count} problems")

        plain = Database(make_engine(f"sqlite:///{path}"))
        timed = Database(make_engine(f"sqlite:///{path}"))
        StatementTimings().install(timed.engine)
        n, rounds = 2_000, 15
        without, with_ = [], []
        for _ in range(rounds):  # short interleaved rounds, best of each: noise-resistant
            without.append(point_queries(plain, n))
            with_.append(point_queries(timed, n))
        w, t = min(without), min(with_)
        print(
            f"statement timings: {n:,} point queries best of {rounds}: {w * 1000:.1f} ms "
            f"without, {t * 1000:.1f} ms with -> overhead {(t / w - 1) * 100:+.1f}% "
            f"({(t - w) / n * 1e6:.1f} us/statement)"
        )
        plain.dispose()
        timed.dispose()

        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        stop = ctx.Event()
        proc = ctx.Process(target=writer, args=(f"sqlite:///{path}", stop, queue))
        proc.start()
        time.sleep(2.0)  # let the writer start
        cleaned = cleanup_logs(database.engine, RetentionPolicy(older_than=timedelta(days=30)))
        stop.set()
        inserts, longest, median, slow = queue.get(timeout=60)
        proc.join()
        database.dispose()
        print(
            f"cleanup: deleted {cleaned.deleted:,} of {args.logs:,} logs in "
            f"{cleaned.seconds:.1f} s ({cleaned.deleted / cleaned.seconds:,.0f} rows/s), "
            f"{cleaned.batches} batches, longest batch {cleaned.longest_batch_s * 1000:.0f} ms, "
            f"freed {cleaned.bytes_freed / 2**20:.0f} MiB"
        )
        print(
            f"concurrent writer: {inserts:,} inserts, longest wait {longest * 1000:.0f} ms, "
            f"median {median * 1000:.1f} ms, {len(slow)} waits over 0.5 s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
