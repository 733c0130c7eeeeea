"""The console's views of the history: a task's timeline, an agent's changes and the swarm's
activity page (``/ui/activity``)."""

from __future__ import annotations

import json
from typing import Any

from swarm_director.console import auth
from swarm_director.console.common import api_url, bp, filter_args, newest_first, render
from swarm_director.enums import ApiScope
from swarm_director.schemas.filters import HistoryFilter
from swarm_director.schemas.history import HistoryEntity
from swarm_director.store import history
from swarm_director.web.context import connection

#: How many of a task's or agent's changes a page shows (the API has them all).
SHOWN = 200
_STEPS = {
    "create": "created",
    "delete": "deleted",
    "claim": "claimed",
    "complete": "completed",
    "retry": "attempt failed, will be retried",
    "fail": "failed for good",
    "expire": "lease expired",
    "requeue": "requeued by hand after its lease expired",
}
#: Fields a step's description names itself, not listed again.
_SAID = {"status", "attempt", "lease_expires_at", "result", "not_before", "assigned_agent_id"}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "…"


def describe(row: Any) -> str:
    """One change in words: ``status: pending → in_progress, title: "a" → "b"`` for an
    update; the step and its essentials for the queue's steps."""
    changes: dict[str, list[Any]] = row.changes
    if row.action == "update":
        return ", ".join(
            f"{name}: {_short(before)} → {_short(after)}"
            for name, (before, after) in sorted(changes.items())
        )
    words: str = _STEPS.get(row.action, str(row.action))
    if row.action == "create" and "status" in changes:
        words += f" ({changes['status'][1]})"
    attempt = changes.get("attempt")
    if attempt is not None:
        words += f", attempt {attempt[1]}"
    if row.action == "claim" and changes.get("assigned_agent_id"):
        words += f" by agent #{changes['assigned_agent_id'][1]}"
    error = changes.get("last_error")
    if error is not None and row.action in ("retry", "fail", "expire"):
        words += f": {_short(error[1])}"
    due = changes.get("not_before")
    if due is not None and due[1]:
        words += f" (not before {due[1][:19].replace('T', ' ')} UTC)"
    return words


def _hidden() -> frozenset[str]:
    return frozenset() if auth.allows(ApiScope.ADMIN) else history.ADMIN_ENTITIES


def timeline(entity: HistoryEntity, entity_id: int) -> tuple[list[Any], bool]:
    """The oldest :data:`SHOWN` changes of one row, and whether there are more."""
    page = history.list_history(
        connection(),
        HistoryFilter(entity=entity, entity_id=entity_id),
        limit=SHOWN,
        hidden=_hidden(),
    )
    return page.items, page.next_cursor is not None


def agent_changes(agent_id: int) -> dict[str, Any]:
    """What the agent page shows of the agent's history (newest last)."""
    changes, more = timeline("agent", agent_id)
    return {"changes": changes, "more_changes": more, "describe": describe}


@bp.get("/activity")
def activity() -> str:
    """Every recorded change across the swarm, newest first, filtered by kind of row, actor
    and action."""
    filters = filter_args(HistoryFilter)
    hidden = _hidden()
    paged = newest_first(
        lambda order, cursor: history.list_history(
            connection(), filters, order=order, cursor=cursor, limit=50, hidden=hidden
        )
    )
    return render(
        "activity.html",
        title="Activity",
        api=[api_url("/api/history", **filters.query_params())],
        changes=paged,
        filters=filters,
        entities=sorted(history.ENTITY_NAMES - hidden),
        describe=describe,
    )
