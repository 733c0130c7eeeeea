"""Expiry of idempotency keys: what a retried batch ingest is recognised by.

A key only has to outlive the client's retries. Kept forever, ``idempotency_keys`` would grow
by a row per keyed batch; ``db maintain`` deletes keys older than ``--idempotency-ttl``
(default 7 days). A batch retried with a key that has expired is stored again, as new.

Console sessions that were logged out or have expired no longer open anything; ``db maintain``
deletes them too.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db.base import utcnow
from swarm_director.models import ConsoleSession, IdempotencyKey
from swarm_director.ops.dbinfo import table_of

KEYS = table_of(IdempotencyKey)
SESSIONS = table_of(ConsoleSession)
DEFAULT_TTL = timedelta(days=7)
DEFAULT_BATCH = 5000
#: Pause between SQLite delete batches, so that waiting writers get the lock in between.
_SQLITE_YIELD_S = 0.1


def expire_idempotency_keys(
    engine: Engine,
    ttl: timedelta = DEFAULT_TTL,
    *,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Delete the keys created more than ``ttl`` ago; returns how many.

    In short transactions of ``batch_size`` keys (oldest first): a day of busy ingest can leave
    millions of keys, and one delete of them all would hold SQLite's write lock, and the
    service's writers with it, for as long as it ran.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = (now or utcnow()) - ttl
    oldest = (
        sa.select(KEYS.c.id)
        .where(KEYS.c.created_at < cutoff)
        .order_by(KEYS.c.created_at)
        .limit(batch_size)
    )
    statement = sa.delete(KEYS).where(KEYS.c.id.in_(oldest))
    deleted = 0
    while True:
        with engine.begin() as conn:
            count = int(conn.execute(statement).rowcount)
        deleted += count
        if count < batch_size:
            return deleted
        if engine.dialect.name == "sqlite":
            time.sleep(_SQLITE_YIELD_S)


def prune_console_sessions(engine: Engine, *, now: datetime | None = None) -> int:
    """Delete the console sessions that were logged out or have expired; returns how many.

    One statement: a session lasts hours, so there are at most a few thousand of them.
    """
    at = now or utcnow()
    ended = sa.or_(SESSIONS.c.ended_at.is_not(None), SESSIONS.c.expires_at <= at)
    with engine.begin() as conn:
        return int(conn.execute(sa.delete(SESSIONS).where(ended)).rowcount)
