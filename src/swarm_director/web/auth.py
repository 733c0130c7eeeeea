"""Who is calling and what they may do: bearer tokens to principals, routes to scopes.

:func:`authenticate` is the one place a presented secret becomes a :class:`Principal`; the
API's request guard (:mod:`swarm_director.api.guards`) and the console's login call it.
:func:`required_scope` is the one rule that maps a request to the scope it needs; the OpenAPI
document is annotated from the same rule, so the two cannot disagree.

Authentication is on when ``SWARM_API_TOKEN`` is set or once any API key has been created in
the database (creating a key means you want keys checked). The token is the bootstrap admin
key. Whether keys exist is asked at most once a second while there are none, and never again
once there are (keys are revoked, never deleted).

Failed credentials are counted per client address and per key id (:mod:`.throttle`); past
the limit the caller answers 429 with ``Retry-After``. Each failure is logged on the
``swarm_director.auth`` logger with the address, the key id (public) and the reason, never
the secret.
"""

from __future__ import annotations

import hmac
import logging
import posixpath
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask

from swarm_director.db.base import utcnow
from swarm_director.models import ApiScope
from swarm_director.store import keys
from swarm_director.web.context import AuthState, state

#: How often ``last_used_at`` of one key is written at most.
LAST_USED_EVERY_S = 60.0
#: While no key exists, how long that answer is trusted.
NO_KEYS_RECHECK_S = 1.0
ADMIN_PREFIX = "/api/admin/"
#: ``app.extensions`` key of a callable another front door (the console) may register: it
#: returns the Principal of a request that carries no bearer token but is authenticated
#: another way (a console session reading a live log stream), or None. The API's guard asks
#: it, so neither surface imports the other.
SESSION_AUTH = "swarm_director.session_auth"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
log = logging.getLogger("swarm_director.auth")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key's name (``bootstrap`` for ``SWARM_API_TOKEN``)."""

    name: str
    scope: ApiScope
    key_id: str | None = None
    console: bool = False
    """A console session (its cookie, not a bearer token): ``key_id`` is the key it opened with."""


@dataclass(frozen=True)
class Refusal:
    """Why a token was refused: ``unknown``, ``revoked`` or ``expired``."""

    reason: str


BOOTSTRAP = Principal(name="bootstrap", scope=ApiScope.ADMIN)


def normal_path(path: str) -> str:
    """``path`` as the router will read it: repeated slashes collapsed, ``.`` and ``..``
    resolved (``/api//admin/./stats`` is ``/api/admin/stats``); a trailing slash is kept."""
    if not path.startswith("/"):
        path = "/" + path
    normal = posixpath.normpath(path)
    if normal.startswith("//"):  # normpath keeps a leading "//" (POSIX allows it a meaning)
        normal = "/" + normal.lstrip("/")
    if path.endswith("/") and not normal.endswith("/"):
        normal += "/"
    return normal


def required_scope(method: str, path: str) -> ApiScope:
    """The scope a request needs: admin for ``/api/admin/*``, read for reads, write else.
    Decided on the normalised path, so ``/api//admin/stats`` needs admin too."""
    if normal_path(path).startswith(ADMIN_PREFIX):
        return ApiScope.ADMIN
    if method.upper() in _READ_METHODS:
        return ApiScope.READ
    return ApiScope.WRITE


def _auth_state(app: Flask | None) -> AuthState:
    return state(app).auth


def auth_required(app: Flask | None = None) -> bool:
    """True when requests must authenticate (a token is set, or keys exist).

    Raises SQLAlchemyError when the database cannot say whether keys exist (the caller fails
    closed); a database without the ``api_keys`` table has none.
    """
    if state(app).token is not None:
        return True
    auth = _auth_state(app)
    now = time.monotonic()
    if auth.keys_exist or now - auth.checked_at < NO_KEYS_RECHECK_S:
        return auth.keys_exist
    try:
        with state(app).database.statement_reads() as conn:
            exist = keys.any_keys(conn)
    except sa.exc.DBAPIError as error:
        if not _missing_table(error):
            raise
        exist = False
    auth.keys_exist, auth.checked_at = exist, now
    return exist


def _missing_table(error: sa.exc.DBAPIError) -> bool:
    # A schema older than the keys revision: no keys can exist (readiness reports the rest).
    orig = error.orig
    return getattr(orig, "sqlstate", None) == "42P01" or "no such table" in str(orig)


def authenticate(secret: str, app: Flask | None = None) -> Principal | Refusal:
    """The principal ``secret`` stands for (the bootstrap token or a live API key), or a
    :class:`Refusal` saying why not. One indexed query for a key; secrets are compared in
    constant time; the key's ``last_used_at`` is written at most once a minute."""
    token = state(app).token
    given = secret.encode("utf-8", "surrogateescape")
    if token is not None and hmac.compare_digest(given, token):
        return BOOTSTRAP
    if not keys.looks_like_key(secret):
        return Refusal("unknown")
    database = state(app).database
    with database.statement_reads() as conn:
        check = keys.verify_token(conn, secret)
    if not check.ok or check.scope is None or check.name is None or check.key_id is None:
        return Refusal(check.refused or "unknown")
    _note_use(app, check.key_id)
    return Principal(name=check.name, scope=check.scope, key_id=check.key_id)


def _note_use(app: Flask | None, key_id: str) -> None:
    auth = _auth_state(app)
    now = time.monotonic()
    with auth.lock:
        last = auth.last_written.get(key_id)
        if last is not None and now - last < LAST_USED_EVERY_S:
            return
        auth.last_written[key_id] = now
    try:
        with state(app).database.engine.begin() as conn:
            keys.touch_last_used(conn, key_id, utcnow())
    except sa.exc.SQLAlchemyError:
        # Bookkeeping only: a busy database must not turn an authenticated request away.
        with auth.lock:
            auth.last_written.pop(key_id, None)


def _subjects(address: str, key_id: str | None) -> list[str]:
    subjects = [f"address {address}"]
    if key_id is not None:
        subjects.append(f"key {key_id}")
    return subjects


def throttled(address: str, app: Flask | None = None) -> int | None:
    """Seconds the client at ``address`` must wait before its credentials are checked again
    (it failed too often), or None. Asked before checking, so a locked-out address learns
    nothing about its guesses, right or wrong."""
    return _auth_state(app).failures.retry_after(_subjects(address, None))


def note_failure(
    address: str, presented: str, reason: str, via: str, app: Flask | None = None
) -> int | None:
    """Count and log one failed credential from ``address`` (``via``: ``api`` or ``console``).

    Returns seconds to wait when the key id ``presented`` names had already failed too often
    (the caller answers 429 instead of 401), else None. A key id's right secret is never
    refused for this: the secret is 256 random bits, so refusing it would protect nothing
    and would let anyone who has seen a key id (it is public) lock its owner out.
    """
    failures = _auth_state(app).failures
    key_id = keys.key_id_of(presented)
    wait = failures.retry_after(_subjects(address, key_id)[1:])
    reached = failures.failed(_subjects(address, key_id))
    log.warning(
        "authentication failed: via=%s address=%s key_id=%s reason=%s",
        via,
        address,
        key_id or "-",
        reason,
    )
    if reached:
        log.warning(
            "authentication throttled: address=%s key_id=%s after %d failures in %.0f s",
            address,
            key_id or "-",
            failures.limit,
            failures.window_s,
        )
    return wait
