"""Export files read back by DuckDB (a reader nobody here wrote): every row and every field
equals what the store holds, in the export's order, in each format, on both dialects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from swarm_director.cli.export_cmd import export_to_file
from swarm_director.db import Database
from swarm_director.db.actor import acting_as
from swarm_director.schemas.export import ITEMS, ExportFormat, ExportKind
from swarm_director.store import export, history, logs, tasks
from tests.export_reading import expected_rows, read_back
from tests.store.conftest import new_agent, new_task

T0 = datetime(2026, 11, 2, 9, 30, 0, 123456, tzinfo=UTC)
#: Text that CSV and JSON must carry exactly: separators, quotes, line breaks, backslashes,
#: non-ASCII, a control character and leading/trailing spaces.
TRICKY = [
    "plain",
    'a "quoted", comma-separated value',
    "two\nlines\r\nand a carriage return",
    "a lone\rcarriage return",
    "back\\slash \\n not a newline",
    "naïve café 日本語 🚀",
    "bell \x07 and tab \t",
    "  padded  ",
]


def build_swarm(db: Database) -> dict[str, int]:
    """Agents, tasks in several states, logs whose timestamps are out of id order, and the
    history all of it leaves."""
    with acting_as("builder"), db.transaction() as session:
        writer = new_agent(session, name="writer, the first")
        reviewer = new_agent(session, name="reviewer")
        parent = new_task(session, type="email_draft", title=TRICKY[1], user_id="user-1")
        child = new_task(
            session,
            title=TRICKY[2],
            description=TRICKY[4],
            parent_task_id=parent.id,
            assigned_agent_id=writer.id,
            priority="critical",
        )
        failing = new_task(session, type="analysis", title="doomed", description="")
        ids = {"parent": parent.id, "child": child.id, "failing": failing.id}
        ids |= {"writer": writer.id, "reviewer": reviewer.id}
    with acting_as("worker"), db.transaction() as session:
        tasks.update_task(session, ids["child"], {"status": "in_progress"})
        tasks.update_task(session, ids["failing"], {"status": "failed"})
    with db.transaction() as session:
        rows = []
        for n in range(40):
            # Timestamps go back and forth so that id order is not time order.
            stamp = T0 + timedelta(hours=(n * 7) % 40, microseconds=n % 3)
            meta: Any = [
                None,
                {"n": n, "nested": {"list": [1, 2.5, None, "x,y"]}, "ok": True},
                {"text": TRICKY[n % len(TRICKY)]},
                {},
            ][n % 4]
            rows.append(
                {
                    "agent_type": "draft_writer" if n % 2 else "reviewer",
                    "message": f"{TRICKY[n % len(TRICKY)]} #{n}",
                    "log_level": ["debug", "info", "warning", "error"][n % 4],
                    "timestamp": stamp.isoformat(),
                    "agent_id": ids["writer"] if n % 3 else None,
                    "session_id": f"s-{n % 5}" if n % 2 else None,
                    "metadata": meta,
                }
            )
        logs.add_logs(session, ids["parent"], rows[:25])
        logs.add_logs(session, ids["child"], rows[25:])
    return ids


def _item(kind: ExportKind) -> type[BaseModel]:
    return ITEMS[kind]


def all_rows(db: Database, kind: ExportKind) -> list[dict[str, Any]]:
    """Every row of ``kind`` as the store gives it (through the API item model), in the
    export's order: logs by (timestamp, id), the rest by id."""
    found: list[Any] = []
    cursor = None
    with db.read() as session:
        while True:
            if kind is ExportKind.LOGS:
                page: Any = logs.list_logs(session, order="asc", limit=1000, cursor=cursor)
            elif kind is ExportKind.TASKS:
                page = tasks.list_tasks(session, limit=1000, cursor=cursor)
            else:
                page = history.list_history(session, limit=1000, cursor=cursor)
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        return expected_rows(_item(kind), found)


def exported(
    db: Database, kind: ExportKind, fmt: ExportFormat, tmp_path: Path, **options: Any
) -> list[dict[str, Any]]:
    out = tmp_path / f"{kind}-{len(list(tmp_path.iterdir()))}.{fmt}"
    wanted = options.pop("filters", None)
    result = export_to_file(db, kind, fmt, out, wanted, **options)
    rows = read_back(out, fmt, export.export_fields(kind))
    assert result.rows == len(rows)
    assert result.bytes == out.stat().st_size
    return rows


@pytest.mark.parametrize("fmt", list(ExportFormat))
@pytest.mark.parametrize("kind", list(ExportKind))
def test_every_row_and_field_reads_back(
    db: Database, tmp_path: Path, kind: ExportKind, fmt: ExportFormat
) -> None:
    build_swarm(db)
    expected = all_rows(db, kind)
    assert len(expected) >= 3
    got = exported(db, kind, fmt, tmp_path)
    assert [row["id"] for row in got] == [row["id"] for row in expected]
    assert got == expected
    if kind is ExportKind.LOGS:  # the order is time order, not insertion order
        stamps = [(row["timestamp"], row["id"]) for row in got]
        assert stamps == sorted(stamps) and [r["id"] for r in got] != sorted(r["id"] for r in got)


