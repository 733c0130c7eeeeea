"""Database foundation: declarative base, column types, engine and the transaction helper."""

from swarm_director.db.base import Base, TimestampMixin, utcnow
from swarm_director.db.engine import create_engine_from_settings, make_engine
from swarm_director.db.session import Database

__all__ = [
    "Base",
    "Database",
    "TimestampMixin",
    "create_engine_from_settings",
    "make_engine",
    "utcnow",
]
