"""``db optimize``: refresh planner statistics and give free space back.

SQLite: ``ANALYZE``, ``PRAGMA optimize``, ``VACUUM`` and ``wal_checkpoint(TRUNCATE)``. Before the
``VACUUM`` the file is switched to ``auto_vacuum=INCREMENTAL`` (the switch only takes effect
through a ``VACUUM``), so that later ``cleanup-logs`` runs can return freed pages to the file
system in small steps instead of needing another full ``VACUUM``. ``VACUUM`` rewrites the file
and holds the write lock while it runs: schedule it (``db maintain``) outside busy hours.
PostgreSQL: ``VACUUM (ANALYZE)``, which runs beside normal traffic.
Both first fold the report rollups' deltas into their hour tables (``compact rollups``: one
statement per rollup, beside writers; see :mod:`swarm_director.models.rollup`), so that the
VACUUM finds the folded rows dead and the reports read one row per hour again, then digest
the attempts of the ended hours for the durations report (``digest attempt hours``; see
:mod:`swarm_director.models.attempt_digest`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.models import MaintenanceOperation
from swarm_director.models.rollup import compact
from swarm_director.ops import audit
from swarm_director.ops.dbinfo import database_bytes
from swarm_director.ops.rollup_fold import fold_digests


def checkpoint_wal(conn: sa.Connection) -> None:
    """Copy the WAL into the database and truncate it, blocking writers only briefly.

    A PASSIVE checkpoint first copies what it can while writers carry on; the TRUNCATE that
    follows (which holds the write lock while it runs) then has little left to copy.
    """
    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


@dataclass
class OptimizeReport:
    """Sizes before and after, and what was run."""

    dialect: str
    bytes_before: int
    bytes_after: int = 0
    steps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rollup_hours: int = 0
    """Hour rows of the report rollups that their deltas changed."""
    digested_hours: int = 0
    """Ended hours whose attempts were digested for the durations report."""

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": round(self.seconds, 3)}


def optimize(engine: Engine) -> OptimizeReport:
    """Optimize ``engine``'s database; recorded in the audit trail."""
    started = time.perf_counter()
    report = OptimizeReport(dialect=engine.dialect.name, bytes_before=database_bytes(engine))
    with audit.record(engine, MaintenanceOperation.OPTIMIZE) as details:
        with engine.begin() as conn:
            report.rollup_hours = compact(conn)
        report.steps.append("compact rollups")
        report.digested_hours = fold_digests(engine, batches=1_000_000) or 0
        report.steps.append("digest attempt hours")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if engine.dialect.name == "sqlite":
                for step in ("ANALYZE", "PRAGMA optimize"):
                    conn.exec_driver_sql(step)
                    report.steps.append(step)
                if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one() != 2:
                    conn.exec_driver_sql("PRAGMA auto_vacuum=INCREMENTAL")
                    report.steps.append("PRAGMA auto_vacuum=INCREMENTAL")
                conn.exec_driver_sql("VACUUM")
                report.steps.append("VACUUM")
                checkpoint_wal(conn)
                report.steps.append("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
                report.steps.append("VACUUM (ANALYZE)")
        report.bytes_after = database_bytes(engine)
        details.update(
            bytes_before=report.bytes_before, bytes_after=report.bytes_after, steps=report.steps
        )
    report.seconds = time.perf_counter() - started
    return report
