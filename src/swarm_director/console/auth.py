"""Console login: a key typed into a form, then a signed session cookie.

The one place that decides whether a secret opens the console is :func:`check_key`. The
session cookie holds no secret: only a fingerprint of the key that opened it (so rotating the
key ends every session), when it was issued, and a CSRF token for the console's forms. Flask
signs it with the app's secret key (:func:`session_secret`) but does not encrypt it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from flask import Flask, Request, Response, current_app, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from werkzeug.wrappers import Response as BaseResponse

from swarm_director.api import auth as api_auth
from swarm_director.api.auth import Principal
from swarm_director.api.context import state
from swarm_director.config import Settings
from swarm_director.enums import ApiScope
from swarm_director.store import keys

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


def auth_required(app: Flask | None = None) -> bool:
    """True when the console needs a login: the API needs one (a token, or API keys exist)."""
    return api_auth.auth_required(app)


def check_key(secret: str) -> Principal | None:
    """Who ``secret`` stands for when it may open the console (any live key: ``read`` is
    enough), else None. The API's own check: the bootstrap token or an API key."""
    secret = secret.strip()
    if not secret:
        return None
    found = api_auth.authenticate(secret)
    return found if isinstance(found, Principal) else None


def session_secret(settings: Settings) -> bytes | None:
    """The key that signs session cookies: SWARM_SECRET_KEY, else one derived from the API
    token (HMAC, so the cookie key never equals the token), else None (no login needed).

    Derived, not random: every gunicorn worker computes the same key, so a cookie issued by
    one worker is accepted by the others.
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if settings.api_token is not None:
        token = settings.api_token.get_secret_value().encode()
        return hmac.new(token, b"swarm-director console session v1", hashlib.sha256).digest()
    return None


def _fingerprint(key: bytes) -> str:
    secret = current_app.secret_key
    assert isinstance(secret, bytes | str)
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, b"key:" + key, hashlib.sha256).hexdigest()[:32]


def logged_in() -> bool:
    """True when the request carries a live session: opened with the current bootstrap token,
    or with an API key that is still neither revoked nor expired (one indexed query)."""
    if not auth_required():
        return True
    issued = session.get("issued")
    if not isinstance(issued, int | float) or time.time() - issued > SESSION_SECONDS:
        return False
    key_id = session.get("key_id")
    if isinstance(key_id, str):
        with state().database.statement_reads() as conn:
            return keys.key_is_live(conn, key_id)
    token = state().token
    fingerprint = session.get("key")
    if token is None or not isinstance(fingerprint, str):
        return False
    return hmac.compare_digest(fingerprint, _fingerprint(token))


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
    """Log the request's browser in as ``principal`` (a fresh session: no fixation). The
    session names an API key by its (public) id; the bootstrap token by a fingerprint."""
    session.clear()
    session["issued"] = int(time.time())
    if principal.key_id is not None:
        session["key_id"] = principal.key_id
    else:
        session["key"] = _fingerprint(state().token or b"")
    session["csrf"] = secrets.token_urlsafe(24)


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
    if current_app.secret_key is None or not session.get("issued") or not logged_in():
        return None
    return Principal(name="console session", scope=ApiScope.READ)


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, read only on :data:`SESSION_PATHS`."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not _reads_session(request.path):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if request.path.startswith(SESSION_PATHS):  # a stream never changes the session
            super().save_session(app, session, response)


def init_app(app: Flask, settings: Settings) -> None:
    """Configure the signed session cookie (HttpOnly, SameSite=Strict)."""
    secret = session_secret(settings)
    config: dict[str, Any] = {
        "SESSION_COOKIE_NAME": COOKIE_NAME,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_SECURE": settings.secure_cookies,
        "PERMANENT_SESSION_LIFETIME": SESSION_SECONDS,
    }
    app.config.update(config)
    if secret is not None:
        app.secret_key = secret
    app.session_interface = ConsoleSessions()
    app.extensions[api_auth.SESSION_AUTH] = stream_principal
