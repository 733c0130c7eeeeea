"""Reading every row of an export (logs, tasks or history matching a filter) in a stable
order, rendered as JSON lines or CSV by the database itself.

An export reads millions of rows; converting each value in Python (a timestamp to text, a
JSON document to text, a CSV cell quoted) cost several times the read itself. So the database
writes the text of each line: PostgreSQL in ``COPY (SELECT ...) TO STDOUT`` (its own CSV
writer for CSV, a concatenation for JSON lines), SQLite with one ``printf`` a row, read with
the driver's own cursor; Python only moves bytes. Both write the same text: timestamps as UTC
ISO 8601 ending in ``Z`` (SQLite always with six fractional digits, PostgreSQL without
trailing zeros); in CSV every text is quoted (a quote inside doubled), numbers and timestamps
are bare, so a null (an empty cell) differs from an empty text (``""``); JSON documents are
nested in JSON lines and their text in CSV (whitespace inside a document may differ between
the two databases; the document is the same).

Order: logs by (timestamp, id), the index ``ix_agent_logs_timestamp_id`` (on PostgreSQL the
month partitions in order, no sort); tasks and history by id. The whole export is one
statement in the caller's transaction: one snapshot of the database, whatever is committed
meanwhile, and constant memory (the driver hands rows over as they come). ``cursor`` resumes
after a row: the id of the last row received (for logs, the position of that row in
(timestamp, id) order).
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Generator, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Dialect,
    Enum,
    Integer,
    Select,
    String,
    Text,
    case,
    cast,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.compiler import SQLCompiler

from swarm_director.db import Base
from swarm_director.db.types import UTCDateTime
from swarm_director.errors import ValidationError
from swarm_director.models import AgentLog, HistoryEntry, Task
from swarm_director.models.fulltext import LOGS, TASKS, FullTextSource
from swarm_director.schemas.export import (
    FILTERS,
    ITEMS,
    ExportField,
    ExportFormat,
    ExportKind,
    FieldKind,
    TaskExportFilter,
)
from swarm_director.schemas.filters import FilterModel
from swarm_director.store._common import core_connection, fits
from swarm_director.store.driver_reads import compiled, driver_statement, sqlite_rows
from swarm_director.store.filtering import FilterRules
from swarm_director.store.history import HISTORY_FILTERS
from swarm_director.store.logs import LOG_FILTERS
from swarm_director.store.pagination import Ordering, after_values, in_order
from swarm_director.store.search import live_matching
from swarm_director.store.tasks import TASK_FILTERS

#: Rows per chunk handed to the caller (bytes of text, or a batch of rows).
CHUNK_ROWS = 10_000
# JSON lines through COPY: CSV format (text format would double every backslash of the JSON)
# with a quote and delimiter byte no JSON text holds (PostgreSQL writes control characters in
# JSON strings as \uXXXX), so no line is ever quoted.
_PG_JSONL_COPY = "(FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"

TASK_EXPORT_FILTERS = FilterRules(
    TaskExportFilter,
    **TASK_FILTERS.rules,
    since=(Task.created_at, operator.ge),
    until=(Task.created_at, operator.lt),
)


@dataclass(frozen=True)
class _Source:
    model: type[Base]
    ordering: Ordering
    rules: FilterRules[Any]
    searched: FullTextSource | None


_SOURCES = {
    ExportKind.LOGS: _Source(
        AgentLog, Ordering("export:logs", (AgentLog.timestamp, AgentLog.id)), LOG_FILTERS, LOGS
    ),
    ExportKind.TASKS: _Source(
        Task, Ordering("export:tasks", (Task.id,)), TASK_EXPORT_FILTERS, TASKS
    ),
    ExportKind.HISTORY: _Source(
        HistoryEntry, Ordering("export:history", (HistoryEntry.id,)), HISTORY_FILTERS, None
    ),
}


class Chunk(NamedTuple):
    """Some rows of an export as text (UTF-8), and how many rows it holds."""

    data: bytes
    rows: int


def _kind_of(column: ColumnElement[Any]) -> FieldKind:
    if isinstance(column.type, UTCDateTime):
        return FieldKind.TIMESTAMP
    if isinstance(column.type, JSON):
        return FieldKind.JSON
    if isinstance(column.type, Integer):
        return FieldKind.INTEGER
    return FieldKind.TEXT


@functools.cache
def _columns(kind: ExportKind) -> tuple[tuple[ExportField, ColumnElement[Any]], ...]:
    table = _SOURCES[kind].model.__table__
    columns = (table.c[name] for name in ITEMS[kind].model_fields)
    return tuple((ExportField(name=str(c.name), kind=_kind_of(c)), c) for c in columns)


def export_fields(kind: ExportKind) -> tuple[ExportField, ...]:
    """The fields of an exported row of ``kind``, in order: the API item's fields."""
    return tuple(field for field, _column in _columns(kind))


