"""Stale-page checks for people acting on what a page showed them: a row's change stamp,
handed out with the page, and the check that the row still carries it when the action comes
back. A stamp that no longer matches means someone (an agent, the queue, another operator)
changed the row meanwhile: the action is refused and nothing changes."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from swarm_director.db.base import Base
from swarm_director.errors import ConflictError
from swarm_director.store._common import lock_or_404

E = TypeVar("E", bound=Base)


def stamp(updated_at: datetime) -> str:
    """The change stamp of a row whose ``updated_at`` is this."""
    return updated_at.isoformat()


def unchanged(session: Session, model: type[E], row_id: int, what: str, seen: str) -> E:
    """The row of ``model`` with id ``row_id``, locked until the transaction ends, when its
    stamp is still ``seen``. Raises NotFoundError, or ConflictError when it changed since."""
    row = lock_or_404(session, model, row_id, what)
    # Every model the console acts on has updated_at (TimestampMixin).
    updated: datetime = row.updated_at  # type: ignore[attr-defined]
    if stamp(updated) != seen:
        status = getattr(row, "status", None)
        now = f" (it is {status.value} now)" if status is not None else ""
        raise ConflictError(
            f"{what} {row_id} changed since this page was shown{now}; reload the page and "
            "try again. Nothing was changed.",
            details={"reason": "stale", "id": row_id},
        )
    return row
