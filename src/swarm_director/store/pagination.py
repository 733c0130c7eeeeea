"""Keyset (cursor) pagination shared by every list function.

A page is fetched with ``ORDER BY k1, k2, ... LIMIT limit + 1`` after the position of the last row
of the previous page, so a page never repeats or skips a row however many rows are inserted
between two requests (new rows simply appear in order). The cursor is opaque to callers: the
urlsafe base64 of a JSON array ``[listing tag, key values of the last row...]``; the tag stops a
cursor of one listing (or ordering) from being replayed on another.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import TypeDecorator

from swarm_director.errors import ValidationError
from swarm_director.store._common import fits

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
#: Cursors are small; anything longer was not made here.
MAX_CURSOR_CHARS = 512


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next page (None when this page is the last).

    ``prev_cursor`` lists the other way from this page's first row (the rows before it, in
    the reverse order): set when the page was asked for after a cursor, so a reader can page
    back (a console's "newer" link) without counting rows."""

    items: list[T]
    next_cursor: str | None = None
    prev_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Ordering:
    """The sort key of a listing: columns (unique together, last one is the primary key),
    all in one direction, and a tag naming the listing inside its cursors."""

    tag: str
    keys: tuple[InstrumentedAttribute[Any], ...]
    descending: bool = False

    def cursor_tag(self) -> str:
        return f"{self.tag}:{'desc' if self.descending else 'asc'}"

    def sorts_in_python(self) -> bool:
        """Whether Python sorts tuples of these keys' values as the database sorts the rows
        (integers and timestamps do; text follows the database's collation)."""
        return all(_python_type(key) in (int, datetime) for key in self.keys)

    def reversed(self) -> Ordering:
        """The same keys in the other direction (its cursors are not this one's)."""
        return Ordering(self.tag, self.keys, not self.descending)


def check_limit(limit: int) -> int:
    """``limit`` if it is an integer in 1..MAX_LIMIT, else ValidationError naming ``limit``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(
            "invalid limit",
            details={"fields": {"limit": f"must be an integer from 1 to {MAX_LIMIT}"}},
        )
    return limit


def ordering_for(order: str, *, asc: Ordering, desc: Ordering) -> Ordering:
    """The ordering ``order`` asks for: ``asc`` for "asc", ``desc`` for "desc";
    ValidationError naming ``order`` for anything else."""
    if order == "asc":
        return asc
    if order == "desc":
        return desc
    raise ValidationError("invalid order", details={"fields": {"order": "must be 'asc' or 'desc'"}})


def _invalid_cursor() -> ValidationError:
    return ValidationError(
        "invalid cursor",
        details={"fields": {"cursor": "not a cursor of this listing; start again without one"}},
    )


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def encode_cursor(ordering: Ordering, row: Any) -> str:
    """The cursor that continues ``ordering`` after ``row``."""
    payload = [ordering.cursor_tag(), *(_encode_value(getattr(row, k.key)) for k in ordering.keys)]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_value(value: Any, python_type: type) -> Any:
    if python_type is datetime:
        if not isinstance(value, str):
            raise ValueError("timestamp expected")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("aware timestamp expected")
        return parsed.astimezone(UTC)
    if python_type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("integer expected")
        return value
    if python_type is str:
        if not isinstance(value, str):
            raise ValueError("string expected")
        return value
    raise ValueError(f"unsupported key type {python_type!r}")


def _python_type(key: InstrumentedAttribute[Any]) -> type:
    type_ = key.type
    if isinstance(type_, TypeDecorator):  # UTCDateTime: the type it decorates knows
        type_ = type_.impl_instance
    python_type: type = type_.python_type
    return python_type


def decode_cursor(ordering: Ordering, cursor: str) -> tuple[Any, ...]:
    """The key values inside ``cursor``; ValidationError("invalid cursor") on anything else."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise _invalid_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode())
        if not isinstance(payload, list) or len(payload) != len(ordering.keys) + 1:
            raise ValueError("wrong shape")
        if payload[0] != ordering.cursor_tag():
            raise ValueError("cursor of another listing")
        values = tuple(
            _decode_value(value, _python_type(key))
            for value, key in zip(payload[1:], ordering.keys, strict=True)
        )
        if not all(fits(key.type, v) for key, v in zip(ordering.keys, values, strict=True)):
            raise ValueError("key out of the column's range")
        return values
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise _invalid_cursor() from None


