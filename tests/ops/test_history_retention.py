"""History retention: old rows are archived, then deleted; young rows stay; db maintain runs
it after the verified backup."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from swarm_director.db import Database, utcnow
from swarm_director.errors import SwarmError
from swarm_director.models import HistoryEntry
from swarm_director.ops.retention.history import prune_history
from swarm_director.store import tasks


def _age_rows(db: Database, days: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.update(HistoryEntry).values(at=utcnow() - timedelta(days=days)))


def _count(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(HistoryEntry)) or 0)


def test_old_rows_are_archived_then_deleted_and_young_rows_stay(
    db: Database, tmp_path: Path
) -> None:
    with db.transaction() as s:
        old = tasks.create_task(s, {"type": "analysis", "title": "old"}).id
        tasks.update_task(s, old, {"title": "older"})
    _age_rows(db, 100)
    with db.transaction() as s:
        tasks.create_task(s, {"type": "analysis", "title": "young"})
    archive = tmp_path / "archive" / "history.jsonl.gz"

    result = prune_history(db.engine, timedelta(days=90), archive=archive)

    assert (result.deleted, result.archived) == (2, 2)
    with gzip.open(archive, "rt") as lines:
        rows = [json.loads(line) for line in lines]
    assert [(r["action"], r["entity_id"]) for r in rows] == [("create", old), ("update", old)]
    assert rows[1]["changes"] == {"title": ["old", "older"]}
    assert _count(db) == 1
    assert oct(archive.stat().st_mode & 0o777) == "0o600"


def test_nothing_old_writes_no_archive_and_an_existing_archive_is_refused(
    db: Database, tmp_path: Path
) -> None:
    with db.transaction() as s:
        tasks.create_task(s, {"type": "analysis", "title": "young"})
    archive = tmp_path / "h.jsonl.gz"
    assert prune_history(db.engine, timedelta(days=1), archive=archive).deleted == 0
    assert not archive.exists()
    archive.write_text("someone's file")
    _age_rows(db, 5)
    try:
        prune_history(db.engine, timedelta(days=1), archive=archive)
    except SwarmError as error:
        assert "already exists" in error.message
    else:
        raise AssertionError("an existing archive was overwritten")
    assert _count(db) == 1 and archive.read_text() == "someone's file"
