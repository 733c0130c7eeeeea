"""Declarative base, naming convention and the timestamp mixins."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from swarm_director.db.types import UTCDateTime

# Timestamps sort after the table's own columns (sort_order) so tables read naturally.
# Named constraints let Alembic drop or alter them later (SQLite batch mode needs names to
# find a constraint again) and keep the names identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Base of every model; its metadata carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CreatedAtMixin:
    """Adds ``created_at``, set once when the row is inserted."""

    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, nullable=False, sort_order=900
    )
    """When the row was inserted (UTC)."""


class TimestampMixin(CreatedAtMixin):
    """Adds ``created_at`` and ``updated_at``; the latter follows every ORM update."""

    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False, sort_order=901
    )
    """When the row was last changed (UTC)."""
