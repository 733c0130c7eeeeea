"""Statement timings shared by every process of one database (see ops/stats/timings.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base
from swarm_director.db.types import UTCDateTime


class StatementTiming(Base):
    """One statement shape and its timings, merged from every process that ran it.

    Written only by the statement-timings flusher (an UPSERT per shape, a few times a minute
    per process) and pruned to the slowest shapes, so the table stays small.
    """

    __tablename__ = "statement_timings"

    shape_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    """sha256 of ``shape``: a fixed-size key (a long shape would not fit a btree entry)."""
    shape: Mapped[str] = mapped_column(Text)
    """The statement with literals and expanded lists folded."""
    calls: Mapped[int] = mapped_column(BigInteger)
    total_ms: Mapped[float] = mapped_column(Float)
    max_ms: Mapped[float] = mapped_column(Float)
    """The worst single execution: what the table is pruned by."""
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    sources: Mapped[str] = mapped_column(Text)
    """Space-separated ``host:pid`` of the processes that ran it (a few, then no more)."""
