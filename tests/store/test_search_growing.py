"""PostgreSQL search on a partition growing faster than its statistics: a bounded plan.

Agents write while operators search. A partition's statistics are those of its last ANALYZE
(autovacuum's, when it runs at all): they do not know the rows and words written since. For a
word they do not know the planner guesses 0.5 % of rows; for a word in every fourth log it read
and sorted every hit for a page of 50, and the search's own index path gave up on the hits'
count first (docs/benchmarks.md, "Reads under live ingest"). The search must read about a
page's worth of rows whatever the statistics say.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from swarm_director.db import Database, utcnow
from swarm_director.models import AgentLog
from swarm_director.models.fulltext import LOGS
from swarm_director.store import logs, search
from swarm_director.store.pagination import Ordering, in_order
from swarm_director.store.search import parse_query, pg_match
from tests.store.conftest import new_task

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)

ROWS = 20_000
#: The hits a test table holds, scaled down as the table is from the issue's millions.
SORTED_HITS = 500
_SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _rows_read(connection: sa.Connection, statement: str, parameters: Any) -> int:
    """Rows of agent_logs' partitions the statement read (kept or filtered out), as
    EXPLAIN (ANALYZE) counts them."""
    explained = connection.exec_driver_sql(
        f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
    ).scalar_one()
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    return sum(
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        for node in _nodes(plan)
        if node["Node Type"] in _SCANS and node.get("Relation Name", "").startswith("agent_logs")
    )


def _statistics_know(connection: sa.Connection, word: str) -> bool:
    """Whether ``word`` is among the most common elements of agent_logs' full-text indexes'
    statistics (its partitions' indexes, the ones ANALYZE gathers them for)."""
    known = connection.execute(
        sa.text(
            "SELECT 1 FROM pg_stats, unnest(most_common_elems::text::text[]) AS elem "
            "WHERE elem = :word AND tablename IN (SELECT relname FROM pg_class WHERE oid IN ("
            "SELECT inhrelid FROM pg_inherits WHERE inhparent = 'ix_agent_logs_fts'::regclass))"
        ),
        {"word": word},
    )
    return known.first() is not None


def _record_selects(db: Database) -> Any:
    """A context recording the SELECT statements the engine runs (and their parameters)."""

    @contextmanager
    def recording() -> Iterator[list[tuple[str, Any]]]:
        statements: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if statement.lstrip().startswith(("SELECT", "WITH")):
                statements.append((statement, parameters))

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)

    return recording()


def _add_timed(session: Session, task_id: int, message: Callable[[int], str]) -> None:
    """ROWS logs of the task from now on, a millisecond apart, log ``i`` saying
    ``message(i)``."""
    now = utcnow()
    rows = [
        {
            "agent_type": "worker",
            "message": message(i),
            "timestamp": now + timedelta(milliseconds=i),
        }
        for i in range(ROWS)
    ]
    logs.add_logs(session, task_id, rows)


def _grow(session: Session) -> list[int]:
    """Statistics taken on a small table without the word, then the table grown twentyfold
    with the word in every fourth log: the newest 50 hits' ids, newest first."""
    task = new_task(session)
    now = utcnow()
    quiet = [{"agent_type": "worker", "message": f"ok {i}", "timestamp": now} for i in range(500)]
    logs.add_logs(session, task.id, quiet)
    # In the test's transaction: autovacuum sees none of the rows, so none of this is undone.
    session.execute(sa.text("ANALYZE agent_logs"))
    _add_timed(
        session, task.id, lambda i: f"{'request timeout' if i % 4 == 0 else 'request ok'} {i}"
    )
    newest = session.execute(
        sa.select(AgentLog.id)
        .where(AgentLog.message.startswith("request timeout"))
        .order_by(AgentLog.timestamp.desc(), AgentLog.id.desc())
        .limit(50)
    )
    return list(newest.scalars())


