"""Per-app state and the request's unit of work.

A handler asks for :func:`session`; the first call opens it — a read-only session for GET and
HEAD, a write transaction otherwise (:meth:`Database.transaction`). A read-only request reads
from the place :meth:`Database.reads_for` picks once per request (:func:`read_place`): a read
replica when one is configured, close enough behind and, when the request carries the
``X-Swarm-LSN`` of an earlier write, has replayed it; else the primary. Writes, claims and
whatever a handler runs on ``database().engine`` stay on the primary, and a successful write
answers with the ``X-Swarm-LSN`` its reader sends back. The hottest reads ask for
:func:`connection` instead: on GET and HEAD a Core connection with no ORM session and no
transaction (:meth:`Database.statement_reads`), for reads whose statements need not agree
with one another. After the handler, a successful response commits the unit of work exactly
once; an error response or an exception rolls it back. A failed commit turns into an error
response, so a client never sees success for data that was not stored.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from swarm_director.config import Settings
from swarm_director.db import Database
from swarm_director.db.reads import ReadPlace
from swarm_director.errors import ValidationError
from swarm_director.schemas.consistency import POSITION_HEADER, format_position, parse_position
from swarm_director.web.errors import response_for
from swarm_director.web.throttle import FailureCounter

EXTENSION = "swarm_director"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AuthState:
    """Per-app memory of :mod:`swarm_director.web.auth`: whether keys exist, when each key's
    last use was written, and recent failures per address and key id."""

    failures: FailureCounter
    keys_exist: bool = False
    checked_at: float = float("-inf")
    last_written: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class AppState:
    """What the app was built with."""

    settings: Settings
    database: Database
    token: bytes | None
    """The API token as bytes (None: not set)."""
    auth: AuthState


def state(app: Flask | None = None) -> AppState:
    """The state of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    result: AppState = target.extensions[EXTENSION]
    return result


def database(app: Flask | None = None) -> Database:
    """The app's database."""
    return state(app).database


@dataclass
class _UnitOfWork:
    stack: ExitStack
    read_only: bool
    connection: Connection | None = None
    session: Session | None = None
    place: ReadPlace | None = None


class _Rollback(Exception):
    """Thrown into the transaction context to make it roll back."""


def _unit_of_work() -> _UnitOfWork:
    uow: _UnitOfWork | None = g.get("_sd_uow")
    if uow is None:
        uow = g._sd_uow = _UnitOfWork(ExitStack(), request.method in _READ_METHODS)
    return uow


def read_place() -> ReadPlace:
    """Where this request's reads go (chosen on first use, then kept for the request): the
    primary or a replica (see :meth:`Database.reads_for`). Raises ValidationError (422) for a
    malformed ``X-Swarm-LSN``."""
    uow = _unit_of_work()
    if uow.place is None:
        uow.place = database().reads_for(_min_position())
    return uow.place


def _min_position() -> int | None:
    raw = request.headers.get(POSITION_HEADER)
    if raw is None:
        return None
    try:
        return parse_position(raw)
    except ValueError as error:
        raise ValidationError(str(error), {"fields": {POSITION_HEADER: str(error)}}) from None


def session() -> Session:
    """The request's session, opened on first use (read-only for GET/HEAD)."""
    uow = _unit_of_work()
    if uow.session is None:
        context = read_place().session() if uow.read_only else database().transaction()
        uow.session = uow.stack.enter_context(context)
    return uow.session


def connection() -> Connection:
    """The request's connection for Core statements: on GET/HEAD one without a session or a
    transaction, each statement on its own; the write transaction's otherwise."""
    uow = _unit_of_work()
    if not uow.read_only:
        return session().connection()
    if uow.connection is None:
        uow.connection = uow.stack.enter_context(read_place().statements())
    return uow.connection


def _rollback(uow: _UnitOfWork) -> None:
    error = _Rollback()
    try:
        uow.stack.__exit__(_Rollback, error, None)
    except Exception:  # e.g. the connection died; the response is already decided
        current_app.logger.warning("rollback failed", exc_info=True)


def _finish(response: Response) -> Response:
    uow: _UnitOfWork | None = g.pop("_sd_uow", None)
    if uow is not None:
        if response.status_code >= 400:
            _rollback(uow)
            return response
        try:
            uow.stack.close()  # leaves the transaction context normally: commit
        except Exception as error:
            return response_for(error)
    if request.method not in _READ_METHODS and response.status_code < 400:
        _add_position(response)
    return response


def _add_position(response: Response) -> None:
    # After the commit (handlers that commit themselves, like claims, have done so too): the
    # position covers this request's writes. Asked only when replicas exist.
    db = database()
    if db.replicas is None:
        return
    try:
        position = db.commit_position()
    except Exception:  # the write is stored; its reader falls back on a stale-tolerant read
        current_app.logger.warning("commit position unavailable", exc_info=True)
        return
    if position is not None:
        response.headers[POSITION_HEADER] = format_position(position)


def _teardown(_error: BaseException | None) -> None:
    # Reached with an open unit of work only when no response was made (an exception escaped
    # every handler); never commit then.
    uow: _UnitOfWork | None = g.pop("_sd_uow", None)
    if uow is not None:
        _rollback(uow)


def init_app(app: Flask, settings: Settings, db: Database) -> None:
    """Attach the settings and database to ``app`` and wire the unit of work."""
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    failures = FailureCounter(settings.auth_fail_limit, settings.auth_fail_window.total_seconds())
    app.extensions[EXTENSION] = AppState(
        settings, db, token.encode() if token else None, AuthState(failures)
    )
    app.after_request(_finish)
    app.teardown_request(_teardown)
