"""Expiry of idempotency keys: what a retried batch ingest is recognised by.

A key only has to outlive the client's retries. Kept forever, ``idempotency_keys`` would grow
by a row per keyed batch; ``db maintain`` deletes keys older than ``--idempotency-ttl``
(default 7 days). A batch retried with a key that has expired is stored again, as new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db.base import utcnow
from swarm_director.models import IdempotencyKey
from swarm_director.ops.dbinfo import table_of

KEYS = table_of(IdempotencyKey)
DEFAULT_TTL = timedelta(days=7)


def expire_idempotency_keys(
    engine: Engine, ttl: timedelta = DEFAULT_TTL, *, now: datetime | None = None
) -> int:
    """Delete the keys created more than ``ttl`` ago, in one transaction; returns how many."""
    cutoff = (now or utcnow()) - ttl
    with engine.begin() as conn:
        result = conn.execute(sa.delete(KEYS).where(KEYS.c.created_at < cutoff))
    return int(result.rowcount)
