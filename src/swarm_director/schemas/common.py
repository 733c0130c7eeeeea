"""Building blocks shared by every schema module.

Three kinds of models per entity:

* ``XCreate`` — the body that creates one; unknown fields are an error (``extra="forbid"``).
* ``XUpdate`` — PATCH semantics: every field optional, only the fields sent are applied
  (``model_dump(exclude_unset=True)``); a field that cannot be empty rejects an explicit null.
* ``XOut`` — what a caller reads back; built from an ORM object with ``model_validate(obj)``.

The ``metadata`` column is the ORM attribute ``meta`` (``metadata`` is reserved by SQLAlchemy's
declarative base); schemas call the field ``metadata`` everywhere, and the output models read
it from ``meta`` (see :data:`METADATA_OUT`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError, to_json

from swarm_director.schemas import json_limits

T = TypeVar("T")

#: Largest id of an ``Integer`` primary key (PostgreSQL ``integer``): a larger number cannot
#: name a row, and PostgreSQL refuses to even compare one with such a column.
MAX_ID = 2**31 - 1
#: Largest id of a ``BigInteger`` primary key (agent logs, messages).
MAX_BIG_ID = 2**63 - 1
#: Bounds for free text, in characters.
SHORT_TEXT = 10_000
LONG_TEXT = 1_000_000
#: Longest search query (``q=``), in characters.
MAX_SEARCH_CHARS = 500


def _reject_bool(value: Any) -> Any:
    # pydantic's lax mode turns true into 1; an id of ``true`` is a client bug, not id 1.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _reject_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null_not_allowed", "may not be null")
    return value


def _drop_null_from_schema(schema: dict[str, Any]) -> None:
    # Patch fields accept null only to detect it; the documented type is the non-null one.
    any_of = schema.get("anyOf")
    if not any_of:
        return
    rest = [s for s in any_of if s != {"type": "null"}]
    del schema["anyOf"]
    if len(rest) == 1:
        schema.update(rest[0])
    else:
        schema["anyOf"] = rest


def _reject_nul(value: str) -> str:
    # PostgreSQL text (and jsonb) cannot hold U+0000; refuse it alike on every database.
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "may not contain the NUL character")
    return value


NoNul = AfterValidator(_reject_nul)
"""Appended to every input string type: no NUL characters."""


def _to_utc(value: datetime) -> datetime:
    # Naive timestamps are taken to be UTC already (as the database layer does).
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-14:00 is a valid ISO 8601 text whose UTC time is in year 10000,
        # which no datetime (nor database) holds; pydantic turns only ValueErrors into a 422.
        raise PydanticCustomError(
            "datetime_range", "the time in UTC is outside years 1 to 9999"
        ) from None


_EMAIL_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_EMAIL_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_RE = re.compile(
    rf"(?P<local>{_EMAIL_LOCAL})@(?P<domain>(?:{_EMAIL_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}}))"
)


def _check_email(value: str) -> str:
    # A dot-atom address with an ASCII (or punycode) domain of at least two labels; the length
    # limits are those of SMTP (RFC 5321): local part 64, domain 253, whole path 254.
    match = _EMAIL_RE.fullmatch(value)
    if match is None or len(value) > 254 or len(match["local"]) > 64 or len(match["domain"]) > 253:
        raise PydanticCustomError("email", "value is not a valid email address")
    return value


# The bounds come before the validator: so they stay in the JSON schema (the OpenAPI document);
# after a function validator pydantic writes them as "gt"/"le", which are not JSON Schema.
PositiveId = Annotated[int, Field(gt=0, le=MAX_ID), BeforeValidator(_reject_bool)]
"""A row id: a positive integer (booleans are refused)."""

PositiveBigId = Annotated[int, Field(gt=0, le=MAX_BIG_ID), BeforeValidator(_reject_bool)]
"""The id of a row with a ``BigInteger`` key (agent logs, messages)."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
"""A short name or identifier (surrounding spaces removed), 1..100 characters."""

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
"""A required title, 1..200 characters."""

ShortText = Annotated[str, StringConstraints(max_length=SHORT_TEXT), NoNul]
"""Optional free text such as a description or review notes."""

LongText = Annotated[str, StringConstraints(min_length=1, max_length=LONG_TEXT), NoNul]
"""Required body text (draft content, email body, message content)."""

SearchText = Annotated[
    str,
    StringConstraints(max_length=MAX_SEARCH_CHARS),
    NoNul,
    Field(
        description='Full-text search: words and "quoted phrases", all must match (case is '
        "ignored; punctuation separates words). At most 500 characters."
    ),
]
"""A search query as users type it (parsed by :mod:`swarm_director.store.search`)."""

EmailAddress = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_check_email),
    Field(json_schema_extra={"format": "email"}),
]
"""An email address (``local@domain.tld``)."""

