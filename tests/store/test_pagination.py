"""Keyset pagination: every row exactly once, even while rows are inserted; bad input refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.orm import Session

from swarm_director.db import Database
from swarm_director.errors import ValidationError
from swarm_director.schemas.filters import LogFilter
from swarm_director.store import agents, logs, tasks
from swarm_director.store.pagination import MAX_LIMIT, Page
from tests.store.conftest import new_agent, new_task

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def ids_only(page: Page[Any]) -> Page[Any]:
    """The page with its rows reduced to ids (usable after the session is gone)."""
    return Page([SimpleNamespace(id=row.id) for row in page.items], page.next_cursor)


def walk(list_page: Any, limit: int, between: Any = None) -> list[int]:
    """Ids of every page's rows, following next_cursor; ``between`` runs after each page."""
    seen: list[int] = []
    cursor = None
    for _ in range(10_000):
        page = list_page(limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += [row.id for row in page.items]
        if page.next_cursor is None:
            return seen
        assert page.items, "a page with a next cursor has rows"
        cursor = page.next_cursor
        if between is not None:
            between()
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [1, 3, 10, 11, 1000])
def test_walk_returns_every_row_once(session: Session, limit: int) -> None:
    ids = [new_task(session).id for _ in range(10)]
    assert walk(lambda **kw: tasks.list_tasks(session, **kw), limit) == ids


def test_exact_multiple_of_limit_ends_without_empty_page(session: Session) -> None:
    for _ in range(4):
        new_task(session)
    first = tasks.list_tasks(session, limit=2)
    second = tasks.list_tasks(session, limit=2, cursor=first.next_cursor)
    assert len(second.items) == 2 and second.next_cursor is None


def test_tasks_inserted_between_pages_are_neither_repeated_nor_skipped(db: Database) -> None:
    with db.transaction() as s:
        original = [new_task(s).id for _ in range(12)]
    added: list[int] = []

    def insert_more() -> None:
        with db.transaction() as s:
            added.append(new_task(s).id)

    def page(**kw: Any) -> Any:
        with db.read() as s:
            return ids_only(tasks.list_tasks(s, **kw))

    seen = walk(page, 5, insert_more)
    assert len(seen) == len(set(seen))
    assert seen[: len(original)] == original
    assert set(seen) <= set(original) | set(added)


def test_logs_newest_first_with_ties_and_concurrent_inserts(db: Database) -> None:
    with db.transaction() as s:
        task_id = new_task(s).id
        # 20 rows sharing one timestamp (a batch without timestamps), 20 with their own.
        logs.add_logs(s, task_id, [{"agent_type": "w", "message": "tie"}] * 20)
        logs.add_logs(
            s,
            task_id,
            [
                {"agent_type": "w", "message": str(i), "timestamp": T0 + timedelta(seconds=i)}
                for i in range(20)
            ],
        )
        with_order = logs.list_logs(s, LogFilter(task_id=task_id), limit=1000).items
        expected = [row.id for row in with_order]
        sorted_keys = sorted(((r.timestamp, r.id) for r in with_order), reverse=True)
    assert [k[1] for k in sorted_keys] == expected

    def insert_newer_and_older() -> None:
        with db.transaction() as s:
            logs.add_logs(
                s,
                task_id,
                [
                    {
                        "agent_type": "w",
                        "message": "late",
                        "timestamp": datetime.now(UTC) + timedelta(days=1),
                    },
                    {"agent_type": "w", "message": "backfill", "timestamp": T0 - timedelta(days=1)},
                ],
            )

    def page(**kw: Any) -> Any:
        with db.read() as s:
            return ids_only(logs.list_logs(s, LogFilter(task_id=task_id), **kw))

    seen = walk(page, 7, insert_newer_and_older)
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert [i for i in seen if i in set(expected)] == expected, "a row was skipped or reordered"


def test_oldest_first_walk(session: Session) -> None:
    task = new_task(session)
    logs.add_logs(
        session,
        task.id,
        [
            {"agent_type": "w", "message": str(i), "timestamp": T0 - timedelta(seconds=i)}
            for i in range(9)
        ],
    )
    seen = walk(
        lambda **kw: logs.list_logs(session, LogFilter(task_id=task.id), order="asc", **kw), 4
    )
    messages = {
        row.id: row.message
        for row in logs.list_logs(session, LogFilter(task_id=task.id), limit=100).items
    }
    assert [messages[i] for i in seen] == [str(i) for i in reversed(range(9))]


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, True, 2.5, "10"])
def test_limit_out_of_range_is_refused(session: Session, limit: Any) -> None:
    with pytest.raises(ValidationError) as info:
        agents.list_agents(session, limit=limit)
    assert "limit" in info.value.details["fields"]


def _b64(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 !!",
        "AAAA",
        _b64({"a": 1}),
        _b64(["agents:asc"]),
        _b64(["agents:asc", "1"]),
        _b64(["agents:asc", True]),
        _b64(["agents:asc", 1, 2]),
        _b64(["tasks:asc", 1]),
        "x" * 600,
    ],
)
def test_invalid_cursor_is_refused(session: Session, cursor: str) -> None:
    with pytest.raises(ValidationError) as info:
        agents.list_agents(session, cursor=cursor)
    assert info.value.message == "invalid cursor"
    assert "cursor" in info.value.details["fields"]


@pytest.mark.parametrize(
    "payload",
    [
        ["logs:desc", "yesterday", 5],
        ["logs:desc", "2026-01-01T00:00:00", 5],
        ["logs:asc", "2026-01-01T00:00:00+00:00", 5],
    ],
)
def test_log_cursor_types_are_checked(session: Session, payload: list[Any]) -> None:
    with pytest.raises(ValidationError):
        logs.list_logs(session, cursor=_b64(payload))


def test_cursor_of_one_listing_is_refused_by_another(session: Session) -> None:
    new_agent(session)
    new_agent(session)
    for _ in range(2):
        new_task(session)
    agent_cursor = agents.list_agents(session, limit=1).next_cursor
    assert agent_cursor is not None
    with pytest.raises(ValidationError):
        tasks.list_tasks(session, cursor=agent_cursor)
    assert len(agents.list_agents(session, limit=1, cursor=agent_cursor).items) == 1


def test_prev_cursor_pages_back_the_other_way(db: Database) -> None:
    """A page asked for after a cursor offers ``prev_cursor``: the rows before its first row,
    in the other order, so a reader pages newer and older without counting."""
    with db.transaction() as session:
        for n in range(7):
            new_task(session, title=f"t{n}")
    with db.read() as session:
        first = tasks.list_tasks(session, order="desc", limit=3)
        assert first.prev_cursor is None  # the newest page has nothing before it
        second = tasks.list_tasks(session, order="desc", limit=3, cursor=first.next_cursor)
        assert second.prev_cursor is not None
        back = tasks.list_tasks(session, order="asc", limit=3, cursor=second.prev_cursor)
        assert [t.id for t in reversed(back.items)] == [t.id for t in first.items]
        with pytest.raises(ValidationError, match="invalid cursor"):
            tasks.list_tasks(session, order="desc", cursor=second.prev_cursor)
        with pytest.raises(ValidationError, match="invalid order"):
            tasks.list_tasks(session, order="sideways")  # type: ignore[arg-type]
