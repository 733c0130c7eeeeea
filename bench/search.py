"""Full-text search at scale: the store's ``list_logs`` with ``q`` beside the same raw SQL query.

    .venv/bin/python bench/search.py [--logs 1000000] [--repeat 40] [--only sqlite|postgresql]
                                     [--windows]

Fills a fresh database at head with ``--logs`` logs over 100 tasks, written raw (``sqlite3``
``executemany`` through the FTS5 triggers; psycopg ``COPY`` with the GIN index built after):
every 10th message holds the common word ``timeout``, 20 messages hold the rare word
``kraken``. Then measures, per dialect, p50/p95 of the newest 50 hits (limit 50) for each word
(and for ``w*``: a different one of 20,000 less frequent words each time, n / 20,000 hits)
through the store (``logs.list_logs`` on a connection, as the API calls it) and through the
baseline: the same SELECT written by hand and run on the bare driver connection. Other
helpers' ``bench/scale.py`` can call :func:`fill` and :func:`measure`.

``--windows`` (SQLite): the newest 50 hits of a frequent word in several listings (all logs,
oldest first, a level filter, one task), read window by window as the store does, beside the
list of all hits (the plan before the windows), p50 of each and their ratio.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from swarm_director.db import make_engine
from swarm_director.migrations import migrate
from swarm_director.store import logs

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
COMMON, RARE = "timeout", "kraken"
#: A different word of the ~20,000 "w" words for every search (n / 20,000 hits each): as
#: users search, where no statement or page is warm from the search before.
VARIED = "w*"
RARE_COUNT = 20
TASKS = 100
_VOCAB = [
    "drafted",
    "paragraph",
    "reply",
    "customer",
    "routed",
    "review",
    "approved",
    "queued",
    "sent",
    "agent",
    "worker",
    "plan",
    "token",
    "cache",
    "retry",
    "parsed",
    "summary",
    "invoice",
    "schedule",
    "meeting",
    "report",
    "budget",
    "email",
]
START = datetime(2026, 1, 1, tzinfo=UTC)
_SQLITE_SEARCH = (
    "SELECT * FROM agent_logs WHERE {key} IN (SELECT rowid FROM agent_logs_fts "
    "WHERE agent_logs_fts MATCH ?) ORDER BY timestamp DESC, id DESC LIMIT 51"
)
# The baseline knows which plan fits each word (the store has to count the hits to choose):
# the rare word's few hits by id, then sorted; the common word's as a filter on an ordered walk.
_SQLITE_PLAN = {RARE: "id", COMMON: "+id", VARIED: "id"}
_PG_MATCH = (
    "to_tsvector('simple', regexp_replace(left(message, 100000), '[^[:alnum:]]+', ' ', 'g')) "
    "@@ to_tsquery('simple', %s)"
)
# As for SQLite, the baseline knows each word's plan: the rare word's hits by id (the
# planner's own choice walks the whole table: 17-19 s per query at 1 M logs), the common
# word's as the planner likes (a walk of the timestamp index filtered by the match).
_PG_SEARCH = {
    RARE: "SELECT * FROM agent_logs WHERE id = ANY(ARRAY(SELECT id FROM agent_logs "
    f"WHERE {_PG_MATCH})) ORDER BY timestamp DESC, id DESC LIMIT 51",
    COMMON: f"SELECT * FROM agent_logs WHERE {_PG_MATCH} ORDER BY timestamp DESC, id DESC LIMIT 51",
}
_PG_SEARCH[VARIED] = _PG_SEARCH[RARE]


def message(i: int, n: int) -> str:
    """The text of log ``i`` of ``n``: every 10th holds COMMON, RARE_COUNT spread ones RARE.

    Besides a few frequent words, each message has two of 20,000 less frequent ones (ids,
    hosts, names in real logs): PostgreSQL's planner estimates a word's frequency from the
    index's statistics, which a toy vocabulary would skew."""
    words = [_VOCAB[(i * 7 + k) % len(_VOCAB)] for k in range(4)]
    words += [f"w{(i * 7919) % 20_000}", f"n{(i * 104_729) % 20_011}"]
    if i % 10 == 0:
        words.insert(3, COMMON)
    if i % max(n // RARE_COUNT, 1) == 7:
        words.insert(2, RARE)
    return f"step {i}: " + " ".join(words) + f" #{i % 9973}"


def _rows(start: int, stop: int, n: int) -> list[tuple[Any, ...]]:
    now = "2026-06-01 00:00:00.000000"
    return [
        (
            1 + i % TASKS,
            "worker",
            message(i, n),
            (START + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "info",
            now,
        )
        for i in range(start, stop)
    ]


def _tasks(conn: Any, placeholder: str) -> None:
    sql = (
        "INSERT INTO tasks (type, title, status, priority, created_at, updated_at) VALUES "
        f"('analysis', {placeholder}, 'pending', 'medium', '2026-01-01', '2026-01-01')"
    )
    for t in range(TASKS):
        conn.execute(sql, (f"bench task {t}",))


def fill(url: URL, n: int, chunk: int = 100_000) -> float:
    """Migrate ``url`` to head and write ``n`` logs raw; returns the seconds it took."""
    engine = make_engine(url, create_dirs=True)
    migrate.upgrade(engine)
    engine.dispose()
    started = time.perf_counter()  # the writes only, not the migration
    insert = (
        "INSERT INTO agent_logs (task_id, agent_type, message, timestamp, log_level, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    if url.get_backend_name() == "sqlite":
        with closing(sqlite3.connect(str(url.database))) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                _tasks(conn, "?")
            for start in range(0, n, chunk):
                with conn:  # the FTS5 triggers index each row as it is written
                    conn.executemany(insert, _rows(start, min(start + chunk, n), n))
            conn.execute("ANALYZE")
        return time.perf_counter() - started
    import psycopg

    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        _tasks(conn, "%s")
        conn.execute("DROP INDEX ix_agent_logs_fts")  # built once after the copy: faster
        columns = "task_id, agent_type, message, timestamp, log_level, created_at"
        with conn.cursor().copy(f"COPY agent_logs ({columns}) FROM STDIN") as copy:
            for start in range(0, n, chunk):
                for row in _rows(start, min(start + chunk, n), n):
                    copy.write_row(row)
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(
            "CREATE INDEX ix_agent_logs_fts ON agent_logs USING gin (to_tsvector('simple', "
            "regexp_replace(left(message, 100000), '[^[:alnum:]]+', ' ', 'g')))"
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE agent_logs")
    return time.perf_counter() - started


def _percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def measure(url: URL, repeat: int) -> dict[str, tuple[float, float]]:
    """p50/p95 in ms of the newest 50 hits for RARE, COMMON and VARIED, store and raw
    baseline, alternating so that machine noise hits both alike."""
    engine = make_engine(url)
    results: dict[str, list[float]] = {}
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            sqlite = url.get_backend_name() == "sqlite"

            def run_raw(kind: str, word: str) -> int:
                if sqlite:
                    sql = _SQLITE_SEARCH.format(key=_SQLITE_PLAN[kind])
                    return len(raw.execute(sql, (f'"{word}"',)).fetchall())
                return len(raw.execute(_PG_SEARCH[kind], (f"'{word}'",)).fetchall())

            def run_store(_kind: str, word: str) -> int:
                return len(logs.list_logs(conn, {"q": word}, limit=50).items)

            cases: list[tuple[str, Callable[[str, str], int], str]] = [
                (f"{kind} {word}", fn, word)
                for word in (RARE, COMMON, VARIED)
                for kind, fn in (("raw", run_raw), ("store", run_store))
            ]
            fresh = iter(range(20_000))  # a new "w" word for each varied search

            def actual(word: str) -> str:
                return f"w{next(fresh)}" if word == VARIED else word

            for name, fn, word in cases:  # warm-up, and a sanity check of the hits
                hits = fn(word, actual(word))
                assert hits >= {RARE: RARE_COUNT // 2, COMMON: 50, VARIED: 1}[word], (name, hits)
            for _ in range(repeat):
                for name, fn, word in cases:
                    searched = actual(word)
                    t0 = time.perf_counter()
                    fn(word, searched)
                    results.setdefault(name, []).append(time.perf_counter() - t0)
            if not sqlite:
                conn.rollback()
    finally:
        engine.dispose()
    return {name: _percentiles(times) for name, times in results.items()}


# Listings the SQLite search windows (store/search_pages.py) meet, for a frequent word: name,
# word, log filters and order. Task 7 holds no "timeout" (every 10th log; tasks go by i % 100).
_LISTINGS: list[tuple[str, str, dict[str, Any], Literal["asc", "desc"]]] = [
    ("all logs", COMMON, {}, "desc"),
    ("all logs", "drafted", {}, "desc"),
    ("all logs, oldest first", COMMON, {}, "asc"),
    ("level info and up", COMMON, {"level": "info"}, "desc"),
    ("one task of 100", "drafted", {"task_id": 7}, "desc"),
    ("one task of 100, no hit", COMMON, {"task_id": 7}, "desc"),
]


def measure_windows(url: URL, repeat: int) -> list[str]:
    """SQLite: newest 50 hits of a frequent word in several listings, read window by window
    (the store) beside the list of all hits (the store with its windows turned off, the plan
    it had before them), alternating; one line each with the p50s and their ratio."""
    from swarm_director.store import search_pages

    engine = make_engine(url)
    lines = []
    tries = search_pages.WINDOW_TRIES
    try:
        with engine.connect() as conn:
            for name, word, filters, order in _LISTINGS:
                times: dict[int, list[float]] = {tries: [], 0: []}
                for _ in range(repeat):
                    for setting in (tries, 0):
                        search_pages.WINDOW_TRIES = setting
                        t0 = time.perf_counter()
                        logs.list_logs(conn, {**filters, "q": word}, order=order, limit=50)
                        times[setting].append(time.perf_counter() - t0)
                windowed, full = _percentiles(times[tries])[0], _percentiles(times[0])[0]
                lines.append(
                    f"{name:24} {word:8} windows p50 {windowed:7.2f} ms   all hits p50 "
                    f"{full:7.2f} ms   windows/all {windowed / full:.2f}"
                )
    finally:
        search_pages.WINDOW_TRIES = tries
        engine.dispose()
    return lines


def figure_lines(figures: dict[str, tuple[float, float]]) -> list[str]:
    """One line per word of :func:`measure`'s figures: store and raw p50/p95, and the ratio."""
    lines = []
    for word in (RARE, COMMON, VARIED):
        store, raw = figures[f"store {word}"], figures[f"raw {word}"]
        lines.append(
            f"{word:8} store p50 {store[0]:7.2f} ms  p95 {store[1]:7.2f} ms   "
            f"raw p50 {raw[0]:7.2f} ms  p95 {raw[1]:7.2f} ms   "
            f"store/raw p50 {store[0] / raw[0]:.2f}"
        )
    return lines


def _report(dialect: str, n: int, fill_s: float, figures: dict[str, tuple[float, float]]) -> None:
    print(f"\n{dialect}: {n:,} logs, filled in {fill_s:.1f} s ({n / fill_s:,.0f} rows/s)")
    for line in figure_lines(figures):
        print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--windows", action="store_true", help="SQLite: also the listings of measure_windows"
    )
    args = parser.parse_args(argv)
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            url = URL.create("sqlite", database=str(Path(tmp) / "search.db"))
            seconds = fill(url, args.logs)
            _report("sqlite", args.logs, seconds, measure(url, args.repeat))
            if args.windows:
                for line in measure_windows(url, args.repeat):
                    print(f"  {line}")
    if args.only == "sqlite":
        return 0
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"sdbench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(PG_ADMIN).set(database=name)
        seconds = fill(url, args.logs)
        _report("postgresql", args.logs, seconds, measure(url, args.repeat))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