UTCTimestamp = Annotated[datetime, AfterValidator(_to_utc)]
"""A timestamp given by a client; naive values are taken as UTC, all come out as UTC."""

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _iso_only(value: Any) -> Any:
    # pydantic reads a number (or numeric text) as Unix time, guessing seconds or milliseconds
    # from its size; the API documents ISO 8601, so `until=0.5` is a client's mistake.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise PydanticCustomError("datetime_type", "Input should be an ISO 8601 date-time")
    return value


ISOTimestamp = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_to_utc)]
"""A timestamp in a query string: ISO 8601 text only (numbers are refused), as UTC."""


def _walk(document: dict[str, JsonValue]) -> int:
    """How many values ``document`` holds (itself and keys not counted); raises the pydantic
    error of the first value that cannot be stored."""
    # NaN and Infinity are not JSON (PostgreSQL's jsonb refuses them; SQLite would keep text no
    # JSON parser reads) and jsonb cannot hold U+0000 in a string. Checked here rather than
    # through the allow_inf_nan setting, which does not reach JsonValue in every container.
    pending: list[Any] = [document]
    values = -1
    while pending:
        value = pending.pop()
        values += 1
        if isinstance(value, dict):
            pending.extend(value.values())
            for key in value:
                if "\x00" in key:
                    raise PydanticCustomError("string_nul", "may not contain the NUL character")
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise PydanticCustomError("finite_number", "JSON numbers must be finite")
        elif isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("string_nul", "may not contain the NUL character")
    return values


def _check_free_form(document: dict[str, JsonValue]) -> dict[str, JsonValue]:
    # Storable, and within what one free-form value may cost (see json_limits): the values
    # counted on the walk the storability check makes anyway, the bytes on its compact JSON.
    limits = json_limits.current()
    limits.check_items(_walk(document))
    limits.check_bytes(len(to_json(document)))
    return document


JSONObject = Annotated[dict[str, JsonValue], AfterValidator(_check_free_form)]
"""A free-form JSON object (metadata, config): finite numbers only, so it stores the same on
SQLite and PostgreSQL, and within :mod:`~swarm_director.schemas.json_limits`."""

UncheckedJSONObject = dict[str, JsonValue]
"""A JSON object whose storability (finite numbers, no NUL) and limits its user checks itself:
bulk log ingest checks the encoded text of each document instead of walking it (see
``store.log_ingest.encode_documents``), then :func:`storable_error` only for suspects."""


def storable_error(document: dict[str, JsonValue]) -> str | None:
    """Why ``document`` cannot be stored (the message :data:`JSONObject` gives), or None."""
    try:
        _walk(document)
    except PydanticCustomError as error:
        return error.message()
    return None


StoredJSON = dict[str, Any]
"""A JSON object read back from the database: checked when it was written, not again on the way
out (re-validating every document of a 50-row page cost more than the query)."""

Patch = Annotated[
    T | None, AfterValidator(_reject_null), Field(json_schema_extra=_drop_null_from_schema)
]
"""A PATCH field for a column that cannot be empty: it may be left out, but not sent as null."""

METADATA_OUT: Any = Field(
    default=None,
    validation_alias=AliasChoices("meta", "metadata"),
    description="Free-form JSON object stored with the row.",
)
"""Field spec of ``metadata`` in output models (read from the ORM attribute ``meta``)."""


def _admits_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(
        isinstance(option, dict) and _admits_null(option)
        for option in (*schema.get("anyOf", ()), *schema.get("oneOf", ()))
    )


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    # A PATCH field is left out to keep the value, and refuses null (see Patch); pydantic still
    # writes its Python default as "default": null, which such a schema refuses, so validators
    # of the OpenAPI document (openapi-spec-validator) and generated clients reject it. The
    # field being optional is what "not in required" already says.
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None and not _admits_null(prop):
            del prop["default"]


class InputModel(BaseModel):
    """Base of request bodies: unknown fields and non-finite numbers are errors."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, json_schema_extra=_drop_null_defaults
    )


class OutputModel(BaseModel):
    """Base of response bodies, built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel, Generic[T]):
    """One page of a list: the items and the cursor of the next page (null on the last)."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= to get the next page; null when this page is the last."
    )


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a field path: ``("cc", 2)`` → ``"cc[2]"``,
    ``(17, "log_level")`` → ``"[17].log_level"``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "body"


def fields_from_pydantic(exc: PydanticValidationError, prefix: str = "") -> dict[str, str]:
    """``{field path: message}`` for every error in ``exc`` (first message wins per field)."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        key = prefix + field_path(error["loc"])
        fields.setdefault(key, error["msg"])
    return fields


def utc(value: datetime) -> AwareDatetime:
    """``value`` as timezone-aware UTC (naive values are taken as UTC)."""
    return _to_utc(value)