def _after(
    keys: Sequence[InstrumentedAttribute[Any]],
    values: Sequence[Any],
    desc: bool,
    inclusive: bool = False,
) -> Any:
    # (k1, k2) after (v1, v2) written as k1 <= v1 AND (k1 < v1 OR k2 < v2) (for descending):
    # the leading range on k1 lets every engine use an index on (..., k1, k2). ``inclusive``:
    # the row with the values themselves too (the last key compared with <= or >=).
    key, value = keys[0], values[0]
    strict = key < value if desc else key > value
    loose = key <= value if desc else key >= value
    if len(keys) == 1:
        return loose if inclusive else strict
    return and_(loose, or_(strict, _after(keys[1:], values[1:], desc, inclusive)))


def keyset_condition(ordering: Ordering, cursor: str) -> ColumnElement[bool]:
    """The WHERE condition selecting rows after ``cursor`` in ``ordering``."""
    return after_values(ordering, decode_cursor(ordering, cursor))


def after_values(ordering: Ordering, values: Sequence[Any]) -> ColumnElement[bool]:
    """The WHERE condition selecting the rows after the row whose key values are ``values``,
    in ``ordering``."""
    condition: ColumnElement[bool] = _after(ordering.keys, values, ordering.descending)
    return condition


def through_condition(ordering: Ordering, values: Sequence[Any]) -> ColumnElement[bool]:
    """The WHERE condition selecting the rows up to and including the row whose key values
    are ``values``, in ``ordering`` (the complement of the rows after it)."""
    condition: ColumnElement[bool] = _after(
        ordering.keys, values, not ordering.descending, inclusive=True
    )
    return condition


def after_cursor(stmt: Select[T], ordering: Ordering, cursor: str | None) -> Select[T]:
    """``stmt`` restricted to the rows after ``cursor`` (all of them without one)."""
    return stmt if cursor is None else stmt.where(keyset_condition(ordering, cursor))


def in_order(stmt: Select[T], ordering: Ordering) -> Select[T]:
    """``stmt`` sorted by ``ordering``."""
    return stmt.order_by(*(k.desc() if ordering.descending else k.asc() for k in ordering.keys))


def _page_statement(stmt: Select[T], ordering: Ordering, limit: int, cursor: str | None) -> Any:
    return in_order(after_cursor(stmt, ordering, cursor), ordering).limit(limit + 1)


def page_of(rows: list[Any], ordering: Ordering, limit: int, cursor: str | None) -> Page[Any]:
    """The page of ``limit`` rows from the ``limit + 1`` (at most) fetched after ``cursor``."""
    items = rows[:limit]
    after = encode_cursor(ordering, items[-1]) if len(rows) > limit else None
    before = encode_cursor(ordering.reversed(), items[0]) if cursor is not None and items else None
    return Page(items, after, before)


def paginate(
    session: Session,
    stmt: Select[T],
    ordering: Ordering,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[T]:
    """Runs ``stmt`` (a select of one entity, filters applied) one page at a time.

    Returns up to ``limit`` rows after ``cursor`` in ``ordering`` and the cursor of the next page
    (None when no row follows). Raises ValidationError for a bad ``limit`` or ``cursor``.
    """
    limit = check_limit(limit)
    rows = session.scalars(_page_statement(stmt, ordering, limit, cursor)).all()
    return page_of(list(rows), ordering, limit, cursor)


def paginate_rows(
    connection: Connection,
    stmt: Select[Any],
    ordering: Ordering,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Row[Any]]:
    """Like :func:`paginate` for a select of columns, run as a Core statement: the page holds
    read-only rows (no ORM session or identity map, the cheapest read there is), whose
    attribute names must include the ordering keys' names."""
    limit = check_limit(limit)
    # all(): one fetchall from the driver, not a fetchone per row
    rows = connection.execute(_page_statement(stmt, ordering, limit, cursor)).all()
    return page_of(list(rows), ordering, limit, cursor)