def _matching(rows: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> list[Any]:
    return [row for row in rows if test(row)]


@pytest.mark.parametrize("fmt", [ExportFormat.JSONL, ExportFormat.CSV, ExportFormat.PARQUET])
def test_filters_and_the_time_window_choose_the_rows(
    db: Database, tmp_path: Path, fmt: ExportFormat
) -> None:
    ids = build_swarm(db)
    since, until = T0 + timedelta(hours=5), T0 + timedelta(hours=30)
    every_log = all_rows(db, ExportKind.LOGS)
    got = exported(
        db,
        ExportKind.LOGS,
        fmt,
        tmp_path,
        filters={"level": "warning", "since": since, "until": until, "task_id": ids["parent"]},
    )
    expected = _matching(
        every_log,
        lambda r: (
            r["log_level"] in ("warning", "error")
            and since <= r["timestamp"] < until
            and r["task_id"] == ids["parent"]
        ),
    )
    assert got == expected and 0 < len(expected) < len(every_log)

    got = exported(db, ExportKind.LOGS, fmt, tmp_path, filters={"q": "quoted"})
    assert got == _matching(every_log, lambda r: "quoted" in r["message"])

    every_task = all_rows(db, ExportKind.TASKS)
    got = exported(db, ExportKind.TASKS, fmt, tmp_path, filters={"status": "failed"})
    assert got == _matching(every_task, lambda r: r["status"] == "failed") and len(got) == 1
    assert got[0]["description"] == ""  # an empty text, not a null

    every_change = all_rows(db, ExportKind.HISTORY)
    wanted = {"entity": "task", "action": "update", "actor": "worker"}
    got = exported(db, ExportKind.HISTORY, fmt, tmp_path, filters=wanted)
    assert got == _matching(every_change, lambda r: all(r[k] == v for k, v in wanted.items()))
    assert len(got) == 2


@pytest.mark.parametrize("kind", list(ExportKind))
def test_a_cursor_resumes_after_the_row_it_names(
    db: Database, tmp_path: Path, kind: ExportKind
) -> None:
    build_swarm(db)
    every = all_rows(db, kind)
    middle = len(every) // 2
    got = exported(db, kind, ExportFormat.JSONL, tmp_path, cursor=every[middle]["id"])
    assert got == every[middle + 1 :]
    assert exported(db, kind, ExportFormat.CSV, tmp_path, cursor=every[-1]["id"]) == []


def test_rows_stored_while_an_export_is_read_are_not_in_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement, one snapshot: an export is what was stored when it began."""
    monkeypatch.setattr(export, "CHUNK_ROWS", 5)
    ids = build_swarm(db)
    before = len(all_rows(db, ExportKind.LOGS))
    with db.read() as session:
        prepared = export.prepare_export(session, ExportKind.LOGS)
        chunks = export.text_chunks(session.connection(), prepared, ExportFormat.JSONL)
        first = next(chunks)  # the statement is running
        assert first.rows == 5
        with db.transaction() as writer:
            logs.add_logs(writer, ids["parent"], [{"agent_type": "late", "message": "late"}])
        rows = first.rows + sum(chunk.rows for chunk in chunks)
    assert rows == before
    assert len(all_rows(db, ExportKind.LOGS)) == before + 1


#: Texts that CSV readers take for a null or a number unless told otherwise.
NULL_LIKE = ["NULL", "null", "NaN", "N/A", "#N/A", "nan", "-1.5e3", "true", "0"]


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_texts_that_look_like_nulls_or_numbers_stay_texts(
    db: Database, tmp_path: Path, fmt: ExportFormat
) -> None:
    """Parquet is parsed from the CSV text: a quoted text is a text whatever it reads like,
    and only an empty cell is a null."""
    ids = build_swarm(db)
    with db.transaction() as session:
        rows = [
            {
                "agent_type": text,
                "message": text,
                "session_id": text,
                "metadata": {"v": text},
                "timestamp": (T0 + timedelta(days=3, seconds=n)).isoformat(),
            }
            for n, text in enumerate(NULL_LIKE)
        ]
        logs.add_logs(session, ids["parent"], rows)
    got = exported(db, ExportKind.LOGS, fmt, tmp_path)
    assert got == all_rows(db, ExportKind.LOGS)
    tail = got[-len(NULL_LIKE) :]
    assert [r["message"] for r in tail] == [r["session_id"] for r in tail] == NULL_LIKE
    assert any(r["session_id"] is None for r in got) and any(r["metadata"] is None for r in got)


def test_parquet_columns_have_their_types(db: Database, tmp_path: Path) -> None:
    """Integers, texts, UTC timestamps and JSON documents, as DuckDB reads them."""
    import duckdb

    build_swarm(db)
    out = tmp_path / "logs.parquet"
    export_to_file(db, ExportKind.LOGS, ExportFormat.PARQUET, out)
    with duckdb.connect() as con:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{out}')").fetchall()
    assert {name: kind for name, kind, *_ in described} == {
        "id": "BIGINT",
        "task_id": "BIGINT",
        "agent_type": "VARCHAR",
        "message": "VARCHAR",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "log_level": "VARCHAR",
        "agent_id": "BIGINT",
        "session_id": "VARCHAR",
        "metadata": "JSON",
        "created_at": "TIMESTAMP WITH TIME ZONE",
    }