def parse_filter(kind: ExportKind, given: FilterModel | Mapping[str, Any] | None) -> FilterModel:
    """``given`` as the filter of ``kind`` (:data:`~swarm_director.schemas.export.FILTERS`);
    raises ValidationError naming each bad or unknown filter."""
    if isinstance(given, FilterModel) and not isinstance(given, FILTERS[kind]):
        given = given.model_dump(include=set(given.given()))
    parsed: FilterModel = _SOURCES[kind].rules.parse(given)
    return parsed


@dataclass(frozen=True)
class Export:
    """One export, checked: which rows it reads (:meth:`rows`), in which order."""

    kind: ExportKind
    selected: Select[Any]
    """The matching rows (their ids), unordered."""

    @property
    def fields(self) -> tuple[ExportField, ...]:
        return export_fields(self.kind)

    @property
    def ordering(self) -> Ordering:
        """The export's order: the key columns each row is sorted by."""
        return _SOURCES[self.kind].ordering

    def rows(self, *columns: Any) -> Select[Any]:
        """``columns`` of the export's rows, in the export's order."""
        stmt = self.selected.with_only_columns(*columns, maintain_column_froms=True)
        return in_order(stmt, self.ordering)

    def narrowed(self, condition: ColumnElement[bool]) -> Export:
        """The export of only those of its rows that meet ``condition``."""
        return Export(self.kind, self.selected.where(condition))


def prepare_export(
    source: Session | Connection,
    kind: ExportKind,
    export_filter: FilterModel | Mapping[str, Any] | None = None,
    *,
    cursor: int | None = None,
) -> Export:
    """The export of the rows of ``kind`` matching ``export_filter`` (after ``cursor``, the id
    of the last row a previous export gave). Raises ValidationError for a bad filter, search
    text or cursor (for logs, also a cursor naming a row that is no longer stored)."""
    kind = ExportKind(kind)
    spec = _SOURCES[kind]
    wanted = parse_filter(kind, export_filter)
    connection = core_connection(source)
    id_column: InstrumentedAttribute[int] = spec.model.id  # type: ignore[attr-defined]
    stmt = spec.rules.apply(select(id_column), wanted)
    q = getattr(wanted, "q", None)
    if q is not None and spec.searched is not None:
        stmt = stmt.where(live_matching(spec.searched, id_column, q, connection.dialect.name))
    if cursor is not None:
        stmt = stmt.where(after_values(spec.ordering, _cursor_key(connection, kind, cursor)))
    return Export(kind, stmt)


def _invalid_cursor(problem: str) -> ValidationError:
    return ValidationError(f"invalid cursor: {problem}", details={"fields": {"cursor": problem}})


def _cursor_key(connection: Connection, kind: ExportKind, cursor: int) -> tuple[Any, ...]:
    """The ordering key of the row with id ``cursor``."""
    if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 1:
        raise _invalid_cursor("must be the id of the last row received, a positive integer")
    if not fits(_SOURCES[kind].model.id.type, cursor):  # type: ignore[attr-defined]
        raise _invalid_cursor(f"no row has the id {cursor}")
    if kind != ExportKind.LOGS:
        return (cursor,)
    stamp = connection.execute(
        select(AgentLog.timestamp).where(AgentLog.id == cursor)
    ).scalar_one_or_none()
    if stamp is None:
        raise _invalid_cursor(
            f"no log has the id {cursor} (deleted since?); resume with since= the timestamp "
            "of the last row received"
        )
    return (stamp, cursor)


def count_rows(connection: Connection, export: Export) -> int:
    """How many rows the export holds (now: rows may come and go before it is read)."""
    counted = select(func.count()).select_from(export.selected.subquery())
    return int(connection.execute(counted).scalar_one())


def text_chunks(connection: Connection, export: Export, fmt: ExportFormat) -> Generator[Chunk]:
    """The export as JSON lines or CSV (with a header line), in chunks of whole lines, read
    by one statement on ``connection``."""
    fmt = ExportFormat(fmt)
    if fmt is ExportFormat.PARQUET:
        raise ValueError("Parquet is parsed from the CSV text (ops.export_file)")
    if connection.dialect.name == "postgresql":
        return _pg_chunks(connection, export, fmt)
    return _sqlite_chunks(connection, export, fmt)


