"""Helpers shared by the store modules: input validation, lookups, locks, hierarchy and
lifecycle checks."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Enum,
    Integer,
    Label,
    Row,
    Select,
    String,
    bindparam,
    exists,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import TypeDecorator, TypeEngine

from swarm_director.db import Base
from swarm_director.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from swarm_director.schemas.common import MAX_BIG_ID, MAX_ID, fields_from_pydantic

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=Base)
T = TypeVar("T")
S = TypeVar("S", bound=StrEnum)


def validated(schema: type[M], data: M | Mapping[str, Any], what: str) -> M:
    """``data`` as a ``schema`` instance (validated if it is a mapping).

    Raises ValidationError("invalid <what>") with ``details["fields"]`` naming each bad field.
    """
    if isinstance(data, schema):
        return data
    try:
        return schema.model_validate(data)
    except PydanticValidationError as exc:
        fields = fields_from_pydantic(exc)
        message = f"invalid {what}"
        if len(fields) == 1:  # the problem in the message too, e.g. the limit a field passed
            ((name, problem),) = fields.items()
            message += f" at {name}: {problem}"
        raise ValidationError(message, details={"fields": fields}) from None


def fits(type_: TypeEngine[Any], value: object) -> bool:
    """True when ``value`` is an integer a column of ``type_`` can hold (non-integer columns:
    always). PostgreSQL refuses to even compare an ``integer`` column with 2**31, so a number
    out of range must be answered before it reaches SQL: it cannot name a row."""
    if not isinstance(type_, Integer):
        return True
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    bound = MAX_BIG_ID if isinstance(type_, BigInteger) else MAX_ID
    return -bound - 1 <= value <= bound


def _comparable(type_: TypeEngine[Any], value: object) -> bool:
    # What a driver would refuse, or SQLAlchemy fail to bind, for a filter on such a column.
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, Enum):
        return isinstance(value, str) and value in type_.enums
    if isinstance(type_, String):
        return isinstance(value, str) and "\x00" not in value
    if isinstance(type_, Boolean):
        return isinstance(value, bool)
    if isinstance(type_, DateTime):
        return isinstance(value, datetime)
    return fits(type_, value)


def where_equal(
    stmt: Select[T], *filters: tuple[InstrumentedAttribute[Any], object, str]
) -> Select[T]:
    """``stmt`` narrowed to rows whose column equals each given value (None: no filter).

    Each filter is ``(column, value, name)``; a value the column cannot hold (a number out of
    its range, an unknown enum value, a string with NUL, a wrong type) is a ValidationError
    naming the filter, never a driver error.
    """
    for column, value, name in filters:
        if value is None:
            continue
        check_filter(column, value, name)
        stmt = stmt.where(column == value)
    return stmt


def check_filter(column: InstrumentedAttribute[Any], value: object, name: str) -> None:
    """ValidationError naming ``name`` when ``value`` cannot be compared with ``column``."""
    if not _comparable(column.type, value):
        raise ValidationError(
            f"invalid {name}", details={"fields": {name: "not a value this field can hold"}}
        )


def _pk_fits(model: type[Base], row_id: object) -> bool:
    return fits(model.__mapper__.primary_key[0].type, row_id)


def get_or_404(session: Session, model: type[E], row_id: int, what: str) -> E:
    """The row of ``model`` with id ``row_id``, else NotFoundError("<what> <id> not found")."""
    row = session.get(model, row_id) if _pk_fits(model, row_id) else None
    if row is None:
        raise NotFoundError(f"{what} {row_id} not found", details={"id": row_id})
    return row


def attribute_columns(model: type[Base]) -> tuple[Label[Any], ...]:
    """Every column of ``model`` labelled with its ORM attribute name (``metadata`` as
    ``meta``): a Core select of these gives rows that read like the ORM objects."""
    return tuple(
        column.label(prop.key) for prop in model.__mapper__.column_attrs for column in prop.columns
    )


def core_connection(source: Session | Connection) -> Connection:
    """The connection to run Core statements on: ``source`` itself, or a session's, after
    flushing its pending changes (as the session's own queries would), so they are seen."""
    if isinstance(source, Session):
        source.flush()
        return source.connection()
    return source


@functools.cache
def _by_id(model: type[Base]) -> Select[Any]:
    # Built once per model: constructing a select costs more than running it.
    columns = attribute_columns(model)
    return select(*columns).where(model.__mapper__.primary_key[0] == bindparam("row_id"))


def read_or_404(
    source: Session | Connection, model: type[Base], row_id: int, what: str
) -> Row[Any]:
    """Like :func:`get_or_404` as one Core statement: the row of ``model`` with id ``row_id``
    as a read-only row with the model's column attributes (see :func:`attribute_columns`)."""
    row = None
    if _pk_fits(model, row_id):
        row = core_connection(source).execute(_by_id(model), {"row_id": row_id}).first()
    if row is None:
        raise NotFoundError(f"{what} {row_id} not found", details={"id": row_id})
    return row


def lock_or_404(session: Session, model: type[E], row_id: int, what: str) -> E:
    """Like :func:`get_or_404`, but the row is read again and locked until the transaction
    ends (``FOR NO KEY UPDATE`` on PostgreSQL; SQLite writers are serialized already), so a
    read-check-write on it cannot interleave with another writer's."""
    if not _pk_fits(model, row_id):
        raise NotFoundError(f"{what} {row_id} not found", details={"id": row_id})
    stmt = (
        select(model)
        .where(model.__mapper__.primary_key[0] == row_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFoundError(f"{what} {row_id} not found", details={"id": row_id})
    return row


def require_ref(session: Session, model: type[E], row_id: int, field: str, what: str) -> None:
    """ValidationError naming ``field`` unless a ``model`` row with id ``row_id`` exists."""
    if not _pk_fits(model, row_id) or session.get(model, row_id) is None:
        raise ValidationError(
            f"{what} {row_id} does not exist",
            details={"fields": {field: f"{what} {row_id} does not exist"}},
        )


def check_transition(
    transitions: Mapping[S, frozenset[S]], what: str, row_id: int, current: S, new: S
) -> None:
    """Returns when ``new`` is ``current`` or a status ``transitions`` allows after it; else
    InvalidTransitionError("<what> <id> cannot go from <current> to <new>") whose details give
    ``from``, ``to`` and the ``allowed`` statuses."""
    if new != current and new not in transitions[current]:
        allowed = sorted(s.value for s in transitions[current])
        raise InvalidTransitionError(
            f"{what} {row_id} cannot go from {current.value} to {new.value}",
            details={"from": current.value, "to": new.value, "allowed": allowed},
        )


def flush_or_conflict(session: Session, conflict: ConflictError) -> None:
    """Flushes pending changes in a savepoint; a unique violation (a concurrent writer took the
    same value after our check) raises ``conflict`` and leaves the transaction usable."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise conflict from None


def lock_hierarchy(session: Session, table_name: str) -> None:
    """Serializes changes to the parent links of ``table_name`` for the rest of the transaction.

    Two concurrent moves (A under B, B under A) each pass a cycle check against the data they
    see; a transaction-scoped advisory lock on PostgreSQL makes the second wait and see the
    first. SQLite writers are serialized by BEGIN IMMEDIATE already.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"swarm_director.hierarchy.{table_name}".encode())
        session.execute(select(func.pg_advisory_xact_lock(key)))


def would_create_cycle(
    session: Session,
    id_column: InstrumentedAttribute[int],
    parent_column: InstrumentedAttribute[int | None],
    node_id: int,
    new_parent_id: int,
) -> bool:
    """True when making ``new_parent_id`` the parent of ``node_id`` closes a loop, i.e. the node
    is the new parent itself or one of its ancestors."""
    if node_id == new_parent_id:
        return True
    # Ancestors of the new parent, walked with a recursive CTE; UNION (not UNION ALL) stops
    # even if the stored data already holds a loop.
    base = select(id_column.label("id"), parent_column.label("parent_id")).where(
        id_column == new_parent_id
    )
    ancestors = base.cte("ancestors", recursive=True)
    step = select(id_column, parent_column).join(ancestors, id_column == ancestors.c.parent_id)
    ancestors = ancestors.union(step)
    found = session.scalar(select(exists().where(ancestors.c.id == node_id)))
    return bool(found)
