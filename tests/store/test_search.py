"""Full-text search in the store: words and phrases, every filter, pages, exact after deletes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.errors import ValidationError
from swarm_director.models import AgentLog
from swarm_director.ops.checks.db_check import run_check
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy
from swarm_director.schemas.common import MAX_SEARCH_CHARS
from swarm_director.store import conversations, logs, search, search_pages, tasks
from swarm_director.store.search import MAX_SEARCH_WORDS, parse_query
from tests.store.conftest import new_agent, new_task

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _log_ids(source: Session | sa.Connection, **filters: Any) -> list[int]:
    return [row.id for row in logs.list_logs(source, filters, order="asc", limit=1000).items]


def _add(session: Session, task_id: int, *messages: str, **fields: Any) -> None:
    rows = [
        {"agent_type": "worker", "message": m, "timestamp": T0 + timedelta(seconds=i), **fields}
        for i, m in enumerate(messages)
    ]
    logs.add_logs(session, task_id, rows)


def _messages(session: Session, task_id: int, q: str) -> list[str]:
    page = logs.list_logs(session, {"task_id": task_id, "q": q}, order="asc", limit=1000)
    return [row.message for row in page.items]


def test_words_must_all_match_in_any_order_and_case(session: Session) -> None:
    task = new_task(session)
    _add(session, task.id, "Disk FULL on db-1", "disk ok", "full moon", "the disk is full")
    assert _messages(session, task.id, "disk") == [
        "Disk FULL on db-1",
        "disk ok",
        "the disk is full",
    ]
    assert _messages(session, task.id, "full DISK") == ["Disk FULL on db-1", "the disk is full"]
    assert _messages(session, task.id, "nothing") == []


def test_quoted_phrase_needs_the_words_adjacent_and_in_order(session: Session) -> None:
    task = new_task(session)
    _add(session, task.id, "disk full", "full disk", "disk is full")
    assert _messages(session, task.id, '"disk full"') == ["disk full"]
    assert _messages(session, task.id, '"full disk" disk') == ["full disk"]


def test_punctuation_splits_words_as_in_the_index(session: Session) -> None:
    # Hosts, versions, paths and snake_case are searchable by their parts on both dialects.
    task = new_task(session)
    _add(session, task.id, "connect db.example.com:5432", "upgrade to 1.5.2", "run_job failed")
    assert _messages(session, task.id, "example") == ["connect db.example.com:5432"]
    assert _messages(session, task.id, "db.example.com") == ["connect db.example.com:5432"]
    assert _messages(session, task.id, "5432") == ["connect db.example.com:5432"]
    assert _messages(session, task.id, '"1.5.2"') == ["upgrade to 1.5.2"]
    assert _messages(session, task.id, "job") == ["run_job failed"]
    assert _messages(session, task.id, "run_job") == ["run_job failed"]


def test_unicode_words(session: Session) -> None:
    task = new_task(session)
    _add(session, task.id, "Café crème", "ÉCOLE fermée", "東京都 に 出張", "cafe")
    assert _messages(session, task.id, "café") == ["Café crème"]  # accents are kept
    assert _messages(session, task.id, "école") == ["ÉCOLE fermée"]  # case folds
    assert _messages(session, task.id, "東京都") == ["東京都 に 出張"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AND OR (", ["AND OR ( NOT"]),  # operators are plain words
        ("NEAR(a b)", ["NEAR(a b)"]),
        ("col:term", ["col:term"]),
        ("message:term", []),  # not a column filter: the words "message term" adjacent
        ("term*", ["col:term"]),  # no prefix search: the star is punctuation
        ('"unclosed phrase', ["an unclosed phrase"]),
        ('say "', ["they say"]),
    ],
)
def test_engine_syntax_is_taken_as_plain_words(
    session: Session, text: str, expected: list[str]
) -> None:
    task = new_task(session)
    _add(
        session, task.id, "AND OR ( NOT", "NEAR(a b)", "col:term", "an unclosed phrase", "they say"
    )
    assert _messages(session, task.id, text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no word"),
        ("   ", "no word"),
        ('"', "no word"),
        ("* ( ) : ^ - +", "no word"),
        ("x" * (MAX_SEARCH_CHARS + 1), f"at most {MAX_SEARCH_CHARS} characters"),
        (" ".join(["w"] * (MAX_SEARCH_WORDS + 1)), f"at most {MAX_SEARCH_WORDS} words"),
        ("a\x00b", "NUL"),
    ],
)
def test_query_without_words_or_too_long_is_refused(
    session: Session, text: str, problem: str
) -> None:
    task = new_task(session)
    _add(session, task.id, "a b w x")
    with pytest.raises(ValidationError) as info:
        logs.list_logs(session, {"q": text})
    assert problem in info.value.details["fields"]["q"]
    assert problem in info.value.message


def test_parse_query_keeps_phrases_and_drops_repeats() -> None:
    assert parse_query('a "b c" a x-y').phrases == (("a",), ("b", "c"), ("x", "y"))


def test_search_combines_with_every_log_filter(session: Session) -> None:
    one, two = new_task(session), new_task(session)
    agent = new_agent(session)
    common = {"agent_type": "worker", "message": "timeout talking to api"}
    logs.add_logs(
        session,
        one.id,
        [
            {**common, "timestamp": T0, "log_level": "error", "agent_id": agent.id},
            {**common, "timestamp": T0 + timedelta(hours=1), "session_id": "s-1"},
            {**common, "timestamp": T0 + timedelta(hours=2), "agent_type": "director"},
            {"agent_type": "worker", "message": "all fine", "log_level": "error"},
        ],
    )
    _add(session, two.id, "timeout again")
    ids = _log_ids(session, task_id=one.id, q="timeout")
    assert len(ids) == 3
    assert sorted(_log_ids(session, q="timeout")) == sorted(ids + _log_ids(session, task_id=two.id))
    assert _log_ids(session, q="timeout", level="error") == ids[:1]
    assert _log_ids(session, q="timeout", agent_id=agent.id) == ids[:1]
    assert _log_ids(session, q="timeout", session_id="s-1") == ids[1:2]
    assert _log_ids(session, q="timeout", agent_type="director") == ids[2:]
    window = {"since": T0 + timedelta(minutes=30), "until": T0 + timedelta(hours=2)}
    assert _log_ids(session, task_id=one.id, q="timeout", **window) == ids[1:2]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize(
    ("sorted_hits", "windows"),
    [(5000, False), (3, False), (5000, True)],
    ids=["few-hits-plan", "many-hits-plan", "pg-window-plan"],
)
def test_pages_of_a_search_hold_every_hit_once(
    session: Session,
    order: str,
    sorted_hits: int,
    windows: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Up to *_SORTED_HITS hits are read by id, more by walking the ordered index; PostgreSQL
    # looks in windows of the listing first (small ones here: 4 rows, then at most 16).
    monkeypatch.setattr(search, "SQLITE_SORTED_HITS", sorted_hits)
    monkeypatch.setattr(search, "PG_SORTED_HITS", sorted_hits)
    if windows:
        monkeypatch.setattr(search, "PG_WINDOW_ROWS", 4)
        monkeypatch.setattr(search, "PG_WINDOW_MOST_ROWS", 16)
    else:
        monkeypatch.setattr(search_pages, "_pg_windowed", lambda *_args: None)
    task = new_task(session)
    # Equal timestamps in runs, so the pages must use the id to break ties.
    rows = [
        {
            "agent_type": "worker",
            "message": f"{'needle' if i % 3 == 0 else 'hay'} {i}",
            "timestamp": T0 + timedelta(seconds=i // 4),
        }
        for i in range(60)
    ]
    logs.add_logs(session, task.id, rows)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = logs.list_logs(session, {"q": "needle"}, order=order, limit=6, cursor=cursor)  # type: ignore[arg-type]
        seen += [row.message for row in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = [f"needle {i}" for i in range(0, 60, 3)]
    assert pages == 4
    assert seen == (expected if order == "asc" else expected[::-1])


def _all_pages(list_page: Any) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        page = list_page(cursor)
        ids += [row.id for row in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize(
    "filters",
    [{}, {"task_id": 0}, {"level": "warning"}],
    ids=["all-logs", "one-task", "warnings"],
)
def test_windowed_pages_of_a_common_word_are_exact_when_ids_do_not_follow_time(
    session: Session, order: str, filters: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many hits on SQLite are read window by window (store/search_pages.py); small windows
    # here, so that pages need several, some windows hold no hit, and some are given up.
    monkeypatch.setattr(search, "SQLITE_SORTED_HITS", 3)
    monkeypatch.setattr(search_pages, "WINDOW_ROWS", 4)
    monkeypatch.setattr(search_pages, "WINDOW_GROWTH_LEAST", 2)
    monkeypatch.setattr(search_pages, "WINDOW_GROWTH_MOST", 2)
    # PostgreSQL's windows of the listing: as small, so that they grow and give up too.
    monkeypatch.setattr(search, "PG_WINDOW_ROWS", 4)
    monkeypatch.setattr(search, "PG_WINDOW_MOST_ROWS", 16)
    if filters:  # a filtered listing's windows span many ids; keep them all the same
        monkeypatch.setattr(search_pages, "WINDOW_SPAN_SHARE", 1.0)
    windows: list[bool] = []
    windowed = search_pages._windowed

    def counted(*args: Any) -> Any:
        page = windowed(*args)
        windows.append(page is not None)
        return page

    monkeypatch.setattr(search_pages, "_windowed", counted)
    rng = random.Random(7)
    one, two = new_task(session), new_task(session)
    for i in range(240):
        shapes = (i, i - i % 2, 240 - i, 37)
        word = "timeout" if rng.random() < (0.5 if i % 60 < 30 else 0.02) else "ok"
        row = {
            "agent_type": "worker",
            # dense runs and empty stretches of the word
            "message": f"{word} {i}",
            # ids follow time mostly: pairs of equal timestamps (ties), some jumps back
            "timestamp": T0 + timedelta(seconds=rng.choices(shapes, weights=(6, 3, 1, 1))[0]),
            "log_level": rng.choice(["info", "warning", "error"]),
        }
        logs.add_logs(session, one.id if i % 3 else two.id, [row])  # ids in this order
    stored = logs.list_logs(session, order="asc", limit=1000).items
    wanted = {"level": filters.get("level"), "q": "timeout"}
    if "task_id" in filters:
        wanted["task_id"] = two.id
    levels = {"warning", "error"} if wanted["level"] else {"info", "warning", "error"}
    expected = [
        row.id
        for row in stored
        if row.message.startswith("timeout ")
        and row.log_level.value in levels
        and wanted.get("task_id", row.task_id) == row.task_id
    ]
    if order == "desc":
        expected.reverse()
    found = _all_pages(
        lambda cursor: logs.list_logs(
            session,
            wanted,
            order=order,  # type: ignore[arg-type]
            limit=5,
            cursor=cursor,
        )
    )
    assert found == expected
    if session.get_bind().dialect.name == "sqlite":
        assert True in windows  # pages came from windows
        assert False in windows  # and some from the list of all hits (windows given up)


def test_tasks_are_searched_by_title_and_description_with_their_filters(
    session: Session,
) -> None:
    a = new_task(session, title="Quarterly report", description="numbers for the board")
    b = new_task(session, title="Board meeting", priority="high")
    c = new_task(session, title="Lunch", description=None)
    new_task(session, title="Report card", parent_task_id=c.id)

    def found(**filters: Any) -> list[int]:
        return [t.id for t in tasks.list_tasks(session, filters, limit=1000).items]

    assert found(q="board") == [a.id, b.id]
    assert found(q="board", priority="high") == [b.id]
    assert found(q="report", parent_task_id=c.id) != found(q="report")
    assert found(q='"board meeting"') == [b.id]
    tasks.update_task(session, b.id, {"title": "Standup"})
    assert found(q="board") == [a.id]  # the update re-indexed the title
    assert found(q="standup") == [b.id]
    first = tasks.list_tasks(session, {"q": "report"}, limit=1)
    second = tasks.list_tasks(session, {"q": "report"}, limit=1, cursor=first.next_cursor)
    assert [t.title for t in first.items + second.items] == ["Quarterly report", "Report card"]
    assert second.next_cursor is None


def test_messages_are_searched_within_their_conversation_and_thread(session: Session) -> None:
    agent = new_agent(session)
    conv = conversations.create_conversation(session, {"title": "c"})
    other = conversations.create_conversation(session, {"title": "d"})
    for c in (conv, other):
        conversations.add_participant(session, c.id, agent.id)
    m1 = conversations.add_message(
        session, conv.id, {"content": "ship the release", "sender_agent_id": agent.id}
    )
    conversations.add_message(
        session,
        conv.id,
        {"content": "release notes", "sender_agent_id": agent.id, "thread_id": "t"},
    )
    conversations.add_message(
        session, other.id, {"content": "release party", "sender_agent_id": agent.id}
    )

    def found(conversation_id: int, **filters: Any) -> list[str]:
        page = conversations.list_messages(session, conversation_id, filters)
        return [m.content for m in page.items]

    assert found(conv.id, q="release") == ["ship the release", "release notes"]
    assert found(conv.id, q="release", thread_id="t") == ["release notes"]
    assert found(other.id, q="release") == ["release party"]
    conversations.edit_message(session, m1.id, {"content": "ship it"})
    assert found(conv.id, q="release") == ["release notes"]
    assert found(conv.id, q="ship") == ["ship it"]


def test_index_stays_exact_after_delete_cascade_and_retention(db: Database) -> None:
    with db.transaction() as session:
        keep, gone = new_task(session), new_task(session, title="doomed")
        sub = new_task(session, parent_task_id=gone.id)
        _add(session, keep.id, "needle old", "needle new")
        ancient = {"agent_type": "worker", "timestamp": T0 - timedelta(days=90)}
        logs.add_logs(session, keep.id, [{**ancient, "message": "needle ancient"}])
        _add(session, sub.id, "needle in a subtask")
        agent = new_agent(session)
        conv = conversations.create_conversation(session, {"title": "c"})
        conversations.add_participant(session, conv.id, agent.id)
        conversations.add_message(
            session, conv.id, {"content": "needle", "sender_agent_id": agent.id}
        )
    with db.transaction() as session:
        tasks.delete_task(session, gone.id)  # cascades to the subtask and its logs
        session.execute(sa.delete(AgentLog).where(AgentLog.message == "needle old"))
        conversations.delete_conversation(session, conv.id)
    report = cleanup_logs(db.engine, RetentionPolicy(older_than=timedelta(days=30)), now=T0)
    assert report.deleted == 1
    with db.transaction() as session:
        assert _messages(session, keep.id, "needle") == ["needle new"]
        assert _log_ids(session, q="subtask") == []
        assert [t.id for t in tasks.list_tasks(session, {"q": "doomed"}).items] == []
        assert conversations.list_conversations(session).items == []
        _add(session, keep.id, "needle newest")
        assert sorted(_messages(session, keep.id, "needle")) == ["needle new", "needle newest"]
    assert [p for p in run_check(db.engine).problems if p.rule == "search_index"] == []


def test_a_word_the_statistics_know_as_common_is_searched_alike(db: Database) -> None:
    # PostgreSQL: a word among the index's most common elements takes the planner's plan.
    with db.transaction() as session:
        task = new_task(session)
        _add(session, task.id, *(f"common {'rare' if i == 7 else 'x'} {i}" for i in range(300)))
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE agent_logs"))
            conn.commit()
            elems = conn.execute(
                sa.text(
                    # agent_logs is partitioned: the statistics are its partitions' indexes'.
                    "SELECT string_agg(most_common_elems::text, ' ') FROM pg_stats "
                    "WHERE tablename IN (SELECT relname FROM pg_class WHERE oid IN ("
                    "SELECT inhrelid FROM pg_inherits "
                    "WHERE inhparent = to_regclass('ix_agent_logs_fts')))"
                )
            ).scalar()
        assert elems is not None and "common" in elems
    with db.engine.connect() as conn:
        assert len(_log_ids(conn, q="common")) == 300
        assert [r.message for r in logs.list_logs(conn, {"q": "common rare"}).items] == [
            "common rare 7"
        ]


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # PostgreSQL planner settings
def test_a_rare_word_is_fetched_without_parallel_workers_or_jit_and_the_settings_come_back(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL guesses thousands of hits for a word its statistics do not know, and for
    # that guess started parallel workers and compiled the query (JIT): 34 ms of a 3 ms search
    # at 10 M logs. The hits' statement runs with both off; the connection keeps its own.
    # (The newest 4 logs hold no hit: the search leaves its first window for the index.)
    monkeypatch.setattr(search, "PG_WINDOW_ROWS", 4)
    with db.transaction() as session:
        task = new_task(session)
        _add(session, task.id, *(f"entry {i} {'needle' if i % 7 == 0 else ''}" for i in range(40)))
    settings = "SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather')"
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.statement_reads() as conn:  # autocommit: set, then reset
            before = conn.execute(sa.text(settings)).one()
            statements.clear()
            assert len(logs.list_logs(conn, {"q": "needle"}, limit=50).items) == 6
            assert conn.execute(sa.text(settings)).one() == before
        hits = next(i for i, s in enumerate(statements) if s.startswith("WITH search_keys"))
        assert statements[hits - 1] == "SET max_parallel_workers_per_gather = 0; SET jit = off"
        assert statements[hits + 1] == "RESET max_parallel_workers_per_gather; RESET jit"
        with db.read() as session:  # a transaction: SET LOCAL, gone at its end
            statements.clear()
            assert len(logs.list_logs(session, {"q": "needle"}, limit=50).items) == 6
            assert (
                "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off" in statements
            )
        with db.engine.connect() as conn:
            assert conn.execute(sa.text(settings)).one() == before
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


# PostgreSQL's search reads a window, then the index
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_row_deleted_between_the_window_and_the_index_does_not_end_the_pages(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL looks for a rare word's page in a window of the newest rows, then reads it
    # through the index, each statement its own snapshot on an autocommit connection: a row
    # deleted in between must not cut the pages short. (The index's keys and the page's rows
    # are one statement, one snapshot.)
    monkeypatch.setattr(search, "PG_WINDOW_ROWS", 2)
    with db.transaction() as session:
        task = new_task(session)
        _add(session, task.id, *(f"needle {i}" for i in range(12)), "hay", "hay")
    deleted: list[int] = []

    def delete_newest_needle_once(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if deleted or "search_window" not in statement:
            return
        with db.transaction() as other:
            needles = sa.select(sa.func.max(AgentLog.id)).where(AgentLog.message.like("needle%"))
            newest = other.execute(needles).scalar_one()
            other.execute(sa.delete(AgentLog).where(AgentLog.id == newest))
        deleted.append(newest)

    sa.event.listen(db.engine, "after_cursor_execute", delete_newest_needle_once)
    try:
        with db.statement_reads() as conn:
            first = logs.list_logs(conn, {"q": "needle"}, limit=5)
            rest = logs.list_logs(conn, {"q": "needle"}, limit=50, cursor=first.next_cursor)
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", delete_newest_needle_once)
    assert deleted
    messages = [row.message for row in first.items + rest.items]
    assert messages == [f"needle {i}" for i in range(10, -1, -1)]  # 11 left, newest first