def _sqlite_chunks(connection: Connection, export: Export, fmt: ExportFormat) -> Generator[Chunk]:
    if fmt is ExportFormat.CSV:
        yield Chunk(header_line(export), 0)
    lines = sqlite_rows(connection, _sqlite_line(export, fmt), CHUNK_ROWS, bytes)
    first = operator.itemgetter(0)
    with closing(lines):
        for rows in lines:  # each line ends in its newline (the printf's template)
            yield Chunk(b"".join(map(first, rows)), len(rows))


#: The first statement of an export's transaction on PostgreSQL: ISO dates, whatever the
#: server's DateStyle.
PG_EXPORT_SESSION = "SET LOCAL datestyle = 'ISO'"


def _pg_session(connection: Connection) -> None:
    connection.exec_driver_sql(PG_EXPORT_SESSION)


def _pg_chunks(connection: Connection, export: Export, fmt: ExportFormat) -> Generator[Chunk]:
    sql, params = pg_copy(export, fmt, connection.dialect)
    _pg_session(connection)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(sql, params) as copy:
        buffer, rows = bytearray(), 0
        if fmt is ExportFormat.CSV:  # the header: the first line, not a row
            buffer += copy.read()
        for line in copy:  # one row a line
            buffer += line
            rows += 1
            if rows == CHUNK_ROWS:
                yield Chunk(bytes(buffer), rows)
                buffer.clear()
                rows = 0
        if buffer:
            yield Chunk(bytes(buffer), rows)


# -- rendering ---------------------------------------------------------------------------------
# Lines are built by concatenation in the statement: PostgreSQL's row_to_json and SQLite's
# json_object (which parses every document again) cost about twice as much per row.


def _text(value: Any) -> ColumnElement[str]:
    return type_coerce(value, String)


def _iso_text(column: ColumnElement[Any], dialect: str) -> ColumnElement[str]:
    """The timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffff`` in UTC, without its ``Z`` (PostgreSQL
    leaves out trailing zeros of the fraction)."""
    if dialect == "postgresql":
        # The text of a timestamp without zone: independent of the session's time zone, and
        # a fifth of what to_char costs (the session's DateStyle is ISO: _pg_session).
        stamp: ColumnElement[Any] = cast(func.timezone("UTC", column), Text)
    else:
        stamp = column  # "YYYY-MM-DD HH:MM:SS.ffffff", naive UTC (db.types.UTCDateTime)
    return _text(func.replace(stamp, " ", "T"))


def _timestamp(column: ColumnElement[Any], dialect: str) -> ColumnElement[str]:
    """ISO 8601 in UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (see :func:`_iso_text`)."""
    return _iso_text(column, dialect) + "Z"


def _value(column: ColumnElement[Any], kind: FieldKind, dialect: str) -> ColumnElement[Any]:
    """The field as a plain value: integers as they are, everything else as text (JSON
    documents as stored: the store only ever writes compact, valid JSON)."""
    if kind is FieldKind.TIMESTAMP:
        return _timestamp(column, dialect)
    if kind is FieldKind.JSON:
        return cast(column, Text) if dialect == "postgresql" else _text(column)
    if kind is FieldKind.INTEGER:
        return column
    return _text(column)  # no Enum conversion on the way out: the stored text


def typed_rows(export: Export, dialect: str) -> Select[Any]:
    """The export's rows as plain values, one column per field: integers, text (timestamps
    as ISO 8601 text, JSON documents as their text); None for a null."""
    return export.rows(
        *(_value(c, f.kind, dialect).label(f.name) for f, c in _columns(export.kind))
    )


def _pg_json_pieces(column: ColumnElement[Any], kind: FieldKind) -> list[str | ColumnElement[Any]]:
    """PostgreSQL: the pieces of the field's JSON text (``null`` for a null), literal text
    as ``str``."""
    nullable = getattr(column, "nullable", True)
    if kind is FieldKind.TIMESTAMP:
        if not nullable:
            return ['"', _iso_text(column, "postgresql"), 'Z"']
        value = literal('"') + _timestamp(column, "postgresql") + '"'
    elif kind in (FieldKind.INTEGER, FieldKind.JSON):
        value = cast(column, Text)
    elif isinstance(column.type, Enum):  # lowercase words: nothing to escape
        if not nullable:
            return ['"', column, '"']
        value = literal('"') + _text(column) + '"'
    else:
        value = cast(func.to_json(column), Text)
    return [_text(func.coalesce(value, "null")) if nullable else value]


