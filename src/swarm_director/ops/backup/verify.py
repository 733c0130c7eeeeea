"""``db verify``: prove a backup restores, is intact, and matches its manifest.

The backup is checked against its manifest (size, SHA-256), decrypted and decompressed into a
temporary database (a SQLite file in a scratch folder, or a throwaway PostgreSQL database on
the target server), compared with the manifest (schema revision, rows per table), upgraded to
head if it is older, and put through the full :func:`~swarm_director.ops.checks.db_check.run_check`.
:func:`staged_backup` is the same work handed to ``restore``, which copies from the staged
database only when everything passed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from swarm_director.db.engine import make_engine
from swarm_director.db.provision import create_server_database, drop_server_database
from swarm_director.models import MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.artifact import decode, sha256_file
from swarm_director.ops.backup.manifest import Manifest, manifest_path
from swarm_director.ops.backup.pgtools import (
    check_client_version,
    find_tool,
    first_error,
    libpq_env,
)
from swarm_director.ops.checks.db_check import run_check
from swarm_director.ops.checks.findings import CheckReport
from swarm_director.ops.crypto import age
from swarm_director.ops.crypto.sdbkenc1 import MAGIC, SCHEME
from swarm_director.ops.dbinfo import (
    head_revision,
    revision_is_known,
    row_counts,
    schema_revision,
    upgrade_to_head,
)
from swarm_director.ops.errors import BackupKeyError, CorruptBackupError, ToolError
from swarm_director.ops.progress import Reporter, stage
from swarm_director.redact import first_line

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PGDUMP_MAGIC = b"PGDMP"
STAGE_PREFIX = "sdstage_"


@dataclass
class VerifyReport:
    """What verification found; ``ok`` only if nothing at all is wrong."""

    path: Path
    manifest: Manifest
    revision: str | None = None
    upgraded_from: str | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    check: CheckReport | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.check is not None and self.check.ok

    @property
    def reasons(self) -> list[str]:
        """Every reason it is not ok, in plain words."""
        reasons = list(self.mismatches)
        if self.check is not None and not self.check.ok:
            reasons.append(f"db check found {self.check.problem_count} problem(s)")
            reasons.extend(str(p) for p in self.check.problems[:5])
        return reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": str(self.path),
            "revision": self.revision,
            "upgraded_from": self.upgraded_from,
            "row_counts": self.row_counts,
            "mismatches": self.mismatches,
            "check": self.check.as_dict() if self.check else None,
            "manifest": self.manifest.as_dict(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Staged:
    """A backup restored into a temporary database at head, ready to be copied from."""

    engine: Engine
    report: VerifyReport
    sqlite_path: Path | None
    """The staged SQLite file (None on PostgreSQL)."""
    dump_path: Path | None
    """The plain pg_dump file of the backup (None on SQLite)."""
    workdir: Path


def verify_backup(
    path: Path,
    *,
    target: URL | None = None,
    key: bytes | None = None,
    identities: Sequence[age.Identity] | None = None,
    reporter: Reporter | None = None,
    audit_engine: Engine | None = None,
    pg_bin: Path | None = None,
) -> VerifyReport:
    """Verify the backup at ``path``; the report names every mismatch.

    ``target`` is the database a restore would go to (a PostgreSQL backup is staged on its
    server); a fatal problem (no manifest, damaged or truncated file, wrong key, wrong
    dialect) raises :class:`CorruptBackupError`/:class:`BackupKeyError`. An age backup opens
    with any of ``identities``, a legacy one with ``key``. With ``audit_engine`` the outcome
    is recorded in that database's audit trail.
    """

    def staged_report() -> VerifyReport:
        with staged_backup(
            path,
            target=target,
            key=key,
            identities=identities,
            reporter=reporter,
            pg_bin=pg_bin,
        ) as staged:
            return staged.report

    if audit_engine is None:
        return staged_report()
    with audit.record(audit_engine, MaintenanceOperation.VERIFY) as details:
        details["file"] = str(path)
        report = staged_report()
        details.update(ok=report.ok, reasons=report.reasons, revision=report.revision)
        if not report.ok:
            raise CorruptBackupError(f"{path.name} failed verification: {report.reasons[0]}")
    return report


@contextmanager
def staged_backup(
    path: Path,
    *,
    target: URL | None,
    key: bytes | None,
    identities: Sequence[age.Identity] | None = None,
    reporter: Reporter | None = None,
    pg_bin: Path | None = None,
) -> Iterator[Staged]:
    """Restore ``path`` into a temporary database, verify it, yield it; always cleaned up."""
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise CorruptBackupError(f"no such backup file: {path}")
    manifest = Manifest.load(manifest_path(path))
    report = VerifyReport(path=path, manifest=manifest)
    dialect = manifest.dialect
    if target is not None and target.get_backend_name() != dialect:
        raise CorruptBackupError(
            f"{path.name} is a {dialect} backup; it cannot be restored into "
            f"{target.get_backend_name()}"
        )
    if dialect == "postgresql" and target is None:
        raise CorruptBackupError("verifying a PostgreSQL backup needs a PostgreSQL server URL")
    _check_file(path, manifest, reporter)
    is_age = manifest.encryption == age.SCHEME
    if is_age and not identities:
        raise BackupKeyError(
            f"{path.name} is encrypted to age recipients: set SWARM_BACKUP_IDENTITY (or pass "
            "--identity) to an identity file holding one of their keys"
        )
    if manifest.encryption and not is_age and key is None:
        raise BackupKeyError(f"{path.name} is encrypted: set SWARM_BACKUP_KEY to its key")
    workdir = _workdir(path)
    engine: Engine | None = None
    pg_url: URL | None = None
    try:
        raw = workdir / ("staged.sqlite3" if dialect == "sqlite" else "staged.pgdump")
        decode(
            path,
            raw,
            compressed=manifest.compression == "gzip",
            key=key if manifest.encryption and not is_age else None,
            identities=identities if is_age else None,
            progress=stage(reporter, "decode"),
        )
        _check_raw_format(raw, dialect, path.name)
        if dialect == "sqlite":
            engine = make_engine(URL.create("sqlite", database=str(raw)))
        else:
            assert target is not None
            pg_url = _create_stage_database(target)
            _pg_restore_into(pg_url, raw, path.name, pg_bin)
            engine = make_engine(pg_url)
        _compare(engine, report)
        report.seconds = time.perf_counter() - started
        yield Staged(
            engine=engine,
            report=report,
            sqlite_path=raw if dialect == "sqlite" else None,
            dump_path=raw if dialect == "postgresql" else None,
            workdir=workdir,
        )
    finally:
        if engine is not None:
            engine.dispose()
        if pg_url is not None and target is not None:
            _drop_stage_database(target, pg_url)
        shutil.rmtree(workdir, ignore_errors=True)


def _check_file(path: Path, manifest: Manifest, reporter: Reporter | None) -> None:
    size = path.stat().st_size
    if size != manifest.bytes:
        kind = "truncated" if size < manifest.bytes else "longer than written"
        raise CorruptBackupError(
            f"{path.name} is {kind}: {size} bytes, its manifest says {manifest.bytes}"
        )
    digest = sha256_file(path, stage(reporter, "checksum"))
    if digest != manifest.sha256:
        raise CorruptBackupError(
            f"{path.name} is damaged: SHA-256 {digest[:12]}... differs from the manifest's "
            f"{manifest.sha256[:12]}..."
        )
    with path.open("rb") as f:
        head = f.read(len(age.MAGIC))
    found = age.SCHEME if head == age.MAGIC else SCHEME if head.startswith(MAGIC) else None
    if found != manifest.encryption:
        raise CorruptBackupError(f"{path.name} does not match its manifest's encryption")


def _check_raw_format(raw: Path, dialect: str, name: str) -> None:
    with raw.open("rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if dialect == "sqlite" and not head.startswith(_SQLITE_MAGIC):
        raise CorruptBackupError(f"{name} is not a SQLite database")
    if dialect == "postgresql" and not head.startswith(_PGDUMP_MAGIC):
        raise CorruptBackupError(f"{name} is not a pg_dump custom-format file")


def _workdir(path: Path) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=".verify-", dir=path.parent))
    except OSError:  # read-only backup medium
        return Path(tempfile.mkdtemp(prefix="swarm-verify-"))


def _compare(engine: Engine, report: VerifyReport) -> None:
    manifest = report.manifest
    try:
        with engine.connect() as conn:
            report.revision = schema_revision(conn)
            report.row_counts = row_counts(conn)
    except sa.exc.DBAPIError as error:
        raise CorruptBackupError(
            f"{report.path.name} cannot be read as a database: {str(error.orig).strip()}"
        ) from None
    if report.revision != manifest.schema_revision:
        report.mismatches.append(
            f"schema revision is {report.revision}, manifest says {manifest.schema_revision}"
        )
    for table in sorted(set(manifest.row_counts) | set(report.row_counts)):
        expected = manifest.row_counts.get(table)
        found = report.row_counts.get(table)
        if expected != found:
            report.mismatches.append(f"{table} has {found} rows, manifest says {expected}")
    if report.mismatches:
        return
    head = head_revision()
    if report.revision is not None and report.revision != head:
        if not revision_is_known(engine):
            report.mismatches.append(
                f"schema revision {report.revision} is unknown to this version (head is "
                f"{head}): the backup is from a newer swarm-director; upgrade it first"
            )
            return
        upgrade_to_head(engine)
        report.upgraded_from = report.revision
    report.check = run_check(engine)


def _create_stage_database(target: URL) -> URL:
    name = f"{STAGE_PREFIX}{uuid.uuid4().hex[:16]}"
    try:
        create_server_database(target, name)
    except sa.exc.DBAPIError as error:
        raise ToolError(
            f"cannot create a temporary database to verify in: {first_line(error)}"
        ) from None
    return target.set(database=name)


def _drop_stage_database(target: URL, staged: URL) -> None:
    name = staged.database or ""
    assert name.startswith(STAGE_PREFIX), name
    drop_server_database(target, name)


def _pg_restore_into(url: URL, dump: Path, name: str, pg_bin: Path | None) -> None:
    tool = find_tool("pg_restore", pg_bin)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            check_client_version(tool, conn)
    finally:
        engine.dispose()
    args = [tool, "--no-owner", "--no-privileges", "--exit-on-error", "--no-password"]
    args += [f"--dbname={url.database}", str(dump)]
    done = subprocess.run(args, env=libpq_env(url), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CorruptBackupError(f"{name} does not restore: {first_error(done.stderr)}")
