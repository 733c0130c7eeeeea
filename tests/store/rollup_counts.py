"""What the report rollups count, read as a new connection sees it (shared by the rollups'
tests)."""

from __future__ import annotations

from swarm_director.db import Database


def _one(db: Database, sql: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.exec_driver_sql(sql).scalar_one())


def rollup_log_total(db: Database) -> int:
    """The logs the rollup counts: its hour rows and its deltas (PostgreSQL's, not folded)."""
    return _one(
        db,
        "SELECT (SELECT coalesce(sum(logs), 0) FROM log_volume_hours)"
        " + (SELECT coalesce(sum(logs), 0) FROM log_volume_deltas)",
    )


def stored_logs(db: Database) -> int:
    """The rows of ``agent_logs``: what the rollup's log total must equal."""
    return _one(db, "SELECT count(*) FROM agent_logs")


def delta_rows(db: Database) -> int:
    """The delta rows of both rollups not yet folded."""
    return _one(
        db,
        "SELECT (SELECT count(*) FROM log_volume_deltas)"
        " + (SELECT count(*) FROM task_count_deltas)",
    )
