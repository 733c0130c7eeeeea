"""``db backup`` and ``db backups``: consistent online backups with a manifest beside each.

SQLite goes through the online backup API of the ``sqlite3`` module (never a file copy: a copy
of a live WAL database can be torn). The source connection holds one read transaction for
the whole copy, so the backup is the snapshot of that instant while writers carry on in the
WAL, and stepping for a progress bar never restarts. PostgreSQL goes through ``pg_dump
--format=custom`` on a snapshot exported by a repeatable-read transaction, in which the row
counts of the manifest are taken too, so counts and dump describe the same instant.

A backup is written under a hidden ``.part`` name, fsynced and renamed into place; the manifest
is written the same way after it. A file without a manifest is therefore never mistaken for a
finished backup. The ``.part`` files of a backup killed before it ended are removed by the next
backup into the same folder (see :mod:`swarm_director.ops.backup.temp_files`).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director import __version__
from swarm_director.db.actor import current_actor
from swarm_director.db.base import utcnow
from swarm_director.db.engine import sqlite_file
from swarm_director.models import MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.artifact import encode, sha256_file
from swarm_director.ops.backup import temp_files
from swarm_director.ops.backup.manifest import (
    EXTENSIONS,
    PART_PREFIX,
    BackupEntry,
    Manifest,
    list_backups,
    manifest_path,
    prune,
    write_manifest,
)
from swarm_director.ops.backup.pgtools import (
    check_client_version,
    find_tool,
    first_error,
    libpq_env,
)
from swarm_director.ops.crypto import age
from swarm_director.ops.crypto.sdbkenc1 import SCHEME
from swarm_director.ops.dbinfo import row_counts, schema_revision
from swarm_director.ops.durable import fsync_dir, fsync_file
from swarm_director.ops.errors import BackupError
from swarm_director.ops.progress import Progress, Reporter, stage
from swarm_director.private_files import create_private_file, private_dir

RAW_FORMATS = {"sqlite": "sqlite3", "postgresql": "pg_dump-custom"}
#: How long the backup waits for a lock held by a checkpoint or VACUUM.
SQLITE_TIMEOUT_S = 60.0


@dataclass
class BackupResult:
    """A finished backup: its file, manifest, and what pruning removed."""

    path: Path
    manifest: Manifest
    pruned: list[Path] = field(default_factory=list)
    removed_leftovers: list[Path] = field(default_factory=list)
    """Temporary files of earlier backups killed before they ended, removed first."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "manifest_path": str(manifest_path(self.path)),
            "manifest": self.manifest.as_dict(),
            "pruned": [str(p) for p in self.pruned],
            "removed_leftovers": [str(p) for p in self.removed_leftovers],
        }


def source_of(engine: Engine) -> str:
    """A stable, password-free name of the database (used to group and prune backups)."""
    path = sqlite_file(engine.url)
    if path is not None:
        return str(path.resolve())
    url = engine.url
    return f"postgresql://{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def create_backup(
    engine: Engine,
    directory: Path,
    *,
    compress: bool = False,
    key: bytes | None = None,
    recipients: Sequence[age.Recipient] = (),
    keep_last: int | None = None,
    keep_days: float | None = None,
    kind: str = "manual",
    reporter: Reporter | None = None,
    pg_bin: Path | None = None,
) -> BackupResult:
    """Take a consistent backup of ``engine``'s database into ``directory``.

    Returns the backup's path and manifest. With ``keep_last``/``keep_days``, older backups of
    the same database in ``directory`` are pruned afterwards (a backup survives if either rule
    keeps it; the new one is never pruned). Recorded in the audit trail.
    """
    if keep_last is not None and keep_last < 1:
        raise BackupError("--keep-last must be at least 1")
    if keep_days is not None and keep_days <= 0:
        raise BackupError("--keep-days must be positive")
    with audit.record(engine, MaintenanceOperation.BACKUP) as details:
        # Who asked: the CLI's user, a maintenance job, or the console session's key.
        details.update(kind=kind, directory=str(directory), actor=current_actor().name)
        private_dir(directory)
        leftovers = temp_files.remove_orphans(directory)  # of backups killed before they ended
        with temp_files.claimed(directory) as token:
            result = _create(
                engine,
                directory,
                token,
                compress=compress,
                key=key,
                recipients=recipients,
                kind=kind,
                reporter=reporter,
                pg_bin=pg_bin,
            )
        result.removed_leftovers = leftovers
        details.update(
            path=str(result.path),
            bytes=result.manifest.bytes,
            sha256=result.manifest.sha256,
            rows=result.manifest.total_rows,
            encrypted=result.manifest.encryption is not None,
            seconds=result.manifest.seconds,
        )
        if keep_last is not None or keep_days is not None:
            result.pruned = prune(
                directory,
                result.manifest.source,
                keep_last=keep_last,
                keep_days=keep_days,
                protect=result.path,
            )
            details["pruned"] = [p.name for p in result.pruned]
        if leftovers:
            details["removed_leftovers"] = [p.name for p in leftovers]
    return result


