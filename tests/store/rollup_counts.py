"""What the report rollups count, read as a new connection sees it (shared by the rollups'
tests)."""

from __future__ import annotations

from swarm_director.db import Database


def rollup_log_total(db: Database) -> int:
    """The logs the rollup counts: its hour rows and its deltas (PostgreSQL's, not folded)."""
    with db.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT (SELECT coalesce(sum(logs), 0) FROM log_volume_hours)"
                " + (SELECT coalesce(sum(logs), 0) FROM log_volume_deltas)"
            ).scalar_one()
        )
