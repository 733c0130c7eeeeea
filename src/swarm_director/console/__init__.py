"""The web console at ``/ui/``: server-rendered pages over the store and ops, and forms that
act through the same store functions as the API (see :mod:`.forms`).

Every page is plain HTML that works without JavaScript; one small script adds live logs.
Security: a login when a token is configured (see :mod:`.auth`), a strict Content-Security-
Policy (scripts, styles and images from this server only, no inline code), no framing,
``nosniff``, and every value escaped by Jinja2's autoescaping.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, redirect, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from swarm_director.config import Settings
from swarm_director.console import (
    admin_pages,
    auth,
    documents,
    history_pages,
    ops_page,
    pages,
    queue_pages,
    report_pages,
    swarm_actions,
    task_actions,
    task_pages,
)
from swarm_director.console.common import bp, render
from swarm_director.enums import ApiScope
from swarm_director.errors import SwarmError
from swarm_director.web import errors as web_errors

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the
    # console's own form POSTs, and the actions check Origin (see console.forms). No referrer
    # ever leaves for another site either way.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _is_console() -> bool:
    return request.path == "/" or request.path.startswith("/ui")


def _headers(response: Response) -> Response:
    # nosniff on everything; the page policy on the console's responses (the JSON API sets
    # its own content types and is never rendered as a page).
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if _is_console():
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    given = request.form.get("back", "") if request.method == "POST" else ""
    back = given if given and auth.safe_next(given) == given else None
    page = render("error.html", title=title, status=status, message=message, back=back)
    return page, status


def _swarm_error(error: SwarmError) -> tuple[str, int]:
    status = web_errors.swarm_error_response(error).status_code
    if request.method == "POST":  # an action refused: the form's page is where to go back
        title = "Not done"
    else:
        title = "Not found" if status == 404 else "Cannot show this"
    return _error_page(status, title, error.message)


def _http_error(error: HTTPException) -> Response | tuple[str, int]:
    if not _is_console():
        return web_errors.response_for(error)
    status = error.code or 500
    return _error_page(status, error.name, error.description or error.name)


def _unexpected(error: Exception) -> Response | tuple[str, int]:
    if isinstance(error, HTTPException):
        return _http_error(error)
    if isinstance(error, SwarmError):
        return _swarm_error(error)
    response = web_errors.response_for(error)  # logs it; hides driver text
    if request.method == "POST":  # an action: its transaction was rolled back
        message = (
            "The action could not be done (the database may be unavailable); nothing was "
            "changed. Try again."
        )
    else:
        message = "The page could not be built (the database may be unavailable); try again."
    return _error_page(response.status_code, "Something went wrong", message)


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | str | tuple[str, int, dict[str, str]]:
    """The login form: a key (an API key, any scope, or SWARM_API_TOKEN) opens a session."""
    target = auth.safe_next(request.values.get("next"))
    if not auth.auth_required():
        return redirect(target)
    error = None
    if current_app.secret_key is None:
        error = (
            "Logging in needs a signing key: the server could not keep one in SWARM_DATA_DIR; "
            "set SWARM_SECRET_KEY."
        )
    elif request.method == "POST":
        if not auth.csrf_ok():
            error = "The form expired; please try again."
        else:
            outcome = auth.try_login(request.form.get("key", ""))
            if not isinstance(outcome, auth.LoginRefused):
                auth.start_session(outcome)
                return redirect(target)
            error = outcome.message
            if outcome.retry_after is not None:
                page = render("login.html", title="Log in", error=error, next=target)
                return page, 429, {"Retry-After": str(outcome.retry_after)}
    # A refused key re-shows the form with the reason (200: browsers log any 4xx page load
    # as a console error, and the form is the answer the person needs).
    return render("login.html", title="Log in", error=error, next=target)


@bp.post("/logout")
def logout() -> BaseResponse | tuple[str, int]:
    """Ends the session on the server, for every copy of its cookie (a POST with the CSRF
    token: a link elsewhere cannot log you out)."""
    if not auth.csrf_ok():
        return _error_page(400, "Cannot log out", "The form expired; reload the page.")
    auth.end_session()
    return redirect(url_for("console.login"))


def init_app(app: Flask, settings: Settings) -> None:
    """Serve the console at ``/ui/`` (``/`` redirects there) with its security headers."""
    auth.init_app(app, settings)
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    app.after_request(_headers)
    app.add_url_rule("/", "root", lambda: redirect(url_for("console.overview")))

    @app.context_processor
    def _console_context() -> dict[str, object]:
        if not _is_console():
            return {}
        needs_login = auth.auth_required()
        return {
            "needs_login": needs_login,
            "logged_in": needs_login and auth.logged_in(),
            "is_admin": auth.allows(ApiScope.ADMIN),
            "can_write": auth.allows(ApiScope.WRITE),
            "csrf_token": auth.csrf_token,
        }


# Registered once, at import: a blueprint cannot change after its first registration.
bp.before_request(auth.require_login)
bp.register_error_handler(SwarmError, _swarm_error)
bp.register_error_handler(Exception, _unexpected)
__all__ = [
    "admin_pages",
    "documents",
    "history_pages",
    "init_app",
    "ops_page",
    "pages",
    "queue_pages",
    "report_pages",
    "swarm_actions",
    "task_actions",
    "task_pages",
]
