"""Portable column types."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Enum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always goes in and comes out as timezone-aware UTC.

    PostgreSQL stores ``timestamptz``. SQLite has no time zone type, so values are stored as
    naive UTC text (which sorts correctly) and given back their UTC tzinfo on the way out.
    Naive datetimes handed in are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value.replace(tzinfo=UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], str | None] | Any:
        # SQLite stores text: one call here where SQLAlchemy's processor would wrap
        # process_bind_param and then format the fields one by one, each written datetime
        # (several a claim of the work queue, one a log).
        if dialect.name == "sqlite":
            return _sqlite_text_from_utc
        return super().bind_processor(dialect)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        # SQLite hands back text: SQLAlchemy's processor parses it and process_result_value
        # then adds the zone, two wrapped Python calls per value; one here (102 values on a
        # page of 50 logs).
        if dialect.name == "sqlite":
            return _utc_from_sqlite_text
        return super().result_processor(dialect, coltype)


def _as_utc(value: datetime) -> datetime:
    # Naive values are UTC already (how SQLite stores them).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_text_from_utc(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite storage format ("2026-01-31 23:59:59.000001"): the same text
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _utc_from_sqlite_text(value: str | None) -> datetime | None:
    return None if value is None else _as_utc(datetime.fromisoformat(value))


#: JSON documents; JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType: Any = JSON().with_variant(JSONB(), "postgresql")


def enum_type(enum_cls: type[StrEnum], name: str) -> Enum:
    """A VARCHAR column type holding ``enum_cls`` values, with a CHECK constraint ``name``."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        validate_strings=True,
        values_callable=lambda cls: [member.value for member in cls],
    )
