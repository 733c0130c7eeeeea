"""``db backup`` and ``db backups``: consistent online backups with a manifest beside each.

SQLite goes through the online backup API of the ``sqlite3`` module (never a file copy: a copy
of a live WAL database can be torn). The source connection holds one read transaction for
the whole copy, so the backup is the snapshot of that instant while writers carry on in the
WAL, and stepping for a progress bar never restarts. PostgreSQL goes through ``pg_dump
--format=custom`` on a snapshot exported by a repeatable-read transaction, in which the row
counts of the manifest are taken too, so counts and dump describe the same instant.

A backup is written under a hidden ``.part`` name, fsynced and renamed into place; the manifest
is written the same way after it. A file without a manifest is therefore never mistaken for a
finished backup.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director import __version__
from swarm_director.config import Settings
from swarm_director.db.base import utcnow
from swarm_director.models import MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.artifact import (
    Reporter,
    encode,
    fsync_dir,
    fsync_file,
    publish,
    sha256_file,
    stage,
)
from swarm_director.ops.crypto import SCHEME
from swarm_director.ops.dbinfo import row_counts, schema_revision, sqlite_file
from swarm_director.ops.errors import BackupError, CorruptBackupError
from swarm_director.ops.pgtools import check_client_version, find_tool, first_error, libpq_env

FORMAT = "swarm-director-backup"
FORMAT_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
RAW_FORMATS = {"sqlite": "sqlite3", "postgresql": "pg_dump-custom"}
_EXTENSIONS = {"sqlite": ".sqlite3", "postgresql": ".pgdump"}
_PART_PREFIX = ".part-"
#: How long the backup waits for a lock held by a checkpoint or VACUUM.
SQLITE_TIMEOUT_S = 60.0


@dataclass
class Manifest:
    """What a backup contains; written as JSON beside the backup file."""

    file: str
    bytes: int
    sha256: str
    dialect: str
    source: str
    """Which database it is a backup of (file path or host/name, never a password)."""
    schema_revision: str | None
    row_counts: dict[str, int]
    created_at: str
    tool_version: str
    raw_format: str
    raw_bytes: int
    compression: str | None = None
    encryption: str | None = None
    kind: str = "manual"
    seconds: float = 0.0
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read a manifest; anything that is not one of ours is a :class:`CorruptBackupError`."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CorruptBackupError(
                f"{path.name} is missing: not a swarm-director backup (or its manifest was lost)"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CorruptBackupError(f"manifest {path.name} is unreadable: {error}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CorruptBackupError(f"{path.name} is not a swarm-director backup manifest")
        if data.get("format_version") != FORMAT_VERSION:
            raise CorruptBackupError(
                f"{path.name} has manifest format {data.get('format_version')}, "
                f"this version reads {FORMAT_VERSION}"
            )
        known = {f for f in cls.__dataclass_fields__}
        try:
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as error:
            raise CorruptBackupError(f"manifest {path.name} is incomplete: {error}") from None
        problem = manifest._problem()
        if problem is not None:
            raise CorruptBackupError(f"manifest {path.name} is invalid: {problem}")
        return manifest

    def _problem(self) -> str | None:
        """What makes a loaded manifest unusable, or None. Listing, pruning and verifying do
        arithmetic and date comparisons on these fields: a damaged or crafted manifest must be
        reported as unusable, not crash them (and with them every later pruned backup)."""

        def count(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0

        if not all(count(v) for v in (self.bytes, self.raw_bytes)):
            return "bytes and raw_bytes must be sizes"
        if not isinstance(self.row_counts, dict) or not all(
            isinstance(k, str) and count(v) for k, v in self.row_counts.items()
        ):
            return "row_counts must map tables to counts"
        texts = (self.file, self.sha256, self.dialect, self.source, self.created_at)
        if not all(isinstance(v, str) for v in texts):
            return "file, sha256, dialect, source and created_at must be text"
        if Path(self.file).name != self.file:
            return f"file {self.file!r} is not a bare file name"
        try:
            created = self.created
        except ValueError:
            return f"created_at {self.created_at!r} is not an ISO 8601 time"
        if created.tzinfo is None:
            return f"created_at {self.created_at!r} has no time zone"
        return None


@dataclass
class BackupResult:
    """A finished backup: its file, manifest, and what pruning removed."""

    path: Path
    manifest: Manifest
    pruned: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "manifest_path": str(manifest_path(self.path)),
            "manifest": self.manifest.as_dict(),
            "pruned": [str(p) for p in self.pruned],
        }


@dataclass
class BackupEntry:
    """One backup found in a folder; ``problem`` says why it cannot be used, if it cannot."""

    path: Path
    manifest: Manifest | None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "problem": self.problem,
            "manifest": self.manifest.as_dict() if self.manifest else None,
        }


def manifest_path(backup: Path) -> Path:
    """Where the manifest of ``backup`` lives."""
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


def default_backup_dir(settings: Settings) -> Path:
    """``backups/`` beside the embedded database's folder; ``./backups`` otherwise."""
    if settings.is_embedded_default:
        return settings.data_dir.parent / "backups"
    return Path("backups")


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
    keep_last: int | None = None,
    keep_days: float | None = None,
    kind: str = "manual",
    reporter: Reporter | None = None,
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
        details.update(kind=kind, directory=str(directory))
        result = _create(
            engine, directory, compress=compress, key=key, kind=kind, reporter=reporter
        )
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
    return result


