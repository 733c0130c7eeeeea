"""The write half of bulk log ingest: validated rows into ``agent_logs`` in one driver call.

PostgreSQL gets the batch through ``COPY ... FROM STDIN`` (text format, built here as one
string: about three times the rows per second of a pipelined ``executemany``, and the same
transaction as the caller's, so the batch is still all or nothing). SQLite gets one
``executemany`` of an INSERT compiled once. On both, values are converted to exactly what the
ORM would store (tests pin the fast converters to SQLAlchemy's bind processors).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from pydantic_core import PydanticCustomError, to_json
from sqlalchemy import Connection, Dialect, Table, insert
from sqlalchemy.exc import IntegrityError

from swarm_director.db import utcnow
from swarm_director.errors import ValidationError
from swarm_director.models import AgentLog, LogLevel
from swarm_director.models.error_group import count_inserted_errors
from swarm_director.models.log_pattern import error_pattern, pattern_of
from swarm_director.models.rollup import count_inserted
from swarm_director.schemas import json_limits
from swarm_director.schemas.common import storable_error
from swarm_director.schemas.logs import LogRow

#: Columns written by a bulk insert, in parameter order; ``metadata`` is the column name.
COLUMNS = (
    "task_id",
    "agent_type",
    "message",
    "timestamp",
    "log_level",
    "agent_id",
    "session_id",
    "metadata",
    "created_at",
    "error_pattern",
)
_DEFAULT_LEVEL = LogLevel.INFO.value
_ERROR_LEVEL = LogLevel.ERROR.value
#: COPY text format: backslash, tab, newline and carriage return are escaped; \\N is NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"
#: Fields without any of these characters go into COPY text as they are (most of them).
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
#: In encoded JSON: a non-finite number or a NUL, or text that merely looks like one.
_SUSPECT = re.compile(rb"NaN|Infinity|\\u0000")


class WriteConflict(Exception):
    """A foreign key of the batch no longer exists (its task or agent was deleted meanwhile)."""


def _identity(value: Any) -> Any:
    return value


def sqlite_timestamp(value: datetime) -> str:
    """What UTCDateTime + SQLite's DATETIME make of a timestamp ("YYYY-MM-DD HH:MM:SS.ffffff",
    naive UTC), at a fraction of the cost; tests pin the two to the same output."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def sqlite_json(value: Any) -> str:
    """A JSON document as text, by pydantic-core's encoder (faster than json.dumps: see
    docs/benchmarks.md, "Bulk log ingest"); the text differs only in whitespace and in not
    escaping non-ASCII: the same document."""
    return to_json(value).decode()


def copy_timestamp(value: datetime) -> str:
    """A timestamp as COPY text for ``timestamptz``; naive values are UTC (as everywhere)."""
    text = value.isoformat(" ")
    return text + "+00:00" if value.tzinfo is None else text


def bind_processor(dialect: Dialect, column: str) -> Callable[[Any], Any]:
    """What SQLAlchemy applies to a value of ``agent_logs.<column>`` before the driver."""
    type_ = cast(Table, AgentLog.__table__).c[column].type.dialect_impl(dialect)
    return type_.bind_processor(dialect) or _identity


@dataclass(frozen=True, slots=True)
class _BulkInsert:
    """The SQLite INSERT, compiled once, with its parameter order."""

    sql: str
    #: Parameter names in placeholder order for positional paramstyles, else None.
    positional: tuple[str, ...] | None

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> _BulkInsert:
        table = cast(Table, AgentLog.__table__)
        compiled = insert(table).compile(dialect=dialect, column_keys=list(COLUMNS))
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        if order is not None and set(order) != set(COLUMNS):
            raise RuntimeError(f"unexpected INSERT parameters {order!r}")
        return cls(str(compiled), order)


_BULK_INSERTS: dict[tuple[str, str], _BulkInsert] = {}


def _bulk_insert(dialect: Dialect) -> _BulkInsert:
    key = (dialect.name, dialect.driver)
    if key not in _BULK_INSERTS:
        _BULK_INSERTS[key] = _BulkInsert.for_dialect(dialect)
    return _BULK_INSERTS[key]


def encode_documents(batch: Sequence[LogRow]) -> list[str | None]:
    """Each row's ``metadata`` as JSON text (None where absent).

    Raises ValidationError naming the first row whose document cannot be stored (a NaN or
    infinite number, a NUL character) or passes the free-form JSON limits (bytes of this
    text, values counted on it: see ``schemas.json_limits``). Only documents whose text
    contains ``NaN``, ``Infinity`` or ``\\u0000`` are walked, so the checks cost one regex
    scan and a length (a count for long texts only).
    """
    documents: list[str | None] = []
    suspect = _SUSPECT.search
    limits = json_limits.current()
    for index, row in enumerate(batch):
        doc = row.get("metadata")
        if doc is None:
            documents.append(None)
            continue
        text = to_json(doc, inf_nan_mode="constants")
        problem = storable_error(doc) if suspect(text) else None
        if problem is None:
            try:
                limits.check_text(text)
            except PydanticCustomError as error:
                problem = error.message()
        if problem is not None:
            field = f"[{index}].metadata"
            raise ValidationError(
                f"invalid log record at {field}: {problem}", details={"fields": {field: problem}}
            )
        documents.append(text.decode())
    return documents


