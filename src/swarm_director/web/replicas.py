"""The read replicas as people see them: on `/api/ready` and the console's operations page."""

from __future__ import annotations

from swarm_director.db import Database
from swarm_director.schemas.health import ReplicaOut


def replica_rows(db: Database) -> list[ReplicaOut]:
    """The read replicas of ``db`` with their lag, as this process last measured it."""
    if db.replicas is None:
        return []
    limit = db.replicas.max_lag_s
    return [
        ReplicaOut(
            url=status.name,
            state=status.state(limit),
            lag_s=None if status.lag_s is None else round(status.lag_s, 3),
            lag_bytes=status.lag_bytes,
            replay_paused=status.replay_paused,
            error=status.error,
        )
        for status in db.replicas.statuses()
    ]