def _backup_name(engine: Engine, created: datetime, compress: bool, encrypted: bool) -> str:
    path = sqlite_file(engine.url)
    stem = path.stem if path is not None else (engine.url.database or "database")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
    name = f"{stem}-{created.strftime('%Y%m%dT%H%M%S_%fZ')}{_EXTENSIONS[engine.dialect.name]}"
    return name + (".gz" if compress else "") + (".enc" if encrypted else "")


def _create(
    engine: Engine,
    directory: Path,
    *,
    compress: bool,
    key: bytes | None,
    kind: str,
    reporter: Reporter | None,
) -> BackupResult:
    dialect = engine.dialect.name
    if dialect not in RAW_FORMATS:
        raise BackupError(f"backups of {dialect} databases are not supported")
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    created = utcnow()
    final = directory / _backup_name(engine, created, compress, key is not None)
    if final.exists() or manifest_path(final).exists():
        raise BackupError(f"{final} already exists")
    token = uuid.uuid4().hex[:12]
    raw_part = directory / f"{_PART_PREFIX}{token}.raw"
    out_part = directory / f"{_PART_PREFIX}{token}.out"
    try:
        revision: str | None = None
        counts: dict[str, int] = {}
        if dialect == "sqlite":
            _sqlite_snapshot(engine, raw_part, reporter)
        else:
            revision, counts = _pg_snapshot(engine, raw_part)
        raw_bytes = raw_part.stat().st_size
        # The checksum, the row counts (SQLite: read from the copy itself, so they describe
        # exactly what it holds) and the fsync all release the GIL: run them side by side.
        with ThreadPoolExecutor(max_workers=3) as pool:
            counting = pool.submit(sqlite_counts, raw_part) if dialect == "sqlite" else None
            if compress or key is not None:
                digest, size = encode(
                    raw_part,
                    out_part,
                    compress=compress,
                    key=key,
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
            encryption=SCHEME if key is not None else None,
            kind=kind,
            seconds=round(time.perf_counter() - started, 3),
        )
        write_manifest(final, manifest)
    finally:
        for leftover in (raw_part, out_part):
            leftover.unlink(missing_ok=True)
    return BackupResult(path=final, manifest=manifest)


