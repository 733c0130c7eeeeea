"""Archives of deleted rows: gzip JSON lines (age-encrypted to recipients when given), made
durable before the first delete.

A log archive is written under a hidden ``.part-`` name, fsynced and renamed into place; the
ids it returns are the only rows the cleanup then deletes one by one, so a row that was not
archived is never deleted. History archives (:mod:`.history`) use the same file format.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.partitions import Partition
from swarm_director.models import AgentLog
from swarm_director.ops.artifact import gzip_chunks, write_layers
from swarm_director.ops.crypto import age
from swarm_director.ops.dbinfo import reader, table_of
from swarm_director.ops.durable import publish
from swarm_director.ops.errors import RetentionError
from swarm_director.ops.progress import Reporter, stage
from swarm_director.ops.retention.cleanup_report import CleanupReport
from swarm_director.private_files import open_private, private_dir

LOGS = table_of(AgentLog)
#: Rows read per query while archiving (each read is its own short transaction).
READ_PAGE = 10_000


def _row_json(row: sa.Row[Any]) -> str:
    data = dict(row._mapping)
    for key in ("timestamp", "created_at"):
        if isinstance(data.get(key), datetime):
            data[key] = data[key].isoformat()
    return json.dumps(data, default=str, ensure_ascii=False)


def write_log_archive(
    engine: Engine,
    where: sa.ColumnElement[bool],
    archive: Path,
    recipients: Sequence[age.Recipient],
    report: CleanupReport,
    reporter: Reporter | None,
    conn: Connection | None = None,
    dropped: list[Partition] | None = None,
) -> array[int]:
    """Write every chosen row to ``archive``; the ids to delete one by one (not those of
    ``dropped`` partitions, which go whole). Reads through ``conn`` when given (the
    transaction that holds the partitions' locks), else through short read transactions."""
    progress = stage(reporter, "archive")
    total = report.total_matched
    ids: array[int] = array("q")
    going = dropped or []
    archived = 0

    def lines() -> Iterator[bytes]:
        nonlocal archived
        last_id = 0
        while True:
            query = (
                sa.select(LOGS)
                .where(where, LOGS.c.id > last_id)
                .order_by(LOGS.c.id)
                .limit(READ_PAGE)
            )
            source: AbstractContextManager[Connection] = (
                nullcontext(conn) if conn is not None else reader(engine).connect()
            )
            with source as reading:
                rows = reading.execute(query).all()
            if not rows:
                return
            text = []
            for row in rows:
                text.append(_row_json(row))
                archived += 1
                if not any(p.lower <= row.timestamp < p.upper for p in going):
                    ids.append(row.id)
            yield ("\n".join(text) + "\n").encode("utf-8")
            last_id = rows[-1].id
            if progress:
                progress(archived, max(total, archived))

    write_archive(archive, lines(), recipients)
    report.archived = archived
    report.archive = str(archive)
    return ids


def write_archive(
    archive: Path, lines: Iterator[bytes], recipients: Sequence[age.Recipient]
) -> None:
    """``lines`` into gzip (and age encryption after it when there are recipients) as the new
    file ``archive``, durable when this returns. Raises RetentionError if ``archive`` exists.

    The file is written under a hidden ``.part-`` name, fsynced and renamed into place, so an
    archive under its final name is always complete; the part is removed on any failure.
    """
    if archive.exists():
        raise RetentionError(f"archive {archive} already exists; choose a new file name")
    private_dir(archive.parent)
    part = archive.with_name(f".part-{archive.name}")
    try:
        with open_private(part) as sink:
            write_layers(sink, gzip_chunks(lines), recipients=recipients)
        publish(part, archive)  # fsync, then the final name: durable before any delete
    finally:
        part.unlink(missing_ok=True)
