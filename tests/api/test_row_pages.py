"""Log and task pages are written straight from the rows (api/row_pages.py): the JSON must be
exactly what the LogPage and TaskPage models give for the same rows, whatever the rows hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask

from swarm_director.api.common import page_response
from swarm_director.api.row_pages import RowPageWriter
from swarm_director.db import Database
from swarm_director.models import Task, TaskPriority, TaskStatus, TaskType
from swarm_director.schemas import LogOut, LogPage, TaskOut, TaskPage
from swarm_director.schemas.filters import LogFilter, TaskFilter
from swarm_director.store import logs, tasks

T0 = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_a_log_page_written_from_rows_is_the_models_json(db: Database) -> None:
    with db.transaction() as session:
        task = tasks.create_task(session, {"type": "analysis", "title": "t"})
        logs.add_logs(
            session,
            task.id,
            [
                # a whole second (no fraction), no metadata, no agent or session
                {"agent_type": "worker", "message": "plain", "timestamp": T0},
                {
                    "agent_type": "director",
                    "message": 'ünïcode "quoted" \\ and\nnewline ✓',
                    "timestamp": T0 + timedelta(microseconds=5),
                    "log_level": "error",
                    "session_id": "s-1",
                    "metadata": {"nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}},
                },
                {
                    "agent_type": "worker",
                    "message": "big numbers",
                    "timestamp": T0 + timedelta(days=400, microseconds=999_999),
                    "metadata": {"n": 2**53 + 1, "f": -0.0, "s": ""},
                },
            ],
        )
    writer = RowPageWriter(LogOut)
    with Flask(__name__).app_context(), db.statement_reads() as connection:
        for limit in (3, 2):  # the last page, and one with a next cursor
            page = logs.list_logs(connection, LogFilter(task_id=task.id), limit=limit)
            expected = page_response(LogPage, page.items, page.next_cursor).get_data()
            got = writer.response(page.items, page.next_cursor)
            assert got.status_code == 200 and got.mimetype == "application/json"
            assert got.get_data() == expected
            # A live tail's events: each row's JSON on its own, as the model writes it.
            assert writer.each_json(page.items) == [
                LogOut.model_validate(row).model_dump_json(by_alias=True) for row in page.items
            ]
        empty = logs.list_logs(connection, LogFilter(task_id=task.id + 1))
        assert writer.response(empty.items, None).get_data() == (
            page_response(LogPage, empty.items, None).get_data()
        )


def test_a_task_page_written_from_rows_is_the_models_json(db: Database) -> None:
    with db.transaction() as session:
        parent = tasks.create_task(session, {"type": "analysis", "title": "parent"})
        session.add_all(
            [
                # every optional field empty
                Task(type=TaskType.EMAIL_DRAFT, title="bare", status=TaskStatus.PENDING),
                # every field set: the queue's times, an error, a result document
                Task(
                    type=TaskType.DOCUMENT_REVIEW,
                    title='ünïcode "quoted" \\ and\nnewline ✓',
                    description="",
                    user_id="u-1",
                    status=TaskStatus.COMPLETED,
                    priority=TaskPriority.HIGH,
                    parent_task_id=parent.id,
                    completed_at=T0 + timedelta(microseconds=5),
                    attempts=2,
                    max_attempts=7,
                    not_before=T0,
                    claimed_at=T0 - timedelta(days=400, microseconds=999_999),
                    lease_expires_at=T0 + timedelta(minutes=5),
                    last_error="boom",
                    result={"nested": {"list": [1, 2.5, None, True, "x"]}, "n": 2**53 + 1},
                ),
            ]
        )
    with db.transaction() as session:
        # The ORM objects, as the page used to be built from them.
        orm_tasks = session.query(Task).order_by(Task.id).all()
        expected_all = page_response(TaskPage, orm_tasks, None).get_data()
    writer = RowPageWriter(TaskOut)
    with Flask(__name__).app_context(), db.statement_reads() as connection:
        page = tasks.list_tasks(connection)
        assert len(page.items) == 3
        assert writer.response(page.items, None).get_data() == expected_all
        for limit in (2, 1):  # with a next cursor
            page = tasks.list_tasks(connection, TaskFilter(), order="desc", limit=limit)
            expected = page_response(TaskPage, page.items, page.next_cursor).get_data()
            assert writer.response(page.items, page.next_cursor).get_data() == expected