def _backup_name(engine: Engine, created: datetime, compress: bool, scheme: str | None) -> str:
    path = sqlite_file(engine.url)
    stem = path.stem if path is not None else (engine.url.database or "database")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
    name = f"{stem}-{created.strftime('%Y%m%dT%H%M%S_%fZ')}{EXTENSIONS[engine.dialect.name]}"
    suffix = {None: "", age.SCHEME: ".age", SCHEME: ".enc"}[scheme]
    return name + (".gz" if compress else "") + suffix


def _create(
    engine: Engine,
    directory: Path,
    token: str,
    *,
    compress: bool,
    key: bytes | None,
    recipients: Sequence[age.Recipient],
    kind: str,
    reporter: Reporter | None,
    pg_bin: Path | None,
) -> BackupResult:
    dialect = engine.dialect.name
    if dialect not in RAW_FORMATS:
        raise BackupError(f"backups of {dialect} databases are not supported")
    started = time.perf_counter()
    created = utcnow()
    scheme = age.SCHEME if recipients else SCHEME if key is not None else None
    final = directory / _backup_name(engine, created, compress, scheme)
    if final.exists() or manifest_path(final).exists():
        raise BackupError(f"{final} already exists")
    raw_part = directory / f"{PART_PREFIX}{token}.raw"
    out_part = directory / f"{PART_PREFIX}{token}.out"
    try:
        revision: str | None = None
        counts: dict[str, int] = {}
        if dialect == "sqlite":
            _sqlite_snapshot(engine, raw_part, reporter)
        else:
            revision, counts = _pg_snapshot(engine, raw_part, pg_bin)
        raw_bytes = raw_part.stat().st_size
        # The checksum, the row counts (SQLite: read from the copy itself, so they describe
        # exactly what it holds) and the fsync all release the GIL: run them side by side.
        with ThreadPoolExecutor(max_workers=3) as pool:
            counting = pool.submit(sqlite_counts, raw_part) if dialect == "sqlite" else None
            if compress or scheme is not None:
                digest, size = encode(
                    raw_part,
                    out_part,
                    compress=compress,
                    key=key,
                    recipients=recipients,
                    progress=stage(reporter, "encode"),
                )
                artifact = out_part
                syncing = pool.submit(fsync_file, artifact)
            else:
                artifact = raw_part
                syncing = pool.submit(fsync_file, artifact)
                digest = sha256_file(raw_part, stage(reporter, "checksum"))
                size = raw_bytes
            if counting is not None:
                revision, counts = counting.result()
            syncing.result()
        if artifact is out_part:
            raw_part.unlink()
        os.replace(artifact, final)
        fsync_dir(directory)
        manifest = Manifest(
            file=final.name,
            bytes=size,
            sha256=digest,
            dialect=dialect,
            source=source_of(engine),
            schema_revision=revision,
            row_counts=counts,
            created_at=created.isoformat(),
            tool_version=__version__,
            raw_format=RAW_FORMATS[dialect],
            raw_bytes=raw_bytes,
            compression="gzip" if compress else None,
            encryption=scheme,
            kind=kind,
            seconds=round(time.perf_counter() - started, 3),
        )
        write_manifest(final, manifest)
    finally:
        for leftover in (raw_part, out_part):
            leftover.unlink(missing_ok=True)
    return BackupResult(path=final, manifest=manifest)


