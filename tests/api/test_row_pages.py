"""Log pages are written straight from the rows (api/row_pages.py): the JSON must be exactly
what the LogPage model gives for the same rows, whatever the rows hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask

from swarm_director.api.common import page_response
from swarm_director.api.row_pages import RowPageWriter
from swarm_director.db import Database
from swarm_director.schemas import LogOut, LogPage
from swarm_director.schemas.filters import LogFilter
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
        empty = logs.list_logs(connection, LogFilter(task_id=task.id + 1))
        assert writer.response(empty.items, None).get_data() == (
            page_response(LogPage, empty.items, None).get_data()
        )
