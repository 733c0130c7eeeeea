"""An export read by several worker processes (``--jobs``) is, byte for byte, the export one
process reads, from one snapshot however the writers commit meanwhile, and a worker that fails
fails the export."""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from swarm_director.db import Database, make_engine
from swarm_director.models import AgentLog
from swarm_director.schemas.export import ExportFormat, ExportKind
from swarm_director.store import export, export_parallel, logs
from tests.store.conftest import new_task
from tests.store.test_export import T0, all_rows, build_swarm

TEXT = [ExportFormat.JSONL, ExportFormat.CSV]


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments of 3 rows: a few dozen rows make many segments, each worker several."""
    monkeypatch.setattr(export_parallel, "SEGMENT_ROWS", 3)


def one_process(db: Database, kind: ExportKind, fmt: ExportFormat, **options: Any) -> bytes:
    with db.read() as session:
        prepared = export.prepare_export(session, kind, options.get("filters"), **_cursor(options))
        chunks = export.text_chunks(session.connection(), prepared, fmt)
        return b"".join(chunk.data for chunk in chunks)


def _cursor(options: dict[str, Any]) -> dict[str, Any]:
    return {"cursor": options["cursor"]} if "cursor" in options else {}


def workers(
    db: Database, kind: ExportKind, fmt: ExportFormat, jobs: int, **options: Any
) -> tuple[bytes, int]:
    """The export read by ``jobs`` workers: its text and the rows the chunks said they hold."""
    with db.read() as session:
        prepared = export.prepare_export(session, kind, options.get("filters"), **_cursor(options))
    chunks = list(export_parallel.parallel_chunks(db.engine, prepared, fmt, jobs))
    return b"".join(chunk.data for chunk in chunks), sum(chunk.rows for chunk in chunks)


def add_ties(db: Database, task_id: int, count: int = 10) -> None:
    """Logs sharing one timestamp (segments cut between them, by id), and more tasks."""
    with db.transaction() as session:
        for n in range(count):
            new_task(session, title=f"more {n}")
        rows = [
            {"agent_type": "tie", "message": f"tie {n}", "timestamp": T0.isoformat()}
            for n in range(count)
        ]
        logs.add_logs(session, task_id, rows)


@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("fmt", TEXT)
@pytest.mark.parametrize("kind", list(ExportKind))
def test_the_workers_write_what_one_process_writes(
    db: Database, kind: ExportKind, fmt: ExportFormat, jobs: int
) -> None:
    ids = build_swarm(db)
    add_ties(db, ids["child"])
    expected = one_process(db, kind, fmt)
    data, rows = workers(db, kind, fmt, jobs)
    assert data == expected
    assert rows == len(all_rows(db, kind)) > 3 * jobs  # several segments a worker


@pytest.mark.parametrize("fmt", TEXT)
def test_filters_a_cursor_and_an_empty_export(db: Database, fmt: ExportFormat) -> None:
    ids = build_swarm(db)
    add_ties(db, ids["parent"])
    wanted = {"task_id": ids["parent"], "level": "info", "since": T0 + timedelta(hours=2)}
    expected = one_process(db, ExportKind.LOGS, fmt, filters=wanted)
    assert workers(db, ExportKind.LOGS, fmt, 2, filters=wanted)[0] == expected
    assert expected.count(b"\n") > 6

    middle = all_rows(db, ExportKind.LOGS)[20]["id"]
    expected = one_process(db, ExportKind.LOGS, fmt, cursor=middle)
    assert workers(db, ExportKind.LOGS, fmt, 2, cursor=middle)[0] == expected

    nothing = {"agent_type": "nobody"}
    header = (",".join(f.name for f in export.export_fields(ExportKind.LOGS)) + "\n").encode()
    assert workers(db, ExportKind.LOGS, fmt, 2, filters=nothing) == (
        (header if fmt is ExportFormat.CSV else b""),
        0,
    )


def _log_count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(AgentLog)) or 0)


def test_commits_while_the_workers_start_and_read_are_in_none_of_them(
    db: Database, db_url: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first worker, once in its transaction, has a log committed in the middle of the
    export's order; the second starts its transaction only after that. Without one snapshot
    for both, the second would see the log: its cuts would move, rows would be lost or
    repeated. On SQLite the commit must wait for the workers instead (the parent holds the
    write lock), so it gives up; on PostgreSQL it commits, and no worker sees it."""
    ids = build_swarm(db)
    expected = one_process(db, ExportKind.LOGS, ExportFormat.JSONL)
    before = _log_count(db)
    marker = tmp_path / "first worker's commit"
    url = db_url.render_as_string(hide_password=False)
    begin = export_parallel._begin

    def begin_in_turn(driver: Any, dialect: str, token: str | None) -> None:
        if multiprocessing.current_process().name.endswith(" 1/2"):
            begin(driver, dialect, token)
            late = Database(make_engine(url, busy_timeout_s=0.3))
            try:
                with late.transaction() as session:
                    stamp = (T0 + timedelta(hours=20, seconds=1)).isoformat()
                    row = {"agent_type": "late", "message": "late", "timestamp": stamp}
                    logs.add_logs(session, ids["child"], [row])
                marker.write_text("committed")
            except Exception as error:  # SQLite: the lock is held
                marker.write_text(f"refused: {error}")
            finally:
                late.dispose()
            return
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        begin(driver, dialect, token)

    monkeypatch.setattr(export_parallel, "_begin", begin_in_turn)
    with db.read() as session:
        prepared = export.prepare_export(session, ExportKind.LOGS)
    chunks = export_parallel.parallel_chunks(db.engine, prepared, ExportFormat.JSONL, 2)
    first = next(chunks)
    with db.transaction() as session:  # the workers are reading: a commit now is not seen
        logs.add_logs(session, ids["parent"], [{"agent_type": "later", "message": "later"}])
    data = first.data + b"".join(chunk.data for chunk in chunks)

    assert data == expected
    told = marker.read_text()
    if db.dialect == "sqlite":
        assert told.startswith("refused:") and "locked" in told
        assert _log_count(db) == before + 1
    else:
        assert told == "committed"
        assert _log_count(db) == before + 2


