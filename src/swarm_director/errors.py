"""Typed domain errors. The store and ops raise them; the API and CLI map them at the edge."""

from __future__ import annotations

from typing import Any


class SwarmError(Exception):
    """Base of every expected error; its message is safe to show to a user."""

    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ConfigError(SwarmError):
    """The settings cannot be used (e.g. production without DATABASE_URL)."""

    code = "config_error"


class DatabaseUnavailableError(SwarmError):
    """The database cannot be reached or is busy beyond the configured wait."""

    code = "unavailable"


class NotFoundError(SwarmError):
    """The requested row does not exist."""

    code = "not_found"


class ConflictError(SwarmError):
    """The change conflicts with existing data (duplicate name, cycle, ...)."""

    code = "conflict"


class InvalidTransitionError(ConflictError):
    """A status change that the entity's lifecycle does not allow."""

    code = "invalid_transition"


class ValidationError(SwarmError):
    """Input fields are invalid; ``details["fields"]`` maps each field to its problem."""

    code = "validation_error"


class SchemaError(SwarmError):
    """The database schema is not where it must be (behind head, drifted, unknown)."""

    code = "schema_error"
