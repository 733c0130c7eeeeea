"""Checks every request passes before a handler runs: token, body size, body type, JSON syntax.

They run in that order, so an unauthenticated client learns nothing else, and a body is never
read — let alone parsed — when it is too large or not JSON.
"""

from __future__ import annotations

import hmac

from flask import Flask, Response, request
from werkzeug.exceptions import BadRequest

from swarm_director.api.context import state
from swarm_director.api.errors import error_response

#: Reachable without a token: load balancers and probes call it.
PUBLIC_PATHS = frozenset({"/api/health"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _bearer_token() -> bytes | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip().encode("utf-8", "surrogateescape")


def _check_auth() -> Response | None:
    expected = state().token
    if expected is None or request.path in PUBLIC_PATHS:
        return None
    given = _bearer_token()
    # compare_digest takes the same time wherever the first difference is.
    if given is not None and hmac.compare_digest(given, expected):
        return None
    response = error_response(
        401, "unauthorized", "Authentication required: send `Authorization: Bearer <token>`."
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="swarm-director"'
    return response


def _too_large(size: str, limit: int) -> Response:
    return error_response(
        413,
        "payload_too_large",
        f"The request body is {size}; the limit is {limit} bytes.",
        {"limit_bytes": limit},
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
    if request.path != "/api" and not request.path.startswith("/api/"):
        return None
    return _check_auth() or _check_body()


def init_app(app: Flask) -> None:
    """Run the guards before every request; cap the body stream at the configured size."""
    # Werkzeug stops reading a body without Content-Length (chunked) after this many bytes;
    # one past the limit tells "exactly at the limit" from "over it".
    app.config["MAX_CONTENT_LENGTH"] = state(app).settings.max_request_bytes + 1
    app.before_request(_guard)
