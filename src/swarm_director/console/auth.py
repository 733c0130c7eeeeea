"""Console login: a key typed into a form, then a session kept on the server.

The one place that decides whether a secret opens the console is :func:`try_login`. The
session lives in the ``console_sessions`` table (see :mod:`swarm_director.store.console_sessions`);
the cookie holds no secret of the key: a random session id, a fingerprint of the bootstrap
token when that opened the session (so changing the token ends its sessions), and a CSRF
token for the console's forms. Flask signs the cookie (:func:`session_secret`) but does not
encrypt it. Logging out ends the row, so every copy of the cookie stops working at once, in
every worker and on every server sharing the database.

A session reads what its key's scope may read through the API (:func:`allows`): a ``read``
key's session does not see the admin views (``/api/admin/*``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse

from swarm_director.config import Settings
from swarm_director.enums import ApiScope
from swarm_director.store import console_sessions
from swarm_director.web import auth as web_auth
from swarm_director.web.auth import Principal
from swarm_director.web.context import state

#: Paths whose requests read the session cookie; every other request (the JSON API) skips
#: the signature check entirely. A cookie-authenticated endpoint outside /ui (e.g. a live
#: log stream the console opens) is added here.
SESSION_PATHS = ("/ui/", "/ui")
#: The live log streams the console's pages open with EventSource, which cannot send an
#: Authorization header: a console session may read them (and nothing else of the API).
STREAM_PATH = re.compile(r"/api/(?:tasks/\d+/)?logs/stream")
#: How long a login lasts.
SESSION_SECONDS = 12 * 3600
COOKIE_NAME = "swarm_console"
#: The file in SWARM_DATA_DIR that keeps the generated signing key (when SWARM_SECRET_KEY is
#: unset).
SECRET_FILE = "console-signing.key"  # noqa: S105  (a file name, not a secret)
_SECRET_BYTES = 32
#: Who uses the console when no login is needed (no token, no keys): everyone, like the API.
ANYONE = Principal(name="anyone", scope=ApiScope.ADMIN)
log = logging.getLogger("swarm_director.auth")


def auth_required(app: Flask | None = None) -> bool:
    """True when the console needs a login: the API needs one (a token, or API keys exist)."""
    return web_auth.auth_required(app)


@dataclass(frozen=True)
class LoginRefused:
    """Why a login was refused, for the form; ``retry_after`` (seconds) when the address or
    key id failed too often."""

    message: str
    retry_after: int | None = None


def try_login(secret: str) -> Principal | LoginRefused:
    """Who ``secret`` stands for when it may open the console (any live key: ``read`` is
    enough; the API's own check), else why not. Failures count against the client's address
    and the key id (see :func:`swarm_director.web.auth.note_failure`)."""
    secret = secret.strip()
    if not secret:
        return LoginRefused("Type a key.")
    address = request.remote_addr or "unknown"
    wait = web_auth.throttled(address)
    if wait is None:
        found = web_auth.authenticate(secret)
        if isinstance(found, Principal):
            return found
        wait = web_auth.note_failure(address, secret, found.reason, "console")
        if wait is None:
            return LoginRefused("That key does not open the console.")
    return LoginRefused(f"Too many failed logins; try again in {wait} seconds.", wait)


def session_secret(settings: Settings) -> bytes:
    """The key that signs session cookies: SWARM_SECRET_KEY, else a random key kept in
    ``SWARM_DATA_DIR/console-signing.key`` (made on first use, mode 0600).

    Random, not derived from the API token: a cookie must not let anyone test guesses of the
    token offline. Every worker reads the same file, so a cookie issued by one worker is
    accepted by the others; servers on different machines set SWARM_SECRET_KEY.
    Raises OSError when the file can be neither read nor made.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return stored_secret(settings.data_dir)


def stored_secret(folder: Path) -> bytes:
    """The signing key kept in ``folder`` (created 0700), made once by whichever process
    comes first: written whole to a private temporary file, then linked into place, so no
    process ever reads a half-written key and two never keep different ones."""
    path = folder / SECRET_FILE
    if not path.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".console-signing-")  # 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(_SECRET_BYTES) + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process got there first
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 2 * _SECRET_BYTES:
        raise OSError(f"{path} holds no usable key (delete it to make a new one)")
    return key.encode()


def _signing_key(app: Flask) -> bytes | None:
    # Also without authentication: the console's action forms carry a CSRF token kept in the
    # signed cookie, so an open console needs the key as well (made on its first page).
    settings = state(app).settings
    try:
        return session_secret(settings)
    except OSError as error:
        log.error(
            "cannot keep the console's signing key in %s (%s); set SWARM_SECRET_KEY",
            settings.data_dir,
            error.strerror or error,
        )
        return None


def _fingerprint(key: bytes) -> str:
    secret = current_app.secret_key
    assert isinstance(secret, bytes | str)
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, b"key:" + key, hashlib.sha256).hexdigest()[:32]


