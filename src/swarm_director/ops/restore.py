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
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db.engine import sqlite_file
from swarm_director.models import MaintenanceOperation
from swarm_director.ops import audit
from swarm_director.ops.artifact import Reporter, stage
from swarm_director.ops.backup import SQLITE_TIMEOUT_S, BackupResult, create_backup
from swarm_director.ops.errors import BackupError, CorruptBackupError, ToolError
from swarm_director.ops.pgtools import find_tool, first_error, libpq_env
from swarm_director.ops.verify import Staged, VerifyReport, staged_backup


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
    reporter: Reporter | None = None,
    lock_timeout_s: float = 60.0,
) -> RestoreReport:
    """Replace ``engine``'s database with the backup at ``path``.

    Refuses (raising, with the live database untouched) a backup that fails verification.
    Writes a safety backup of the live database into ``backup_dir`` first (encrypted when a
    ``key`` is given) and returns where it is.
    """
    started = time.perf_counter()
    with audit.record(engine, MaintenanceOperation.RESTORE) as details:
        details["file"] = str(path)
        with staged_backup(path, target=engine.url, key=key, reporter=reporter) as staged:
            report = staged.report
            if not report.ok:
                raise CorruptBackupError(
                    f"refusing to restore {Path(path).name}: {'; '.join(report.reasons[:3])}"
                )
            safety = create_backup(engine, backup_dir, key=key, kind="pre-restore")
            details["safety_backup"] = str(safety.path)
            if engine.dialect.name == "sqlite":
                _swap_sqlite(staged, engine, reporter)
            else:
                _swap_postgresql(staged, engine, lock_timeout_s)
                # pg_restore leaves the planner without statistics for the new tables.
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("ANALYZE")
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


def _swap_sqlite(staged: Staged, engine: Engine, reporter: Reporter | None) -> None:
    live = sqlite_file(engine.url)
    assert live is not None and staged.sqlite_path is not None
    staged.engine.dispose()
    progress = stage(reporter, "restore")
    source = sqlite3.connect(str(staged.sqlite_path), isolation_level=None)
    target = sqlite3.connect(str(live), timeout=SQLITE_TIMEOUT_S, isolation_level=None)
    try:
        pages = int(source.execute("PRAGMA page_count").fetchone()[0])
        if progress is None:
            source.backup(target)
        else:
            # The destination's write transaction spans all steps: still one atomic commit.
            source.backup(
                target,
                pages=max(256, pages // 100),
                progress=lambda _status, remaining, total: progress(total - remaining, total),
            )
    except sqlite3.Error as error:
        raise BackupError(
            f"restore into {live.name} failed, nothing was changed: {error}"
        ) from None
    finally:
        target.close()
        source.close()


def _swap_postgresql(staged: Staged, engine: Engine, lock_timeout_s: float) -> None:
    assert staged.dump_path is not None
    dump = staged.dump_path
    if staged.report.upgraded_from is not None:
        # The staged copy was upgraded to head: restore that, not the older dump.
        dump = staged.workdir / "upgraded.pgdump"
        pg_dump = find_tool("pg_dump")
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
    tool, psql = find_tool("pg_restore"), find_tool("psql")
    clean = staged.workdir / "clean.sql"
    clean.write_text(_drop_statements(engine, tool, dump))
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


def _drop_statements(engine: Engine, pg_restore: str, dump: Path) -> str:
    """SQL that drops every table of the dump (as ``--clean`` would, partitions included)."""
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
    return f"DROP TABLE IF EXISTS {', '.join(names)} CASCADE;\n" if names else ""


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
