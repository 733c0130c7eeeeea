"""Checks every request passes before a handler runs: credentials and scope, body size, body
type, how many JSON values the body holds, JSON syntax.

They run in that order, so an unauthenticated client learns nothing else, and a body is never
read — let alone parsed — when it is too large or not JSON.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import BadRequest

from swarm_director.schemas import json_limits
from swarm_director.schemas.common import field_path
from swarm_director.web import auth
from swarm_director.web.context import state
from swarm_director.web.errors import error_response, unavailable_response

#: Reachable without a token: load balancers and probes call it.
PUBLIC_PATHS = frozenset({"/api/health"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


_REFUSED = {
    "missing": "Authentication required: send `Authorization: Bearer <token>`.",
    "unknown": "The bearer token is not a valid API key or token.",
    "revoked": "The API key was revoked.",
    "expired": "The API key has expired.",
}


def _unauthorized(reason: str) -> Response:
    # The message never repeats the presented token.
    response = error_response(401, "unauthorized", _REFUSED[reason], {"reason": reason})
    response.headers["WWW-Authenticate"] = 'Bearer realm="swarm-director"'
    return response


def _too_many_failures(wait: int) -> Response:
    response = error_response(
        429,
        "too_many_requests",
        f"Too many failed credentials; try again in {wait} s.",
        {"retry_after_s": wait},
    )
    response.headers["Retry-After"] = str(wait)
    return response


_NO_CREDENTIAL_CHECK = "The database is unreachable; credentials cannot be checked."


def _check_auth() -> Response | None:
    path = auth.normal_path(request.path)
    if path in PUBLIC_PATHS:
        return None
    try:
        if not auth.auth_required():
            return None
    except sa.exc.SQLAlchemyError:
        current_app.logger.warning("cannot tell whether API keys exist", exc_info=True)
        return unavailable_response(_NO_CREDENTIAL_CHECK)
    given = _bearer_token()
    if given is None:
        other_door = current_app.extensions.get(auth.SESSION_AUTH)
        principal = other_door() if other_door is not None else None
        if principal is None:
            return _unauthorized("missing")
        g.principal = principal
        return None
    address = request.remote_addr or "unknown"
    wait = auth.throttled(address)
    if wait is not None:
        return _too_many_failures(wait)
    try:
        outcome = auth.authenticate(given)
    except sa.exc.SQLAlchemyError:
        current_app.logger.warning("API key lookup failed", exc_info=True)
        return unavailable_response(_NO_CREDENTIAL_CHECK)
    if isinstance(outcome, auth.Refusal):
        wait = auth.note_failure(address, given, outcome.reason, "api")
        return _too_many_failures(wait) if wait is not None else _unauthorized(outcome.reason)
    needed = auth.required_scope(request.method, path)
    if not outcome.scope.grants(needed):
        return error_response(
            403,
            "forbidden",
            f"The API key {outcome.name!r} has scope {outcome.scope.value}; "
            f"this request needs {needed.value}.",
            {"scope": outcome.scope.value, "required_scope": needed.value},
        )
    g.principal = outcome
    return None


def _too_large(size: str, limit: int) -> Response:
    return error_response(
        413,
        "payload_too_large",
        f"The request body is {size}; the limit is {limit} bytes.",
        {"limit_bytes": limit},
    )


def _too_many_values(data: bytes) -> Response | None:
    # Parsing is what costs (60 to 100 bytes per value whatever its text), so the values are
    # counted on the bytes first; see schemas.json_limits.
    limit = state().settings.max_request_values
    found = json_limits.values_over(data, limit)
    if found is None:
        return None
    where = field_path(json_limits.where_count_passes(data, limit))
    at = "" if where == "body" else f" (the count passed it in {where})"
    return error_response(
        413,
        "payload_too_large",
        f"The request body holds more than {limit} JSON values{at}; the limit is "
        f"SWARM_MAX_REQUEST_VALUES. A free-form object such as metadata may hold at most "
        f"{state().settings.max_json_items} values (SWARM_MAX_JSON_ITEMS).",
        {
            "limit": "SWARM_MAX_REQUEST_VALUES",
            "limit_values": limit,
            "values_at_least": found,
            "field": where,
        },
    )


def _check_body() -> Response | None:
    if request.routing_exception is not None:
        return None  # 404/405 take precedence; the body is never read
    limit = state().settings.max_request_bytes
    length = request.content_length
    if length is not None and length > limit:
        return _too_large(f"{length} bytes", limit)
    if request.method not in _BODY_METHODS:
        return None
    # A chunked body (no length): the stream is capped at limit + 1 bytes (see init_app), so
    # reading it costs at most that much and a body of limit + 1 bytes means "too large".
    if length is None and len(request.get_data(cache=True)) > limit:
        return _too_large("larger than that", limit)
    if not request.is_json:
        return error_response(
            415,
            "unsupported_media_type",
            "The request body must be JSON (Content-Type: application/json).",
        )
    refused = _too_many_values(request.get_data(cache=True))
    if refused is not None:
        return refused
    try:
        # Parsed once here; flask-openapi3 reads the cached result.
        request.get_json()
    except RecursionError:
        return error_response(400, "bad_request", "The JSON body is nested too deeply.")
    except BadRequest:
        return error_response(400, "bad_request", "The request body is not valid JSON.")
    return None


def _guard() -> Response | None:
    # The API's rules; other paths (the console at /ui) have their own.
    path = auth.normal_path(request.path)
    if path != "/api" and not path.startswith("/api/"):
        return None
    return _check_auth() or _check_body()


def _apply_json_limits() -> None:
    # The schemas read the free-form JSON limits from a context variable (they are shared with
    # agents calling the store in-process, who get the defaults); this server's settings apply
    # to its requests, and the next request of the thread starts from the defaults again.
    settings = state().settings
    g.json_limits_token = json_limits.set_current(
        json_limits.JSONLimits(settings.max_json_bytes, settings.max_json_items)
    )


def _reset_json_limits(_error: BaseException | None) -> None:
    token = g.pop("json_limits_token", None)
    if token is not None:
        json_limits.reset_current(token)


def init_app(app: Flask) -> None:
    """Run the guards before every request; cap the body stream at the configured size."""
    # Werkzeug stops reading a body without Content-Length (chunked) after this many bytes;
    # one past the limit tells "exactly at the limit" from "over it".
    app.config["MAX_CONTENT_LENGTH"] = state(app).settings.max_request_bytes + 1
    app.before_request(_apply_json_limits)
    app.before_request(_guard)
    app.teardown_request(_reset_json_limits)
