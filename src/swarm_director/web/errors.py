"""Every error the app returns, in one JSON shape: ``{"error": {"code", "message", "details"}}``.

Domain errors from the store keep their code and message (they are written to be shown);
anything unexpected becomes a 500 with a fixed message, and the traceback goes to the server
log only — never SQL, never a stack trace in a response.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, current_app
from flask_openapi3.types import ResponseDict
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from swarm_director.errors import (
    ConflictError,
    DatabaseUnavailableError,
    NotFoundError,
    SchemaError,
    SwarmError,
    ValidationError,
)
from swarm_director.redact import first_line
from swarm_director.schemas.common import fields_from_pydantic


class ErrorBody(BaseModel):
    """What went wrong: a stable machine-readable code and a sentence for people."""

    code: str = Field(description="Stable error code, e.g. not_found, validation_error.")
    message: str = Field(description="What went wrong, safe to show to a user.")
    details: dict[str, Any] = Field(
        description="Extra facts; for validation_error, `fields` maps each invalid field "
        "to its problem."
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


#: HTTP status → error code for errors raised by Flask/Werkzeug themselves.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}

#: Messages for Werkzeug's errors (its own descriptions talk about "the browser").
_HTTP_MESSAGES = {
    400: "The request is malformed.",
    401: "Authentication required: send `Authorization: Bearer <token>`.",
    404: "No such resource.",
    405: "This method is not allowed on this resource.",
    413: "The request body is larger than the server accepts.",
    415: "The request body must be JSON (Content-Type: application/json).",
    500: "Internal server error.",
}

#: Retry-After (seconds) of a 503 for an unreachable or read-only database.
UNAVAILABLE_RETRY_AFTER_S = 1

#: Documented on every operation: the errors any request may get.
COMMON_ERROR_RESPONSES: ResponseDict = {
    400: ErrorResponse,
    401: ErrorResponse,
    404: ErrorResponse,
    413: ErrorResponse,
    415: ErrorResponse,
    422: ErrorResponse,
    500: ErrorResponse,
    503: ErrorResponse,
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """A JSON error response in the one shape."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    text = json.dumps(body, separators=(",", ":"), default=str)
    return Response(text, status=status, mimetype="application/json")


def _status_of(error: SwarmError) -> int:
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):  # includes InvalidTransitionError
        return 409
    if isinstance(error, ValidationError):
        return 422
    if isinstance(error, DatabaseUnavailableError | SchemaError):
        return 503
    return 400


def swarm_error_response(error: SwarmError) -> Response:
    """The response for a domain error raised by the store."""
    return error_response(_status_of(error), error.code, error.message, error.details)


def validation_error_response(error: PydanticValidationError) -> Response:
    """422 naming each invalid field (used for flask-openapi3's request validation)."""
    fields = fields_from_pydantic(error)
    if len(fields) == 1:  # the problem in the message too, e.g. the limit a field passed
        ((name, problem),) = fields.items()
        message = f"Invalid field {name}: {problem}."
    else:
        message = f"Invalid fields: {', '.join(fields) or 'request'}."
    return error_response(422, "validation_error", message, {"fields": fields})


def _http_error(error: HTTPException) -> Response:
    if error.response is not None:  # abort(response), e.g. flask-openapi3's validation
        return error.response  # type: ignore[return-value]
    status = error.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    message = getattr(error, "sd_message", None) or _HTTP_MESSAGES.get(status) or error.name
    response = error_response(status, code, message)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value  # e.g. Allow on 405
    return response


def database_error_response(error: Exception) -> Response:
    """Database errors the store did not turn into domain errors: a safe message only."""
    if isinstance(error, sa_exc.IntegrityError):
        current_app.logger.warning("integrity error not mapped by the store: %s", first_line(error))
        return error_response(409, "conflict", "The change conflicts with existing data.")
    if isinstance(error, sa_exc.DataError):
        current_app.logger.warning("data error not mapped by the store: %s", first_line(error))
        return error_response(
            422,
            "validation_error",
            "A value cannot be stored: a number out of range or text with NUL characters.",
        )
    current_app.logger.error("database unavailable: %s", first_line(error))
    return unavailable_response("The database is unavailable; try again shortly.")


def unavailable_response(message: str) -> Response:
    """503 ``unavailable`` with ``Retry-After``, for a database that cannot be reached.

    A lost connection (a restart, a failover in progress) is renewed for the next request, so
    a retry soon is worth it; clients wait at least this long.
    """
    response = error_response(503, "unavailable", message)
    response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
    return response


#: SQLSTATEs that mean "not now" although the driver files them under InternalError:
#: 25006 read_only_sql_transaction (a hot standby after a failover, a read-only database).
_UNAVAILABLE_SQLSTATES = frozenset({"25006"})


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    state = getattr(error.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _unexpected(error: Exception) -> Response:
    current_app.logger.exception("unhandled error", exc_info=error)
    return error_response(500, "internal_error", "Internal server error.")


def response_for(error: BaseException) -> Response:
    """The error response for any exception (used by the handlers and by the commit step)."""
    if isinstance(error, SwarmError):
        return swarm_error_response(error)
    if isinstance(error, HTTPException):
        return _http_error(error)
    if isinstance(error, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.OperationalError):
        return database_error_response(error)
    if isinstance(error, sa_exc.DBAPIError) and (
        error.connection_invalidated or _sqlstate(error) in _UNAVAILABLE_SQLSTATES
    ):
        return database_error_response(error)
    if isinstance(error, Exception):
        return _unexpected(error)
    raise error


def init_app(app: Flask) -> None:
    """Route every exception through :func:`response_for`."""
    app.register_error_handler(Exception, response_for)