def test_a_common_word_the_statistics_do_not_know_is_paged_from_a_window_of_rows(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "PG_SORTED_HITS", SORTED_HITS)
    with db.transaction() as session:
        expected = _grow(session)
        connection = session.connection()
        query = parse_query("timeout")
        assert not _statistics_know(connection, "timeout")  # the statistics lag
        # The slow plan, reproduced: the planner's own page of hits reads every hit.
        planned = in_order(
            sa.select(*logs.log_columns()).where(pg_match(LOGS, query)),
            Ordering("logs", (AgentLog.timestamp, AgentLog.id), descending=True),
        ).limit(51)
        compiled = planned.compile(connection)
        assert _rows_read(connection, str(compiled), compiled.params) >= ROWS // 4

        with _record_selects(db) as statements:
            page = logs.list_logs(session, {"q": "timeout"}, limit=50)
        assert [row.id for row in page.items] == expected
        assert page.next_cursor is not None
        # The search's statements read a window of the newest rows and the page by id:
        # about the 200 rows that hold 50 hits, nowhere near the 5,000 hits.
        read = sum(_rows_read(connection, s, p) for s, p in statements)
        assert read <= search.PG_WINDOW_ROWS + 51
        # The next page continues from the cursor, as bounded.
        with _record_selects(db) as statements:
            following = logs.list_logs(session, {"q": "timeout"}, limit=50, cursor=page.next_cursor)
        assert all(row.message.startswith("request timeout") for row in following.items)
        assert following.items[0].id < expected[-1]
        assert sum(_rows_read(connection, s, p) for s, p in statements) <= (
            search.PG_WINDOW_ROWS + 51
        )


def test_a_word_in_one_recent_log_of_200_is_paged_exactly(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A word in one log of 200 (a new error code, say): the first window of 1,000 rows holds
    # about 5 hits, so the next is sized for 1.5 pages at that density.
    monkeypatch.setattr(search, "PG_SORTED_HITS", SORTED_HITS)
    with db.transaction() as session:
        task = new_task(session)
        _add_timed(session, task.id, lambda i: f"step {i}{' E4711' if i % 200 == 7 else ''}")
        page = logs.list_logs(session, {"q": "e4711"}, limit=50)
        assert [row.message for row in page.items] == [
            f"step {i} E4711" for i in range(ROWS - 1, -1, -1) if i % 200 == 7
        ][:50]
        assert page.next_cursor is not None
        rest = logs.list_logs(session, {"q": "E4711"}, limit=1000, cursor=page.next_cursor)
        assert len(page.items) + len(rest.items) == ROWS // 200


def _unbounded(session: Session, word: str) -> list[int]:
    """The ids of every log holding ``word``, newest first: what the pages must add up to."""
    return list(
        session.scalars(
            sa.select(AgentLog.id)
            .where(AgentLog.message.contains(word))
            .order_by(AgentLog.timestamp.desc(), AgentLog.id.desc())
        )
    )


def _pages(session: Session, word: str, limit: int) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        page = logs.list_logs(session, {"q": word}, limit=limit, cursor=cursor)
        ids += [row.id for row in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def test_a_rare_word_the_statistics_do_not_know_is_one_statement_through_the_index(
    db: Database,
) -> None:
    # A word in 60 of 20,000 logs, none among the newest: the first window holds no hit, and
    # the page comes from the GIN index in one statement (its round trips were six under
    # load: window, statistics, settings, keys, settings, rows), reading the hits and the
    # page, not the table.
    with db.transaction() as session:
        _grow(session)
        task = new_task(session)
        now = utcnow() - timedelta(days=1)
        rare = [
            {"agent_type": "worker", "message": f"zephyrine {i}", "timestamp": now}
            for i in range(60)
        ]
        logs.add_logs(session, task.id, rare)
        connection = session.connection()
        assert not _statistics_know(connection, "zephyrine")
        with _record_selects(db) as statements:
            page = logs.list_logs(session, {"q": "zephyrine"}, limit=50)
        assert len(statements) == 2  # the window, then the index
        assert [row.id for row in page.items] == _unbounded(session, "zephyrine")[:50]
        assert sum(_rows_read(connection, s, p) for s, p in statements) <= (
            search.PG_WINDOW_ROWS + 2 * 60 + 51
        )
        assert _pages(session, "zephyrine", 7) == _unbounded(session, "zephyrine")


def test_a_second_window_is_not_read_when_it_would_likely_not_hold_the_page(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two hits among the newest 250 rows, one in 500 after: the largest window (8,000 rows)
    # holds about 16 more, not a page of 51, so the search goes to the index at once. (It read
    # the 8,000 rows in vain first: "timeout" with a new word under live ingest, p95 100-190 ms.)
    monkeypatch.setattr(search, "PG_WINDOW_ROWS", 250)
    monkeypatch.setattr(search, "PG_WINDOW_MOST_ROWS", 8000)
    with db.transaction() as session:
        task = new_task(session)
        hits = {*range(0, ROWS, 500), 19_900, 19_950}
        _add_timed(session, task.id, lambda i: f"step {i}{' e4711' if i in hits else ''}")
        connection = session.connection()
        with _record_selects(db) as statements:
            page = logs.list_logs(session, {"q": "e4711"}, limit=50)
        assert [row.id for row in page.items] == _unbounded(session, "e4711")[:50]
        assert sum(_rows_read(connection, s, p) for s, p in statements) < 1000