def write_rows(
    connection: Connection,
    task_id: int,
    batch: Sequence[LogRow],
    documents: Sequence[str | None],
) -> int:
    """Insert validated rows of one task in the connection's transaction; returns how many.

    ``documents`` are the rows' metadata from :func:`encode_documents`. Rows without a
    timestamp get the time of the call. Raises WriteConflict when a foreign key fails (the
    caller checked them, so only a concurrent delete gets there).
    """
    if connection.dialect.name == "postgresql":
        return _copy_rows(connection, task_id, batch, documents)
    return _executemany(connection, task_id, batch, documents)


def _executemany(
    connection: Connection,
    task_id: int,
    batch: Sequence[LogRow],
    documents: Sequence[str | None],
) -> int:
    bulk = _bulk_insert(connection.dialect)
    now = utcnow()
    stored_now = sqlite_timestamp(now)
    stamp = sqlite_timestamp
    patterns = [pattern_of(row.get("log_level", _DEFAULT_LEVEL), row["message"]) for row in batch]
    params: list[Any] = [
        (
            task_id,
            row["agent_type"],
            row["message"],
            stored_now if (ts := row.get("timestamp")) is None else stamp(ts),
            row.get("log_level", _DEFAULT_LEVEL),
            row.get("agent_id"),
            row.get("session_id"),
            doc,
            stored_now,
            pattern,
        )
        for row, doc, pattern in zip(batch, documents, patterns, strict=True)
    ]
    if bulk.positional is None:
        params = [dict(zip(COLUMNS, values, strict=True)) for values in params]
    elif bulk.positional != COLUMNS:
        where = [COLUMNS.index(name) for name in bulk.positional]
        params = [tuple(values[i] for i in where) for values in params]
    try:
        connection.exec_driver_sql(bulk.sql, params)
    except IntegrityError:
        raise WriteConflict from None
    count_inserted(
        connection,
        ((row.get("timestamp") or now, row.get("log_level", _DEFAULT_LEVEL)) for row in batch),
    )
    count_inserted_errors(
        connection,
        (
            (row.get("timestamp") or now, pattern)
            for row, pattern in zip(batch, patterns, strict=True)
            if pattern is not None
        ),
    )
    return len(params)


def copy_text(task_id: int, batch: Sequence[LogRow], documents: Sequence[str | None]) -> str:
    """The batch as COPY text-format lines in :data:`COLUMNS` order."""
    now = copy_timestamp(utcnow())
    prefix = f"{task_id}\t"
    created = f"\t{now}\t"
    escapes, special, null, stamp = _COPY_ESCAPES, _COPY_SPECIAL.search, _NULL, copy_timestamp
    error, pattern = _ERROR_LEVEL, error_pattern
    return "".join(
        prefix
        + "\t".join(
            (
                kind if not special(kind := row["agent_type"]) else kind.translate(escapes),
                text if not special(text := row["message"]) else text.translate(escapes),
                now if (ts := row.get("timestamp")) is None else stamp(ts),
                level := row.get("log_level", _DEFAULT_LEVEL),
                null if (agent := row.get("agent_id")) is None else str(agent),
                null
                if (sid := row.get("session_id")) is None
                else sid
                if not special(sid)
                else sid.translate(escapes),
                # Encoded JSON has no raw control characters; only backslashes to double.
                null if doc is None else doc.replace("\\", "\\\\"),
            )
        )
        + created
        # A pattern has no control characters (white space is folded); backslashes doubled.
        + (null if level != error else pattern(row["message"]).replace("\\", "\\\\"))
        + "\n"
        for row, doc in zip(batch, documents, strict=True)
    )


def _copy_sql(dialect: Dialect) -> str:
    # Names from the models' metadata, quoted by the dialect ("timestamp" is a keyword).
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in COLUMNS)
    return f"COPY {quote(cast(Table, AgentLog.__table__).name)} ({columns}) FROM STDIN"


def _copy_rows(
    connection: Connection,
    task_id: int,
    batch: Sequence[LogRow],
    documents: Sequence[str | None],
) -> int:
    import psycopg  # the PostgreSQL driver; only imported when one is in use

    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    data = copy_text(task_id, batch, documents)
    statement = _copy_sql(connection.dialect)
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(data)
    except psycopg.errors.ForeignKeyViolation:
        raise WriteConflict from None
    except psycopg.Error as error:
        # The driver's own error, outside SQLAlchemy's execute(): wrap it as SQLAlchemy would
        # (a read-only database is then a 503, bad data a 422), never an unhandled 500.
        raise sa.exc.DBAPIError.instance(statement, None, error, psycopg.Error) from None
    return len(batch)