def test_a_failing_worker_fails_the_export(
    db: Database, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    build_swarm(db)
    with db.read() as session:
        prepared = export.prepare_export(session, ExportKind.LOGS)

    def broken(*_args: Any) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(export_parallel, "_lines", broken)
    chunks = export_parallel.parallel_chunks(db.engine, prepared, ExportFormat.CSV, 2)
    with pytest.raises(export_parallel.ParallelExportError, match="RuntimeError: the disk is"):
        list(chunks)
    assert "Traceback" not in capfd.readouterr().err  # the error is told once, by the command

    monkeypatch.setattr(export_parallel, "_lines", lambda *_args: os._exit(3))
    chunks = export_parallel.parallel_chunks(db.engine, prepared, ExportFormat.JSONL, 2)
    with pytest.raises(export_parallel.ParallelExportError, match="stopped before the export"):
        list(chunks)
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("fmt", TEXT)
def test_a_segment_longer_than_a_worker_holds_comes_in_pieces(
    db: Database, monkeypatch: pytest.MonkeyPatch, fmt: ExportFormat
) -> None:
    """Very long rows: a worker hands a segment on in pieces (the memory it holds is bounded),
    and the text is still the one-process export's."""
    monkeypatch.setattr(export_parallel, "SEGMENT_ROWS", 8)
    monkeypatch.setattr(export_parallel, "PIECE_ROWS", 2)
    monkeypatch.setattr(export_parallel, "PIECE_BYTES", 300)
    monkeypatch.setattr(export_parallel, "HELD_BYTES", 300)
    build_swarm(db)
    expected = one_process(db, ExportKind.LOGS, fmt)
    with db.read() as session:
        prepared = export.prepare_export(session, ExportKind.LOGS)
    chunks = list(export_parallel.parallel_chunks(db.engine, prepared, fmt, 2))
    assert b"".join(chunk.data for chunk in chunks) == expected
    segments = -(-len(all_rows(db, ExportKind.LOGS)) // 8)
    assert len([c for c in chunks if c.rows]) > segments  # segments in more than one piece
    assert max(len(chunk.data) for chunk in chunks) < 2_000
