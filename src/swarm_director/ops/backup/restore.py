"""``db restore``: replace the live database with a verified backup, atomically.

Order: verify (the backup is staged in a temporary database, upgraded to head if older, and
checked); take a safety backup of the live database; then swap in one step:

* SQLite: the online backup API copies the staged database into the live one through a
  normal connection. It takes the write lock like any writer (waiting up to the busy timeout)
  and writes all pages in one write transaction, so readers see the old database until it
  commits and the new one after; a failure midway rolls back like any transaction. Replacing
  the file with ``os.replace`` was rejected: processes with the old file open would go on
  reading and writing an unlinked inode (their writes lost), and the old ``-wal``/``-shm`` files
  would be paired with the new file.
* PostgreSQL: ``pg_restore --clean --single-transaction`` into the live database: the drops and
  the reload are one transaction, so other sessions see the old data until commit (they wait
  on its locks meanwhile), and any error rolls everything back. A lock that is not granted
  within ``lock_timeout_s`` (another session holding a table) cancels the restore instead of
  leaving it, and everyone queued behind it, hanging.

A refused or failed restore changes nothing but its own ``failed`` row in the audit trail.

The audit trail outlives the swap: the live database's ``maintenance_events`` that finished
after the backup was taken (the backup's own event, the safety backup, anything since) are
read before the swap and written into the restored database after it, then the restore itself
is recorded. So the trail shows the backup, everything after it, and the restore.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db.engine import sqlite_file
from swarm_director.models import MaintenanceEvent, MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.backup.create import (
    SQLITE_TIMEOUT_S,
    BackupResult,
    copy_sqlite_pages,
    create_backup,
)
from swarm_director.ops.backup.pgtools import find_tool, first_error, libpq_env
from swarm_director.ops.backup.verify import Staged, VerifyReport, staged_backup
from swarm_director.ops.crypto import age
from swarm_director.ops.dbinfo import table_of
from swarm_director.ops.errors import BackupError, CorruptBackupError, ToolError
from swarm_director.ops.progress import Reporter, stage
from swarm_director.private_files import create_private_file, write_private_text

log = logging.getLogger(__name__)
_EVENTS = table_of(MaintenanceEvent)


@dataclass
class RestoreReport:
    """What a successful restore did."""

    path: Path
    verify: VerifyReport
    safety_backup: BackupResult
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "safety_backup": str(self.safety_backup.path),
            "revision": self.verify.revision,
            "upgraded_from": self.verify.upgraded_from,
            "row_counts": self.verify.row_counts,
            "seconds": round(self.seconds, 3),
        }


def restore_backup(
    engine: Engine,
    path: Path,
    *,
    backup_dir: Path,
    key: bytes | None = None,
    identities: Sequence[age.Identity] | None = None,
    recipients: Sequence[age.Recipient] = (),
    reporter: Reporter | None = None,
    lock_timeout_s: float = 60.0,
    pg_bin: Path | None = None,
) -> RestoreReport:
    """Replace ``engine``'s database with the backup at ``path``.

    Refuses (raising, with the live database untouched) a backup that fails verification.
    Writes a safety backup of the live database into ``backup_dir`` first (encrypted to
    ``recipients``, else with ``key``, when given) and returns where it is. ``identities``
    open an age backup, ``key`` a legacy encrypted one.
    """
    started = time.perf_counter()
    with audit.record(engine, MaintenanceOperation.RESTORE) as details:
        details["file"] = str(path)
        with staged_backup(
            path,
            target=engine.url,
            key=key,
            identities=identities,
            reporter=reporter,
            pg_bin=pg_bin,
        ) as staged:
            report = staged.report
            if not report.ok:
                raise CorruptBackupError(
                    f"refusing to restore {Path(path).name}: {'; '.join(report.reasons[:3])}"
                )
            safety = create_backup(
                engine,
                backup_dir,
                key=key,
                recipients=recipients,
                kind="pre-restore",
                pg_bin=pg_bin,
            )
            details["safety_backup"] = str(safety.path)
            later = _events_after_backup(engine, staged)
            if engine.dialect.name == "sqlite":
                _swap_sqlite(staged, engine, reporter)
            else:
                _swap_postgresql(staged, engine, lock_timeout_s, pg_bin)
                # pg_restore leaves the planner without statistics for the new tables.
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("ANALYZE")
            details["carried_events"] = _carry_events(engine, later)
        details.update(
            revision=report.revision,
            upgraded_from=report.upgraded_from,
            rows=sum(report.row_counts.values()),
        )
    return RestoreReport(
        path=Path(path),
        verify=report,
        safety_backup=safety,
        seconds=time.perf_counter() - started,
    )


def _events_after_backup(engine: Engine, staged: Staged) -> list[dict[str, Any]]:
    """The live database's events that finished since the backup was taken and that the
    backup does not already hold, oldest first, without their ids."""
    since = datetime.fromisoformat(staged.report.manifest.created_at)
    columns = [c for c in _EVENTS.c if c.name != "id"]
    query = sa.select(*columns).where(_EVENTS.c.finished_at >= since).order_by(_EVENTS.c.id)
    try:
        with engine.connect() as conn:
            live = [dict(row._mapping) for row in conn.execute(query)]
        with staged.engine.connect() as conn:
            held = {(row.operation, row.started_at) for row in conn.execute(query)}
    except sa.exc.SQLAlchemyError as error:  # a database without the audit table
        log.warning("audit events after the backup not read: %s", error)
        return []
    return [row for row in live if (row["operation"], row["started_at"]) not in held]


def _carry_events(engine: Engine, events: list[dict[str, Any]]) -> int:
    """Write ``events`` into the restored database; how many. A failure here is logged, not
    raised: the data is restored already, and the restore's own event still gets written."""
    if not events:
        return 0
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(_EVENTS), events)
    except sa.exc.SQLAlchemyError as error:
        log.warning("audit events after the backup not carried over: %s", error)
        return 0
    return len(events)


