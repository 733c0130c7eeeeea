"""``db maintain``: the maintenance policy, once, for cron or a systemd timer.

Steps: on PostgreSQL, the monthly log partitions of this month and the next ones (and of any
month whose rows wait in the default partition); then backup (with pruning), verify of that
backup (restored into a scratch database and checked, as ``db verify`` does), then log
retention, then history retention, then expiry of old idempotency keys and of ended
console sessions, then optimize. Retention of logs and history runs only after a
successful (and, unless turned off, verified) backup, so rows are never deleted without a
fresh backup holding them (expired keys and sessions are no one's data: they go
regardless). Every step is attempted as far as that rule allows, each failure is reported,
and the run as a whole fails if any step did. A lock (a file lock in the backup folder,
plus a PostgreSQL advisory lock on PostgreSQL) makes a second run exit at once instead of
overlapping the first.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db.base import utcnow
from swarm_director.db.partitions import DEFAULT_MONTHS_AHEAD
from swarm_director.errors import SwarmError
from swarm_director.ops.backup.create import BackupResult, create_backup
from swarm_director.ops.backup.verify import verify_backup
from swarm_director.ops.crypto import age
from swarm_director.ops.errors import MaintenanceLockedError
from swarm_director.ops.optimize import optimize
from swarm_director.ops.progress import Reporter
from swarm_director.ops.retention.expiry import (
    DEFAULT_TTL,
    expire_idempotency_keys,
    prune_console_sessions,
)
from swarm_director.ops.retention.history import prune_history
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.partitions import ensure_log_partitions
from swarm_director.ops.retention.policy import RetentionPolicy
from swarm_director.private_files import PRIVATE_FILE, private_dir
from swarm_director.redact import first_line

#: Key of the PostgreSQL advisory lock (arbitrary, fixed: "SWRM" in ASCII).
ADVISORY_KEY = 0x5357524D
LOCK_NAME = ".maintain.lock"


@dataclass
class MaintenancePolicy:
    """What one ``db maintain`` run does."""

    backup_dir: Path
    keep_last: int | None = 7
    keep_days: float | None = None
    compress: bool = True
    key: bytes | None = None
    recipients: Sequence[age.Recipient] = ()
    """age recipients of the backup and the log archive (preferred over ``key``)."""
    verify: bool = True
    """Verify the new backup in a scratch database."""
    identities: Sequence[age.Identity] | None = None
    """Open the new backup for its verify when it is encrypted to age recipients."""
    retention: RetentionPolicy | None = None
    archive_dir: Path | None = None
    idempotency_ttl: timedelta | None = DEFAULT_TTL
    """Idempotency keys older than this are deleted (None: kept)."""
    history_retention: timedelta | None = None
    """History rows older than this are deleted, after the verified backup (None: kept)."""
    optimize: bool = True
    pg_bin: Path | None = None
    """Folder of pg_dump (None: on PATH)."""
    partitions_ahead: int | None = DEFAULT_MONTHS_AHEAD
    """PostgreSQL: monthly log partitions made ahead of the current month (None: none made)."""


@dataclass
class StepResult:
    name: str
    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class MaintenanceReport:
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "steps": [step.__dict__ for step in self.steps],
        }


#: Called with the new backup's path between backup and verify (tests corrupt it here).
BeforeVerify = Callable[[Path], None]


def run_maintenance(
    engine: Engine,
    policy: MaintenancePolicy,
    *,
    reporter: Reporter | None = None,
    before_verify: BeforeVerify | None = None,
) -> MaintenanceReport:
    """Run ``policy`` once under the maintenance lock; the report lists every step."""
    started = time.perf_counter()
    report = MaintenanceReport()
    with maintenance_lock(engine, policy.backup_dir):
        if policy.partitions_ahead is not None and engine.dialect.name == "postgresql":
            ahead = policy.partitions_ahead
            _step(report, "partitions", lambda: _partitions(engine, ahead))
        made: list[BackupResult] = []
        backed_up = _step(report, "backup", lambda: _backup(engine, policy, reporter, made))
        if backed_up and policy.verify:
            path = made[0].path
            if before_verify is not None:
                before_verify(path)
            backed_up = _step(report, "verify", lambda: _verify(engine, policy, path))
        if policy.retention is not None:
            if backed_up:
                _step(report, "cleanup", lambda: _cleanup(engine, policy, reporter))
            else:
                why = "skipped: no fresh, verified backup holds the logs"
                report.steps.append(StepResult("cleanup", False, why))
        if policy.history_retention is not None:
            if backed_up:
                _step(report, "history", lambda: _prune_history(engine, policy))
            else:
                why = "skipped: no fresh, verified backup holds the history"
                report.steps.append(StepResult("history", False, why))
        if policy.idempotency_ttl is not None:
            ttl = policy.idempotency_ttl
            _step(report, "keys", lambda: _expire_keys(engine, ttl))
        _step(report, "sessions", lambda: _prune_sessions(engine))
        if policy.optimize:
            _step(report, "optimize", lambda: _optimize(engine))
    report.seconds = time.perf_counter() - started
    return report


def _step(report: MaintenanceReport, name: str, action: Any) -> bool:
    try:
        summary, details = action()
    except (SwarmError, sa.exc.SQLAlchemyError, OSError) as error:
        first = first_line(getattr(error, "message", None) or error, fallback=type(error).__name__)
        report.steps.append(StepResult(name, False, f"failed: {first}"))
        return False
    report.steps.append(StepResult(name, True, summary, details))
    return True


def _backup(
    engine: Engine,
    policy: MaintenancePolicy,
    reporter: Reporter | None,
    made: list[BackupResult],
) -> tuple[str, dict[str, Any]]:
    result = create_backup(
        engine,
        policy.backup_dir,
        compress=policy.compress,
        key=policy.key,
        recipients=policy.recipients,
        keep_last=policy.keep_last,
        keep_days=policy.keep_days,
        kind="scheduled",
        reporter=reporter,
        pg_bin=policy.pg_bin,
    )
    pruned = f", pruned {len(result.pruned)}" if result.pruned else ""
    leftovers = len(result.removed_leftovers)
    if leftovers:
        pruned += f", removed {leftovers} leftover files of a killed backup"
    made.append(result)
    return f"{result.path}{pruned}", result.as_dict()


def _verify(engine: Engine, policy: MaintenancePolicy, path: Path) -> tuple[str, dict[str, Any]]:
    # Recorded in the audit trail as a verify event (ok or failed, with the reason).
    report = verify_backup(
        path,
        target=engine.url,
        key=policy.key,
        identities=policy.identities,
        audit_engine=engine,
        pg_bin=policy.pg_bin,
    )
    return f"{path.name} restores and checks clean", report.as_dict()


def _archive(policy: MaintenancePolicy, table: str) -> Path | None:
    """Where this run archives the rows of ``table`` it deletes (None: no archive)."""
    if policy.archive_dir is None:
        return None
    stamp = utcnow().strftime("%Y%m%dT%H%M%S_%fZ")
    return policy.archive_dir / f"{table}-{stamp}.jsonl.gz"


def _cleanup(
    engine: Engine, policy: MaintenancePolicy, reporter: Reporter | None
) -> tuple[str, dict[str, Any]]:
    assert policy.retention is not None
    archive = _archive(policy, "agent_logs")
    result = cleanup_logs(
        engine, policy.retention, archive=archive, recipients=policy.recipients, reporter=reporter
    )
    return f"deleted {result.deleted} logs", result.as_dict()


def _prune_history(engine: Engine, policy: MaintenancePolicy) -> tuple[str, dict[str, Any]]:
    assert policy.history_retention is not None
    archive = _archive(policy, "history")
    result = prune_history(
        engine, policy.history_retention, archive=archive, recipients=policy.recipients
    )
    return f"deleted {result.deleted} history rows", result.as_dict()


def _partitions(engine: Engine, ahead: int) -> tuple[str, dict[str, Any]]:
    created = ensure_log_partitions(engine, months_ahead=ahead, now=utcnow())
    summary = f"created {', '.join(created)}" if created else "all present"
    return summary, {"created": created, "months_ahead": ahead}


def _expire_keys(engine: Engine, ttl: timedelta) -> tuple[str, dict[str, Any]]:
    deleted = expire_idempotency_keys(engine, ttl)
    return f"expired {deleted} idempotency keys", {"expired": deleted, "ttl_s": ttl.total_seconds()}


def _prune_sessions(engine: Engine) -> tuple[str, dict[str, Any]]:
    deleted = prune_console_sessions(engine)
    return f"deleted {deleted} ended console sessions", {"deleted": deleted}


def _optimize(engine: Engine) -> tuple[str, dict[str, Any]]:
    result = optimize(engine)
    return f"{result.bytes_before} -> {result.bytes_after} bytes", result.as_dict()


@contextmanager
def maintenance_lock(engine: Engine, directory: Path) -> Iterator[None]:
    """Hold the maintenance lock, or raise :class:`MaintenanceLockedError` at once."""
    private_dir(directory)  # the backup folder: private like the backups in it
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MaintenanceLockedError(
                f"another db maintain run holds {path}; not starting a second one"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                got = conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}
                ).scalar_one()
                if not got:
                    raise MaintenanceLockedError(
                        "another db maintain run holds the database's maintenance lock"
                    )
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
        else:
            yield
    finally:
        os.close(fd)  # closing releases the flock