def current_principal() -> Principal | None:
    """Who the request's console session stands for (:data:`ANYONE` when no login is
    needed), or None when it carries no live session. One indexed query per request: the
    session's row with its API key, so logging out, expiry and revoking the key all count."""
    if "console_principal" not in g:
        g.console_principal = _session_principal()
    found: Principal | None = g.console_principal
    return found


def _session_principal() -> Principal | None:
    if not auth_required():
        return ANYONE
    session_id = session.get("sid")
    if not isinstance(session_id, str):
        return None
    with state().database.statement_reads() as conn:
        live = console_sessions.live_session(conn, session_id)
    if live is None:
        return None
    if live.key_id is not None and live.name is not None and live.scope is not None:
        return Principal(name=live.name, scope=live.scope, key_id=live.key_id)
    token = state().token
    fingerprint = session.get("key")
    if token is None or not isinstance(fingerprint, str):
        return None
    if not hmac.compare_digest(fingerprint, _fingerprint(token)):
        return None  # opened with another token: the token was changed since
    return web_auth.BOOTSTRAP


def logged_in() -> bool:
    """True when the request carries a live session (or no login is needed)."""
    return current_principal() is not None


def allows(scope: ApiScope) -> bool:
    """True when the session's key may read what needs ``scope`` through the API."""
    principal = current_principal()
    return principal is not None and principal.scope.grants(scope)


def csrf_token() -> str:
    """The session's CSRF token for forms (created on first use)."""
    if current_app.secret_key is None:  # no signed sessions: no form can be trusted
        return ""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok() -> bool:
    """True when the POSTed form carries the session's CSRF token."""
    expected = session.get("csrf")
    given = request.form.get("csrf", "")
    return isinstance(expected, str) and hmac.compare_digest(given.encode(), expected.encode())


def start_session(principal: Principal) -> None:
    """Log the request's browser in as ``principal``: a new session row and a fresh cookie
    (no fixation). The row names an API key by its (public) id; the bootstrap token is named
    by a fingerprint in the cookie."""
    session.clear()
    with state().database.engine.begin() as conn:
        session_id = console_sessions.start_session(
            conn, principal.key_id, timedelta(seconds=SESSION_SECONDS)
        )
    session["sid"] = session_id
    if principal.key_id is None:
        session["key"] = _fingerprint(state().token or b"")
    session["csrf"] = secrets.token_urlsafe(24)
    g.pop("console_principal", None)


def end_session() -> None:
    """Log out: end the session's row (every copy of the cookie stops working) and clear
    this browser's cookie."""
    session_id = session.get("sid")
    if isinstance(session_id, str):
        with state().database.engine.begin() as conn:
            console_sessions.end_session(conn, session_id)
    session.clear()
    g.pop("console_principal", None)


def safe_next(target: str | None) -> str:
    """Where to go after login: a console path, never another site, never a header break."""
    if (
        target
        and target.startswith("/ui/")
        and "\\" not in target
        # CR/LF would end the Location header (Werkzeug refuses with a 500); no other control
        # character or space belongs in a path either: the URL the console makes is quoted.
        and target.isprintable()
        and " " not in target
    ):
        return target
    return url_for("console.overview")


def require_login() -> BaseResponse | None:
    """Before every console request: redirect to the login form unless logged in."""
    if request.endpoint in ("console.login", "console.static") or logged_in():
        return None
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("console.login", next=target))


def _reads_session(path: str) -> bool:
    return path.startswith(SESSION_PATHS) or STREAM_PATH.fullmatch(path) is not None


def stream_principal() -> Principal | None:
    """For a GET of a live log stream: the console session's reader, when the request carries
    a live session (see :data:`STREAM_PATH`); None otherwise (the bearer check applies)."""
    if request.method != "GET" or STREAM_PATH.fullmatch(request.path) is None:
        return None
    if current_app.secret_key is None or not session.get("sid"):
        return None
    principal = current_principal()
    if principal is None:
        return None
    # Read scope whatever the key's: the cookie is a credential for the stream only; the
    # stream counts it per address (console=True) and re-checks its key while it is open.
    return Principal(
        name=principal.name, scope=ApiScope.READ, key_id=principal.key_id, console=True
    )


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, read only on :data:`SESSION_PATHS`, signed with a key
    loaded on the console's first request (:func:`session_secret`)."""

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if app.secret_key is None:
            key = _signing_key(app)
            if key is None:
                return None
            app.secret_key = key  # the same value in every thread: a race only repeats it
        return super().get_signing_serializer(app)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not _reads_session(request.path):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if request.path.startswith(SESSION_PATHS):  # a stream never changes the session
            super().save_session(app, session, response)


def init_app(app: Flask, settings: Settings) -> None:
    """Configure the signed session cookie (HttpOnly, SameSite=Strict)."""
    config: dict[str, Any] = {
        "SESSION_COOKIE_NAME": COOKIE_NAME,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_SECURE": settings.secure_cookies,
        "PERMANENT_SESSION_LIFETIME": SESSION_SECONDS,
    }
    app.config.update(config)
    if settings.secret_key is not None:
        app.secret_key = settings.secret_key.get_secret_value().encode()
    app.session_interface = ConsoleSessions()
    app.extensions[web_auth.SESSION_AUTH] = stream_principal
