"""Run a write once per client key: a retry with the same key gets the first result back.

The key row is inserted *before* the guarded work, in the same transaction. A concurrent
retry with the same key therefore waits on the unique constraint (PostgreSQL) or on the write
lock (SQLite) until the first attempt commits or rolls back, then either replays the committed
result or does the work itself. The same key with a different body is a ConflictError.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from swarm_director.errors import ConflictError, ValidationError
from swarm_director.models import IdempotencyKey

#: Longest key accepted (the column's width).
MAX_KEY_LENGTH = 200


def _canonical(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return value


def request_hash(body: Any) -> str:
    """sha256 of the body's canonical JSON (keys sorted), as 64 hex digits."""
    if isinstance(body, list | tuple):
        body = [_canonical(item) for item in body]
    text = json.dumps(_canonical(body), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def check_key(key: str) -> str:
    """``key`` if it is 1-200 printable ASCII characters, else ValidationError."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        message = f"must be 1-{MAX_KEY_LENGTH} printable ASCII characters"
        raise ValidationError(
            f"invalid idempotency key: {message}", details={"fields": {"idempotency_key": message}}
        )
    return key


def _stored(session: Session, scope: str, key: str) -> IdempotencyKey | None:
    stmt = select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def _replay(row: IdempotencyKey, digest: str) -> dict[str, Any]:
    if row.request_hash != digest:
        raise ConflictError(
            "idempotency key already used with a different request body",
            details={"idempotency_key": row.key},
        )
    return dict(row.result)


def run_once(
    session: Session,
    scope: str,
    key: str,
    body: Any,
    work: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """``(result, replayed)``: ``work()``'s result, or the stored one for a repeated key.

    ``scope`` names what is guarded (e.g. ``logs:task:42``); ``body`` is the request as the
    client sent it (hashed to tell a true retry from a key reused for something else).
    Raises ValidationError for a malformed key and ConflictError for a reused one.
    """
    check_key(key)
    digest = request_hash(body)
    existing = _stored(session, scope, key)
    if existing is not None:
        return _replay(existing, digest), True
    row = IdempotencyKey(scope=scope, key=key, request_hash=digest, result={})
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # A concurrent attempt with the same key committed first: answer with its result.
        winner = _stored(session, scope, key)
        if winner is None:  # it rolled back after all; our savepoint is gone, so retry once
            return run_once(session, scope, key, body, work)
        return _replay(winner, digest), True
    result = work()
    row.result = result
    session.flush()
    return result, False