def sqlite_counts(path: Path) -> tuple[str | None, dict[str, int]]:
    """Revision and row counts of a SQLite file, opened read-only and immutable (the file is
    not touched, so it can be checksummed at the same time)."""
    uri = f"file:{path.resolve().as_posix()}?mode=ro&immutable=1"
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        with engine.connect() as conn:
            return schema_revision(conn), row_counts(conn)
    finally:
        engine.dispose()


def copy_sqlite_pages(
    source: sqlite3.Connection, target: sqlite3.Connection, pages: int, progress: Progress | None
) -> None:
    """SQLite's online backup of ``source`` (``pages`` long) into ``target``: in one step,
    or, when someone watches ``progress``, in steps of 1 % (at least 256 pages)."""
    if progress is None:
        source.backup(target)
        return
    source.backup(
        target,
        pages=max(256, pages // 100),
        progress=lambda _status, remaining, total: progress(total - remaining, total),
    )


def _sqlite_snapshot(engine: Engine, target: Path, reporter: Reporter | None) -> None:
    path = sqlite_file(engine.url)
    if path is None or not path.exists():
        raise BackupError(f"SQLite database file not found: {engine.url.database}")
    progress = stage(reporter, "backup")
    source = sqlite3.connect(str(path), timeout=SQLITE_TIMEOUT_S, isolation_level=None)
    try:
        # One read transaction for the whole copy: the backup is this instant's snapshot, and
        # steps never restart because of writers (they append to the WAL meanwhile).
        source.execute("BEGIN")
        pages = int(source.execute("PRAGMA page_count").fetchone()[0])
        create_private_file(target)  # sqlite3 would create it readable by everyone
        destination = sqlite3.connect(str(target), isolation_level=None)
        try:
            # The copy is a private temporary file until it is fsynced and renamed: no
            # journal and no syncs while writing it (the caller's fsync runs beside the
            # checksum instead of before it).
            destination.execute("PRAGMA journal_mode=OFF")
            destination.execute("PRAGMA synchronous=OFF")
            copy_sqlite_pages(source, destination, pages, progress)
            # The copy must stand alone: no WAL file beside it.
            destination.execute("PRAGMA journal_mode=DELETE")
        finally:
            destination.close()
        source.execute("COMMIT")
    except sqlite3.Error as error:
        raise BackupError(f"SQLite backup failed: {error}") from None
    finally:
        source.close()


def _pg_snapshot(
    engine: Engine, target: Path, pg_bin: Path | None
) -> tuple[str | None, dict[str, int]]:
    tool = find_tool("pg_dump", pg_bin)
    with engine.connect() as conn:
        check_client_version(tool, conn)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
        create_private_file(target)  # pg_dump keeps the mode of a file that exists
        revision = schema_revision(conn)
        counts = row_counts(conn)
        args = [
            tool,
            "--format=custom",
            f"--file={target}",
            "--no-password",
            f"--snapshot={snapshot}",
        ]
        done = subprocess.run(
            args, env=libpq_env(engine.url), capture_output=True, text=True, check=False
        )
        conn.rollback()
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {first_error(done.stderr)}")
    return revision, counts


__all__ = [
    "BackupEntry",
    "BackupResult",
    "Manifest",
    "create_backup",
    "list_backups",
    "manifest_path",
    "prune",
    "write_manifest",
]
