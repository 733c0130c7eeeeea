"""Console sessions: start one, check one, end one.

The cookie carries a random session id (256 bits); the table stores only its SHA-256, so a
copy of the database holds no cookie that works. Checking a session is one indexed query that
also reads the API key that opened it: a session ends as soon as it is logged out, expires, or
its key is revoked or expires, whichever comes first.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Connection

from swarm_director.db.base import utcnow
from swarm_director.models import ApiKey, ApiScope, ConsoleSession

_SESSIONS: sa.Table = ConsoleSession.__table__  # type: ignore[assignment]
_KEYS: sa.Table = ApiKey.__table__  # type: ignore[assignment]
#: Built once, like the key lookup: it runs on every console page.
_LIVE = (
    sa.select(
        _SESSIONS.c.key_id,
        _KEYS.c.name,
        sa.type_coerce(_KEYS.c.scope, sa.String()).label("scope"),
        _KEYS.c.revoked_at,
        _KEYS.c.expires_at.label("key_expires_at"),
    )
    .select_from(_SESSIONS.outerjoin(_KEYS, _KEYS.c.key_id == _SESSIONS.c.key_id))
    .where(
        _SESSIONS.c.session_hash == sa.bindparam("session_hash"),
        _SESSIONS.c.ended_at.is_(None),
        _SESSIONS.c.expires_at > sa.bindparam("now"),
    )
)


@dataclass(frozen=True)
class LiveSession:
    """A session that still lasts: the key that opened it (``key_id`` None: the bootstrap
    token, whose scope is admin) with the key's name and scope."""

    key_id: str | None
    name: str | None
    scope: ApiScope | None


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


def start_session(
    connection: Connection, key_id: str | None, lifetime: timedelta, now: datetime | None = None
) -> str:
    """Store a new session opened by ``key_id`` (None: the bootstrap token); returns the
    session id for the cookie (shown once, never stored)."""
    session_id = secrets.token_urlsafe(32)
    start = now or utcnow()
    connection.execute(
        sa.insert(_SESSIONS).values(
            session_hash=_hash(session_id),
            key_id=key_id,
            created_at=start,
            expires_at=start + lifetime,
        )
    )
    return session_id


def live_session(
    connection: Connection, session_id: str, now: datetime | None = None
) -> LiveSession | None:
    """The session ``session_id`` names, while it is neither ended nor expired and its API key
    (if one opened it) is neither revoked nor expired; else None."""
    at = now or utcnow()
    row = connection.execute(_LIVE, {"session_hash": _hash(session_id), "now": at}).one_or_none()
    if row is None:
        return None
    if row.key_id is None:
        return LiveSession(key_id=None, name=None, scope=None)
    if row.name is None or row.revoked_at is not None:
        return None
    if row.key_expires_at is not None and row.key_expires_at <= at:
        return None
    return LiveSession(key_id=row.key_id, name=row.name, scope=ApiScope(row.scope))


def end_session(connection: Connection, session_id: str, now: datetime | None = None) -> bool:
    """End the session ``session_id`` (every copy of its cookie); False if it had ended."""
    result = connection.execute(
        sa.update(_SESSIONS)
        .where(_SESSIONS.c.session_hash == _hash(session_id), _SESSIONS.c.ended_at.is_(None))
        .values(ended_at=now or utcnow())
    )
    return bool(result.rowcount)