def _pg_jsonl_line(export: Export) -> ColumnElement[str]:
    # One concat() a row, literal text between the fields merged: a chain of || builds (and
    # copies) the growing line once per piece, and cost about 30 % more server time
    # (docs/benchmarks.md, "Export").
    pieces: list[str | ColumnElement[Any]] = []
    for n, (field, column) in enumerate(_columns(export.kind)):
        pieces.append(("{" if n == 0 else ",") + json.dumps(field.name) + ":")
        pieces += _pg_json_pieces(column, field.kind)
    pieces.append("}")
    merged: list[ColumnElement[Any]] = []
    text = ""
    for piece in pieces:
        if isinstance(piece, str):
            text += piece
            continue
        if text:
            merged.append(literal(text))
            text = ""
        merged.append(piece)
    merged.append(literal(text))
    return _text(func.concat(*merged))


#: A printf precision that keeps a whole text (SQLite's texts are shorter than this).
_WHOLE = 2_147_483_647


def _sqlite_piece(
    column: ColumnElement[Any], kind: FieldKind, fmt: ExportFormat
) -> tuple[str, list[ColumnElement[Any]]]:
    """The ``printf`` placeholders of a field in a SQLite line and their arguments (``%s``
    of a null is an empty text)."""
    nullable = getattr(column, "nullable", True)
    enum = isinstance(column.type, Enum) and not nullable  # lowercase words: nothing to escape
    stamp = _text(func.replace(column, " ", "T"))  # "YYYY-MM-DD HH:MM:SS.ffffff", UTC
    if fmt is ExportFormat.CSV:
        if kind is FieldKind.INTEGER:
            return "%s", [column]
        if kind is FieldKind.TIMESTAMP:
            return ("%sZ", [stamp]) if not nullable else ("%s", [stamp + "Z"])
        if enum:
            return '"%s"', [column]
        # %w doubles each ", in printf itself: a replace() a field cost 8 % more CPU.
        if not nullable:
            return '"%w"', [column]
        # A null is an empty cell, a text "...": the quotes and the text printed whole or not
        # at all by a precision (a CASE is a few instructions; '"' || ... || '"' cost more).
        whole = case((column.is_(None), 0), else_=_WHOLE)
        return "%.*s%.*w%.*s", [whole, literal('"'), whole, column, whole, literal('"')]
    if kind is FieldKind.TIMESTAMP:
        if not nullable:
            return '"%sZ"', [stamp]
        return "%s", [_text(func.ifnull(literal('"') + stamp + 'Z"', "null"))]
    if kind in (FieldKind.INTEGER, FieldKind.JSON):  # documents as stored: compact, valid
        return "%s", [column if not nullable else _text(func.ifnull(column, "null"))]
    if enum:
        return '"%s"', [column]
    return "%s", [_text(func.json_quote(column))]  # null for a null


def _sqlite_line(export: Export, fmt: ExportFormat) -> Select[Any]:
    # One printf a row: a chain of || copies the growing line once per piece, and cost a
    # sixth more (measured in CPU time, docs/benchmarks.md, "Export").
    pieces, args = [], []
    for field, column in _columns(export.kind):
        piece, arguments = _sqlite_piece(column, field.kind, fmt)
        pieces.append(piece if fmt is ExportFormat.CSV else f"{json.dumps(field.name)}:{piece}")
        args += arguments
    line = ",".join(pieces) if fmt is ExportFormat.CSV else "{" + ",".join(pieces) + "}"
    template = line + "\n"
    return export.rows(_text(func.printf(template, *args)))


def header_line(export: Export) -> bytes:
    """The first line of the export's CSV: the field names."""
    return (",".join(f.name for f in export.fields) + "\n").encode()


def line_statement(export: Export, fmt: ExportFormat, dialect: Dialect) -> SQLCompiler:
    """SQLite: the statement reading the export's lines of ``fmt``, one text a row (no CSV
    header), compiled."""
    return compiled(_sqlite_line(export, fmt), dialect)


def pg_copy(
    export: Export, fmt: ExportFormat, dialect: Dialect, *, header: bool = True
) -> tuple[str, dict[str, Any]]:
    """The ``COPY ... TO STDOUT`` statement of the export and its parameters (psycopg binds
    them on the client for COPY); ``header``: CSV begins with the field names."""
    if fmt is ExportFormat.JSONL:
        stmt, options = export.rows(_pg_jsonl_line(export)), _PG_JSONL_COPY
    else:
        text = [f.name for f in export.fields if f.kind in (FieldKind.TEXT, FieldKind.JSON)]
        quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in text)
        stmt, options = (
            typed_rows(export, "postgresql"),
            f"(FORMAT csv{', HEADER' if header else ''}, FORCE_QUOTE ({quoted}))",
        )
    sql, params = driver_statement(compiled(stmt, dialect))
    return f"COPY ({sql}) TO STDOUT {options}", params
