"""Idempotency keys: a retried request with the same key gets the first result back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base, CreatedAtMixin
from swarm_director.db.types import JSONType


class IdempotencyKey(CreatedAtMixin, Base):
    """A client-chosen key for one write, the hash of its body and the result it produced.

    Rows are written once, in the same transaction as the write they guard, and never updated.
    """

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))
    """What the key guards, e.g. ``logs:task:42``: the same key may be reused elsewhere."""
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    """sha256 of the canonical request body: the same key with another body is a conflict."""
    result: Mapped[dict[str, Any]] = mapped_column(JSONType)

    # The unique constraint is the lookup index; created_at serves purging old keys.
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )
