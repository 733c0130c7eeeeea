"""The work queue's and the history's operations (see :mod:`.operations` for the others)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, Unpack

from pydantic import BaseModel

from swarm_director.client.calls import JSON_HEADERS, Call, json_body, query
from swarm_director.client.operations import listing
from swarm_director.enums import TaskType
from swarm_director.schemas import TaskOut, TaskPage
from swarm_director.schemas.filters import HistoryFilter, HistoryFilterArgs
from swarm_director.schemas.history import HistoryPage
from swarm_director.schemas.queue import ClaimResponse, HeartbeatOut

M = TypeVar("M", bound=BaseModel)


def _post(path: str, model: type[M], body: dict[str, Any], wait_s: float = 0.0) -> Call[M]:
    # Never retried: a repeated claim would take a second task, a repeated completion is 409.
    content = json_body(body)
    return Call("POST", path, model, content=content, headers=JSON_HEADERS, wait_s=wait_s)


def claim_tasks(
    agent_id: int,
    *,
    types: Sequence[TaskType | str] = (),
    lease_s: float = 60.0,
    limit: int = 1,
    wait_s: float = 0.0,
) -> Call[ClaimResponse]:
    """Claim up to ``limit`` ready tasks for ``agent_id``, each under a lease of ``lease_s``
    seconds; with ``wait_s``, wait that long for one to become ready. Empty ``claims``: none."""
    body = {
        "agent_id": agent_id,
        "types": [str(getattr(t, "value", t)) for t in types],
        "lease_s": lease_s,
        "limit": limit,
        "wait_s": wait_s,
    }
    return _post("/api/tasks/claim", ClaimResponse, body, wait_s)


def heartbeat(task_id: int, lease_token: str, *, lease_s: float = 60.0) -> Call[HeartbeatOut]:
    """Extend the lease to ``lease_s`` from now (ConflictError: the lease is no longer yours)."""
    body = {"lease_token": lease_token, "lease_s": lease_s}
    return _post(f"/api/tasks/{task_id}/heartbeat", HeartbeatOut, body)


def complete_task(
    task_id: int, lease_token: str, result: dict[str, Any] | None = None
) -> Call[TaskOut]:
    """Complete a claimed task with ``result`` (ConflictError: the lease is no longer yours,
    and nothing changed)."""
    body = {"lease_token": lease_token, "result": result}
    return _post(f"/api/tasks/{task_id}/complete", TaskOut, body)


def fail_task(task_id: int, lease_token: str, error: str, *, retry: bool = True) -> Call[TaskOut]:
    """Fail the attempt: retried after a backoff while attempts remain (and ``retry``)."""
    body = {"lease_token": lease_token, "error": error, "retry": retry}
    return _post(f"/api/tasks/{task_id}/fail", TaskOut, body)


def requeue_task(task_id: int) -> Call[TaskOut]:
    """Put a task whose lease expired back to pending now (an operator's hand)."""
    return _post(f"/api/tasks/{task_id}/requeue", TaskOut, {})


def list_expired_leases(*, limit: int | None = None) -> Call[TaskPage]:
    """Tasks in progress whose lease expired (their agent stopped)."""
    return Call("GET", "/api/tasks/expired-leases", TaskPage, params=query(limit=limit))


def list_dead_tasks(*, limit: int | None = None) -> Call[TaskPage]:
    """Failed tasks that used up their attempts."""
    return Call("GET", "/api/tasks/dead", TaskPage, params=query(limit=limit))


def list_history(
    *,
    order: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    **filters: Unpack[HistoryFilterArgs],
) -> Call[HistoryPage]:
    """A page of the swarm's recorded changes, newest first (``order="asc"``: oldest),
    filtered by the fields of :class:`~swarm_director.schemas.filters.HistoryFilter`."""
    return listing(
        "/api/history", HistoryPage, HistoryFilter, filters, order=order, limit=limit, cursor=cursor
    )


def _entity_history(
    kind: str, entity_id: int, limit: int | None, cursor: str | None
) -> Call[HistoryPage]:
    params = query(limit=limit, cursor=cursor)
    return Call("GET", f"/api/{kind}/{entity_id}/history", HistoryPage, params=params)


def list_task_history(
    task_id: int, *, limit: int | None = None, cursor: str | None = None
) -> Call[HistoryPage]:
    """How the task got where it is: its changes, oldest first."""
    return _entity_history("tasks", task_id, limit, cursor)


def list_agent_history(
    agent_id: int, *, limit: int | None = None, cursor: str | None = None
) -> Call[HistoryPage]:
    """The agent's changes, oldest first."""
    return _entity_history("agents", agent_id, limit, cursor)


def list_draft_history(
    draft_id: int, *, limit: int | None = None, cursor: str | None = None
) -> Call[HistoryPage]:
    """The draft's changes (reviews), oldest first."""
    return _entity_history("drafts", draft_id, limit, cursor)


def list_email_history(
    email_id: int, *, limit: int | None = None, cursor: str | None = None
) -> Call[HistoryPage]:
    """The email's changes (status moves), oldest first."""
    return _entity_history("emails", email_id, limit, cursor)


def list_conversation_history(
    conversation_id: int, *, limit: int | None = None, cursor: str | None = None
) -> Call[HistoryPage]:
    """The conversation's changes, oldest first."""
    return _entity_history("conversations", conversation_id, limit, cursor)