def _swap_sqlite(staged: Staged, engine: Engine, reporter: Reporter | None) -> None:
    live = sqlite_file(engine.url)
    assert live is not None and staged.sqlite_path is not None
    staged.engine.dispose()
    progress = stage(reporter, "restore")
    try:
        # closing(): both connections are closed whichever of them fails to open.
        with (
            closing(sqlite3.connect(str(staged.sqlite_path), isolation_level=None)) as source,
            closing(
                sqlite3.connect(str(live), timeout=SQLITE_TIMEOUT_S, isolation_level=None)
            ) as target,
        ):
            pages = int(source.execute("PRAGMA page_count").fetchone()[0])
            # In steps, the destination's write transaction spans them all: one atomic commit.
            copy_sqlite_pages(source, target, pages, progress)
    except sqlite3.Error as error:
        raise BackupError(
            f"restore into {live.name} failed, nothing was changed: {error}"
        ) from None


def _swap_postgresql(
    staged: Staged, engine: Engine, lock_timeout_s: float, pg_bin: Path | None
) -> None:
    assert staged.dump_path is not None
    dump = staged.dump_path
    if staged.report.upgraded_from is not None:
        # The staged copy was upgraded to head: restore that, not the older dump.
        dump = staged.workdir / "upgraded.pgdump"
        create_private_file(dump)  # pg_dump keeps the mode of a file that exists
        pg_dump = find_tool("pg_dump", pg_bin)
        done = subprocess.run(
            [pg_dump, "--format=custom", f"--file={dump}", "--no-password"],
            env=libpq_env(staged.engine.url),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ToolError(f"pg_dump of the upgraded backup failed: {first_error(done.stderr)}")
    staged.engine.dispose()
    # Not `pg_restore --clean`: on a partitioned table it drops each partition's inherited
    # primary key on its own, which PostgreSQL refuses. psql runs our own clean-up (drop the
    # dump's tables, CASCADE takes their partitions) and then the dump as SQL, all in one
    # transaction: any error rolls everything back.
    tool, psql = find_tool("pg_restore", pg_bin), find_tool("psql", pg_bin)
    clean = staged.workdir / "clean.sql"
    write_private_text(clean, _drop_statements(engine, tool, dump))
    env = libpq_env(engine.url)
    app = f"swarm-director-restore-{uuid.uuid4().hex[:12]}"
    env["PGAPPNAME"] = app
    producer = subprocess.Popen(
        [tool, "--no-owner", "--no-privileges", "--file=-", str(dump)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert producer.stdout is not None
    args = [
        psql,
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        "--no-password",
        f"--dbname={engine.url.database}",
        f"--file={clean}",
        "--file=-",
    ]
    process = subprocess.Popen(
        args,
        env=env,
        stdin=producer.stdout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    producer.stdout.close()  # psql holds the pipe now: pg_restore sees it close if psql dies
    cancelled = _watch_locks(engine, process, app, lock_timeout_s)
    _, stderr = process.communicate()
    producer_err = producer.communicate()[1].decode(errors="replace")
    failed = process.returncode != 0 or producer.returncode != 0
    if failed:
        reason = (
            f"waited more than {lock_timeout_s:g} s for a lock held by another session"
            if cancelled
            else first_error(stderr or producer_err)
        )
        raise ToolError(f"pg_restore failed and was rolled back, nothing was changed: {reason}")


_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ")
#: A function of the dump (the report rollups' trigger functions): schema, name, arguments.
_TOC_FUNCTION = re.compile(r"^\d+; \d+ \d+ FUNCTION (\S+) ([^\s(]+)\(([^)]*)\) ")


def _drop_statements(engine: Engine, pg_restore: str, dump: Path) -> str:
    """SQL that drops every table and function of the dump (as ``--clean`` would, partitions
    included)."""
    listed = subprocess.run(
        [pg_restore, "--list", str(dump)], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        raise ToolError(f"pg_restore could not read the backup: {first_error(listed.stderr)}")
    quote = engine.dialect.identifier_preparer.quote
    names = [
        f"{quote(match.group(1))}.{quote(match.group(2))}"
        for line in listed.stdout.splitlines()
        if (match := _TOC_TABLE.match(line))
    ]
    functions = [
        f"{quote(match.group(1))}.{quote(match.group(2))}({match.group(3)})"
        for line in listed.stdout.splitlines()
        if (match := _TOC_FUNCTION.match(line))
    ]
    drops = f"DROP TABLE IF EXISTS {', '.join(names)} CASCADE;\n" if names else ""
    if functions:
        drops += f"DROP FUNCTION IF EXISTS {', '.join(functions)} CASCADE;\n"
    return drops


def _watch_locks(
    engine: Engine, process: subprocess.Popen[str], app: str, lock_timeout_s: float
) -> bool:
    """Cancel the restore's statement if it waits on one lock longer than ``lock_timeout_s``.

    The dump's preamble sets ``lock_timeout = 0``, so the server-side setting cannot be used;
    the restore's session is found by its application name instead. True if it was cancelled.
    """
    waiting_since: float | None = None
    query = sa.text(
        "SELECT pid, wait_event_type FROM pg_stat_activity WHERE application_name = :app"
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while process.poll() is None:
            row = conn.execute(query, {"app": app}).first()
            if row is not None and row.wait_event_type == "Lock":
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since > lock_timeout_s:
                    conn.execute(sa.text("SELECT pg_cancel_backend(:pid)"), {"pid": row.pid})
                    process.wait()
                    return True
            else:
                waiting_since = None
            time.sleep(0.1)
    return False
