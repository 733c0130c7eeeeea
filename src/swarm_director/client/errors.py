"""Typed errors of the HTTP client, built from the API's one error shape.

Every error response of the API is ``{"error": {"code", "message", "details"}}``; the client
raises the subclass of :class:`ClientError` that matches the HTTP status, carrying those three
fields and the status. An answer that is not in that shape (a proxy's HTML page) still becomes
a :class:`ClientError`, with the code ``http_<status>`` and the first line of the body.
"""

from __future__ import annotations

import json
from typing import Any


class ClientError(Exception):
    """Base of every error the client raises; also used for statuses with no subclass."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{status or '-'} {code}: {message}")
        self.code = code
        """Stable machine-readable code, e.g. ``not_found``, ``validation_error``."""
        self.message = message
        """What went wrong, in a sentence."""
        self.details = details or {}
        """Extra facts; for validation errors ``details["fields"]`` names each bad field."""
        self.status = status
        """HTTP status, or None when no response arrived."""


class BadRequestError(ClientError):
    """400: the request is malformed (bad JSON, unknown parameter shape)."""


class UnauthorizedError(ClientError):
    """401: no token, or one the server does not know."""


class ForbiddenError(ClientError):
    """403: the token is known but lacks the scope this operation needs."""


class NotFoundError(ClientError):
    """404: no such resource."""


class ConflictError(ClientError):
    """409: the change conflicts with the stored data (duplicate name, illegal status change,
    an ``expected_status`` that no longer holds, an idempotency key reused for another body)."""


class ValidationError(ClientError):
    """422: invalid fields; :attr:`fields` maps each one to its problem."""

    @property
    def fields(self) -> dict[str, str]:
        """``{"field path": "problem"}`` from ``details["fields"]``."""
        fields = self.details.get("fields")
        return dict(fields) if isinstance(fields, dict) else {}


class TooManyRequestsError(ClientError):
    """429: the server asks to slow down (retried when ``Retry-After`` allows)."""


class UnavailableError(ClientError):
    """502/503/504: the service or its database cannot answer now; try again later."""


class ServerUnreachableError(UnavailableError):
    """No HTTP answer at all: connection refused or reset, or a timeout."""


_BY_STATUS: dict[int, type[ClientError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: TooManyRequestsError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}


def error_for(status: int, content: bytes) -> ClientError:
    """The error for an error response with ``status`` and body ``content``."""
    cls = _BY_STATUS.get(status, ClientError)
    try:
        body = json.loads(content)
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details")
        return cls(code, message, details if isinstance(details, dict) else {}, status)
    except (ValueError, TypeError, KeyError):
        text = content.decode("utf-8", "replace").strip()
        first = text.splitlines()[0][:200] if text else f"HTTP {status} without a body"
        return cls(f"http_{status}", first, {}, status)


def unreachable(error: Exception) -> ServerUnreachableError:
    """The error for a request that got no HTTP answer (``error`` is httpx's)."""
    detail = str(error).splitlines()[0] if str(error) else ""
    message = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return ServerUnreachableError("unreachable", message, {})