def write_manifest(backup: Path, manifest: Manifest) -> None:
    """Write the manifest atomically beside ``backup``."""
    target = manifest_path(backup)
    part = target.with_name(f"{_PART_PREFIX}{uuid.uuid4().hex[:12]}.json")
    part.write_text(json.dumps(manifest.as_dict(), indent=2) + "\n", encoding="utf-8")
    publish(part, target)


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
        destination = sqlite3.connect(str(target), isolation_level=None)
        try:
            # The copy is a private temporary file until it is fsynced and renamed: no
            # journal and no syncs while writing it (the caller's fsync runs beside the
            # checksum instead of before it).
            destination.execute("PRAGMA journal_mode=OFF")
            destination.execute("PRAGMA synchronous=OFF")
            if progress is None:
                source.backup(destination)
            else:
                source.backup(
                    destination,
                    pages=max(256, pages // 100),
                    progress=lambda _status, remaining, total: progress(total - remaining, total),
                )
            # The copy must stand alone: no WAL file beside it.
            destination.execute("PRAGMA journal_mode=DELETE")
        finally:
            destination.close()
        source.execute("COMMIT")
    except sqlite3.Error as error:
        raise BackupError(f"SQLite backup failed: {error}") from None
    finally:
        source.close()


def _pg_snapshot(engine: Engine, target: Path) -> tuple[str | None, dict[str, int]]:
    tool = find_tool("pg_dump")
    with engine.connect() as conn:
        check_client_version(tool, conn)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
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


def list_backups(directory: Path) -> list[BackupEntry]:
    """Every backup in ``directory``, oldest first, including unusable ones (with the reason)."""
    if not directory.is_dir():
        return []
    entries: list[BackupEntry] = []
    described: set[str] = set()
    for mpath in sorted(directory.glob("*" + MANIFEST_SUFFIX)):
        backup = mpath.with_name(mpath.name[: -len(MANIFEST_SUFFIX)])
        described.add(backup.name)
        try:
            manifest = Manifest.load(mpath)
        except CorruptBackupError as error:
            entries.append(BackupEntry(backup, None, error.message))
            continue
        problem = None
        if not backup.exists():
            problem = "backup file is missing"
        elif backup.stat().st_size != manifest.bytes:
            problem = f"size is {backup.stat().st_size} bytes, manifest says {manifest.bytes}"
        entries.append(BackupEntry(backup, manifest, problem))
    for candidate in sorted(directory.iterdir()):
        name = candidate.name
        if name.startswith(".") or name in described or name.endswith(MANIFEST_SUFFIX):
            continue
        if any(ext in name for ext in _EXTENSIONS.values()):
            entries.append(BackupEntry(candidate, None, "no manifest (incomplete or foreign)"))
    entries.sort(key=lambda e: e.manifest.created_at if e.manifest else "")
    return entries


def prune(
    directory: Path,
    source: str,
    *,
    keep_last: int | None,
    keep_days: float | None,
    protect: Path | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Delete backups of ``source`` that no rule keeps; returns the deleted files."""
    if keep_last is None and keep_days is None:
        return []
    now = now or utcnow()
    ours = [
        e
        for e in list_backups(directory)
        if e.manifest is not None and e.manifest.source == source and e.path.exists()
    ]
    ours.sort(key=lambda e: e.manifest.created_at if e.manifest else "", reverse=True)
    deleted: list[Path] = []
    for index, entry in enumerate(ours):
        assert entry.manifest is not None
        if protect is not None and entry.path == protect:
            continue
        kept_by_count = keep_last is not None and index < keep_last
        kept_by_age = keep_days is not None and entry.manifest.created > now - timedelta(
            days=keep_days
        )
        if kept_by_count or kept_by_age:
            continue
        entry.path.unlink(missing_ok=True)
        manifest_path(entry.path).unlink(missing_ok=True)
        deleted.append(entry.path)
    if deleted:
        fsync_dir(directory)
    return deleted


__all__ = [
    "BackupEntry",
    "BackupResult",
    "Manifest",
    "create_backup",
    "default_backup_dir",
    "list_backups",
    "manifest_path",
    "prune",
]
