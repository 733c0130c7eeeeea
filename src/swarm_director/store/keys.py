"""API keys: create, list, revoke, and verify a presented secret.

A token reads ``sdk_<key id>_<secret>``: the prefix makes a leaked key easy to recognise (and
to scan for); the key id is public and finds the row with one indexed lookup; the secret is
32 random bytes. Only the SHA-256 of the secret is stored. A plain (fast) hash is enough
because the secret has 256 bits of entropy: nobody can guess inputs to test against a stolen
hash, which is what slow password hashes (bcrypt, scrypt) defend against — and they would cost
tens of milliseconds on every request. An HMAC with a server-side pepper was rejected too: it
would add a secret the server must hold without making a 256-bit secret any harder to find.

Creating and revoking a key writes its ``maintenance_events`` row in the same transaction, so
the audit trail and the keys never disagree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from swarm_director.db.base import utcnow
from swarm_director.errors import ConflictError, NotFoundError, ValidationError
from swarm_director.models import (
    ApiKey,
    ApiScope,
    MaintenanceEvent,
    MaintenanceOperation,
    MaintenanceStatus,
)

PREFIX = "sdk_"
_KEY_ID_BYTES = 6
_SECRET_BYTES = 32
_TOKEN = re.compile(r"sdk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_KEY_ID = re.compile(r"sdk_([0-9a-f]{12})_")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_TABLE: sa.Table = ApiKey.__table__  # type: ignore[assignment]
#: Built once: constructing the statement per request cost more than running it. The scope is
#: read as a plain string (no enum processing on the hot path).
_BY_KEY_ID = select(
    _TABLE.c.name,
    _TABLE.c.secret_hash,
    sa.type_coerce(_TABLE.c.scope, sa.String()).label("scope"),
    _TABLE.c.revoked_at,
    _TABLE.c.expires_at,
).where(_TABLE.c.key_id == sa.bindparam("key_id"))


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its token; the token is shown once and never stored."""

    key: ApiKey
    token: str


@dataclass(frozen=True)
class KeyCheck:
    """The outcome of :func:`verify_token`: the key's row values when it is usable, else
    why not (``unknown``, ``revoked`` or ``expired``)."""

    name: str | None = None
    key_id: str | None = None
    scope: ApiScope | None = None
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.refused is None


def looks_like_key(token: str) -> bool:
    """True if ``token`` has the shape of an API key (whether or not it exists)."""
    return _TOKEN.fullmatch(token) is not None


def key_id_of(token: str) -> str | None:
    """The public key id a token names (``sdk_<key id>_...``), whether or not its secret is
    right; None when it does not look like an API key."""
    match = _KEY_ID.match(token)
    return match.group(1) if match is not None else None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _check_name(name: str) -> str:
    if _NAME.fullmatch(name) is None:
        message = "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        raise ValidationError(
            f"invalid key name {name!r}: {message}", {"fields": {"name": message}}
        )
    return name


def _audit(session: Session, operation: MaintenanceOperation, details: dict[str, Any]) -> None:
    now = utcnow()
    session.add(
        MaintenanceEvent(
            operation=operation,
            status=MaintenanceStatus.OK,
            started_at=now,
            finished_at=now,
            details=details,
        )
    )


def create_key(
    session: Session, name: str, scope: ApiScope, *, expires_in: timedelta | None = None
) -> CreatedKey:
    """Create key ``name`` with ``scope``; returns it with its token (shown once).

    Raises ValidationError for a bad name or a non-positive lifetime, ConflictError when the
    name is taken (also by a revoked key: names stay unique so the trail stays readable).
    """
    _check_name(name)
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValidationError("the key's lifetime must be positive", {"fields": {"expires": ""}})
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise ConflictError(f"an API key named {name!r} already exists; choose another name")
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=")
    now = utcnow()
    key = ApiKey(
        name=name,
        key_id=key_id,
        secret_hash=_hash(secret),
        scope=ApiScope(scope),
        expires_at=now + expires_in if expires_in is not None else None,
    )
    session.add(key)
    session.flush()
    _audit(
        session,
        MaintenanceOperation.KEY_CREATE,
        {"name": name, "key_id": key_id, "scope": key.scope.value, "expires_at": _iso(key)},
    )
    return CreatedKey(key=key, token=f"{PREFIX}{key_id}_{secret}")


def _iso(key: ApiKey) -> str | None:
    return key.expires_at.isoformat() if key.expires_at is not None else None


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked and expired ones included, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, name: str) -> ApiKey:
    """Revoke key ``name`` now. Raises NotFoundError, or ConflictError if already revoked."""
    key = session.scalars(select(ApiKey).where(ApiKey.name == name)).one_or_none()
    if key is None:
        raise NotFoundError(f"no API key named {name!r}")
    if key.revoked_at is not None:
        raise ConflictError(
            f"API key {name!r} was already revoked at {key.revoked_at:%Y-%m-%d %H:%M}Z"
        )
    key.revoked_at = utcnow()
    session.flush()
    _audit(
        session,
        MaintenanceOperation.KEY_REVOKE,
        {"name": name, "key_id": key.key_id, "scope": key.scope.value},
    )
    return key


def verify_token(connection: Connection, token: str, now: datetime | None = None) -> KeyCheck:
    """Check a presented token: one indexed lookup by its key id, then a constant-time
    comparison of the secret's hash. Never raises for a bad token."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return KeyCheck(refused="unknown")
    key_id, secret = match.groups()
    row = connection.execute(_BY_KEY_ID, {"key_id": key_id}).one_or_none()
    # The hash is compared even when there is no row, so timing does not tell the two apart.
    stored = row.secret_hash if row is not None else "0" * 64
    if not hmac.compare_digest(_hash(secret), stored) or row is None:
        return KeyCheck(refused="unknown")
    if row.revoked_at is not None:
        return KeyCheck(name=row.name, key_id=key_id, refused="revoked")
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return KeyCheck(name=row.name, key_id=key_id, refused="expired")
    return KeyCheck(name=row.name, key_id=key_id, scope=ApiScope(row.scope))


def touch_last_used(connection: Connection, key_id: str, when: datetime) -> None:
    """Record that key ``key_id`` was used at ``when`` (the caller rate-limits this)."""
    connection.execute(sa.update(_TABLE).where(_TABLE.c.key_id == key_id).values(last_used_at=when))


def any_keys(connection: Connection) -> bool:
    """True when at least one key was ever created (revoked ones count)."""
    return connection.execute(select(_TABLE.c.id).limit(1)).first() is not None


def key_is_live(connection: Connection, key_id: str, now: datetime | None = None) -> bool:
    """True while the key ``key_id`` exists, is not revoked and has not expired (a console
    session opened with it ends as soon as this turns False)."""
    return key_refusal(connection, key_id, now) is None


def key_refusal(connection: Connection, key_id: str, now: datetime | None = None) -> str | None:
    """Why the key ``key_id`` may no longer be used (``unknown``, ``revoked`` or ``expired``),
    or None while it is live. One indexed lookup (a live stream asks every few seconds)."""
    row = connection.execute(_BY_KEY_ID, {"key_id": key_id}).one_or_none()
    if row is None:
        return "unknown"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return "expired"
    return None
