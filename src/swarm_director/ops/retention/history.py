"""History retention: ``db maintain`` deletes history rows older than
``SWARM_HISTORY_RETENTION`` (default 90 days), after writing them to an archive when an archive
folder is set (one ``history-<time>.jsonl.gz`` per run, age-encrypted like the log archives).

Rows are archived first, in id order, and only the rows the archive holds are deleted, in short
batches (oldest first), so SQLite's writers get the lock in between and a run that dies midway
leaves rows either archived or still in place, never lost. History is written once per change,
not per log line: at a few rows per task it stays far below the logs' volume, so it is one
table on both dialects (no monthly partitions).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db.base import utcnow
from swarm_director.models import HistoryEntry
from swarm_director.ops.crypto import age
from swarm_director.ops.dbinfo import table_of
from swarm_director.ops.retention.archive import write_archive  # one archive format for both

HISTORY = table_of(HistoryEntry)
#: What an archive line holds: the rows as written, not what the database derives from them
#: (``error_message``).
_ARCHIVED = [column for column in HISTORY.c if column.computed is None]
DEFAULT_RETENTION = timedelta(days=90)
BATCH = 5000
_SQLITE_YIELD_S = 0.05


@dataclass
class HistoryPruneResult:
    """What one run deleted and where it archived it."""

    deleted: int
    archived: int
    archive: str | None
    cutoff: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "deleted": self.deleted,
            "archived": self.archived,
            "archive": self.archive,
            "cutoff": self.cutoff.isoformat(),
        }


def _row_json(row: sa.Row[Any]) -> str:
    doc = dict(row._mapping)
    doc["at"] = row.at.isoformat()
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _archive(
    engine: Engine,
    cutoff: datetime,
    archive: Path,
    recipients: Sequence[age.Recipient],
) -> tuple[int, int]:
    """Write every row older than ``cutoff`` to ``archive``; (how many, the highest id)."""
    count, last_id = 0, 0

    def lines() -> Iterator[bytes]:
        nonlocal count, last_id
        while True:
            query = (
                sa.select(*_ARCHIVED)
                .where(HISTORY.c.at < cutoff, HISTORY.c.id > last_id)
                .order_by(HISTORY.c.id)
                .limit(BATCH)
            )
            with engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            yield "".join(_row_json(row) + "\n" for row in rows).encode("utf-8")
            count += len(rows)
            last_id = rows[-1].id

    write_archive(archive, lines(), recipients)
    return count, last_id


def prune_history(
    engine: Engine,
    older_than: timedelta = DEFAULT_RETENTION,
    *,
    archive: Path | None = None,
    recipients: Sequence[age.Recipient] = (),
    now: datetime | None = None,
) -> HistoryPruneResult:
    """Delete history rows older than ``older_than`` (archived to ``archive`` first when
    given); returns what was done. Raises RetentionError when the archive already exists."""
    cutoff = (now or utcnow()) - older_than
    archived, up_to = 0, None
    if archive is not None:
        archived, up_to = _archive(engine, cutoff, archive, recipients)
        if archived == 0:
            archive.unlink(missing_ok=True)  # nothing to keep: no empty file per run
    oldest = sa.select(HISTORY.c.id).where(HISTORY.c.at < cutoff)
    if up_to is not None:
        oldest = oldest.where(HISTORY.c.id <= up_to)
    statement = sa.delete(HISTORY).where(
        HISTORY.c.id.in_(oldest.order_by(HISTORY.c.id).limit(BATCH).scalar_subquery())
    )
    deleted = 0
    while True:
        with engine.begin() as conn:
            gone = conn.execute(statement).rowcount or 0
        deleted += gone
        if gone < BATCH:
            break
        if engine.dialect.name == "sqlite":
            time.sleep(_SQLITE_YIELD_S)
    return HistoryPruneResult(deleted, archived, str(archive) if archived else None, cutoff)
