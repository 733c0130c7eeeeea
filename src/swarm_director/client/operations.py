"""Every API operation as a function that builds its :class:`~.calls.Call`.

One function per ``operationId`` of ``/api/openapi.json`` (logs in :mod:`.log_operations`,
conversations in :mod:`.conversation_operations`); :mod:`.surface` turns each into a method of
both clients. Bodies are schema models or plain mappings; list filters are keyword arguments,
None meaning "not filtered"; a listing with a filter model
(:mod:`swarm_director.schemas.filters`) takes its fields as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, Unpack

from swarm_director.client.calls import JSON_HEADERS, Body, Call, filter_query, json_body, query
from swarm_director.enums import EmailStatus
from swarm_director.schemas import (
    AgentOut,
    AgentPage,
    DraftDiffOut,
    DraftOut,
    DraftPage,
    EmailOut,
    EmailPage,
    HealthOut,
    ReadyOut,
    StatsOut,
    TaskOut,
    TaskPage,
)
from swarm_director.schemas.filters import (
    AgentFilter,
    AgentFilterArgs,
    EmailFilter,
    EmailFilterArgs,
    FilterModel,
    TaskEmailFilter,
    TaskEmailFilterArgs,
    TaskFilter,
    TaskFilterArgs,
)

T = TypeVar("T")


def post(path: str, model: type[T], body: Body) -> Call[T]:
    """A POST of a JSON body (never retried: it is not idempotent)."""
    return Call("POST", path, model, content=json_body(body), headers=JSON_HEADERS)


def patch(path: str, model: type[T], body: Body) -> Call[T]:
    """A PATCH of a JSON body."""
    return Call("PATCH", path, model, content=json_body(body), headers=JSON_HEADERS)


def listing(
    path: str,
    page: type[T],
    filter_model: type[FilterModel],
    filters: Mapping[str, Any],
    **paging: Any,
) -> Call[T]:
    """A GET of one page of a filtered listing: ``filters`` named like the fields of
    ``filter_model`` (TypeError for another name), then ``paging`` (limit, cursor, order)."""
    return Call("GET", path, page, params=filter_query(filter_model, filters) | query(**paging))


# -- health ------------------------------------------------------------------------------------


def health() -> Call[HealthOut]:
    """Liveness: the server answers (needs no token)."""
    return Call("GET", "/api/health", HealthOut)


def ready() -> Call[ReadyOut]:
    """Readiness: the database is reachable and at head (else UnavailableError)."""
    return Call("GET", "/api/ready", ReadyOut)


def admin_stats() -> Call[StatsOut]:
    """Rows and bytes per table, last maintenance, suggestions."""
    return Call("GET", "/api/admin/stats", StatsOut)


# -- agents ------------------------------------------------------------------------------------


def list_agents(
    *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[AgentFilterArgs]
) -> Call[AgentPage]:
    """A page of agents in id order filtered by the fields of
    :class:`~swarm_director.schemas.filters.AgentFilter`."""
    return listing("/api/agents", AgentPage, AgentFilter, filters, limit=limit, cursor=cursor)


def create_agent(body: Body) -> Call[AgentOut]:
    """Create an agent (ConflictError if the name is taken)."""
    return post("/api/agents", AgentOut, body)


def get_agent(agent_id: int) -> Call[AgentOut]:
    """One agent."""
    return Call("GET", f"/api/agents/{agent_id}", AgentOut)


def update_agent(agent_id: int, body: Body) -> Call[AgentOut]:
    """Change an agent (only the fields given)."""
    return patch(f"/api/agents/{agent_id}", AgentOut, body)


def delete_agent(agent_id: int) -> Call[None]:
    """Delete an agent; references to it become null."""
    return Call("DELETE", f"/api/agents/{agent_id}", None)


# -- tasks -------------------------------------------------------------------------------------


def list_tasks(
    *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[TaskFilterArgs]
) -> Call[TaskPage]:
    """A page of tasks in id order filtered by the fields of
    :class:`~swarm_director.schemas.filters.TaskFilter` (``q``: full-text search)."""
    return listing("/api/tasks", TaskPage, TaskFilter, filters, limit=limit, cursor=cursor)


def create_task(body: Body) -> Call[TaskOut]:
    """Create a task (status pending)."""
    return post("/api/tasks", TaskOut, body)


def get_task(task_id: int) -> Call[TaskOut]:
    """One task."""
    return Call("GET", f"/api/tasks/{task_id}", TaskOut)


def update_task(task_id: int, body: Body) -> Call[TaskOut]:
    """Change a task; an illegal status change or a failed ``expected_status`` is a
    ConflictError."""
    return patch(f"/api/tasks/{task_id}", TaskOut, body)


def delete_task(task_id: int) -> Call[None]:
    """Delete a task with its subtasks, logs, drafts and emails."""
    return Call("DELETE", f"/api/tasks/{task_id}", None)


def list_subtasks(
    task_id: int, *, limit: int | None = None, cursor: str | None = None
) -> Call[TaskPage]:
    """A page of the task's direct subtasks."""
    params = query(limit=limit, cursor=cursor)
    return Call("GET", f"/api/tasks/{task_id}/subtasks", TaskPage, params=params)


# -- drafts ------------------------------------------------------------------------------------


def list_drafts(
    task_id: int, *, limit: int | None = None, cursor: str | None = None
) -> Call[DraftPage]:
    """A page of the task's draft versions, oldest first."""
    params = query(limit=limit, cursor=cursor)
    return Call("GET", f"/api/tasks/{task_id}/drafts", DraftPage, params=params)


def create_draft(task_id: int, body: Body) -> Call[DraftOut]:
    """Store the next version of the task's draft."""
    return post(f"/api/tasks/{task_id}/drafts", DraftOut, body)


def get_draft_version(task_id: int, version: int) -> Call[DraftOut]:
    """Version ``version`` of the task's draft."""
    return Call("GET", f"/api/tasks/{task_id}/drafts/{version}", DraftOut)


def diff_drafts(task_id: int, from_version: int, to_version: int) -> Call[DraftDiffOut]:
    """A unified diff between two versions of the task's draft."""
    params = query(from_version=from_version, to_version=to_version)
    return Call("GET", f"/api/tasks/{task_id}/drafts/diff", DraftDiffOut, params=params)


def get_draft(draft_id: int) -> Call[DraftOut]:
    """One draft version by id."""
    return Call("GET", f"/api/drafts/{draft_id}", DraftOut)


def review_draft(draft_id: int, body: Body) -> Call[DraftOut]:
    """Record a review: status, reviewer, notes (the content is immutable)."""
    return patch(f"/api/drafts/{draft_id}", DraftOut, body)


# -- emails ------------------------------------------------------------------------------------


def list_task_emails(
    task_id: int,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    **filters: Unpack[TaskEmailFilterArgs],
) -> Call[EmailPage]:
    """A page of one task's emails, oldest first, filtered by the fields of
    :class:`~swarm_director.schemas.filters.TaskEmailFilter` (NotFoundError for a missing
    task)."""
    return listing(
        f"/api/tasks/{task_id}/emails",
        EmailPage,
        TaskEmailFilter,
        filters,
        limit=limit,
        cursor=cursor,
    )


def create_email(task_id: int, body: Body) -> Call[EmailOut]:
    """Write an email for a task, as a draft or queued."""
    return post(f"/api/tasks/{task_id}/emails", EmailOut, body)


def list_emails(
    *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[EmailFilterArgs]
) -> Call[EmailPage]:
    """A page of emails across tasks, oldest first, filtered by the fields of
    :class:`~swarm_director.schemas.filters.EmailFilter`; ``status="queued"`` is the outbox."""
    return listing("/api/emails", EmailPage, EmailFilter, filters, limit=limit, cursor=cursor)


def list_outbox(*, limit: int | None = None, cursor: str | None = None) -> Call[EmailPage]:
    """A page of the outbox: queued emails, oldest first."""
    return list_emails(status=EmailStatus.QUEUED, limit=limit, cursor=cursor)


def get_email(email_id: int) -> Call[EmailOut]:
    """One email."""
    return Call("GET", f"/api/emails/{email_id}", EmailOut)


def update_email(email_id: int, body: Body) -> Call[EmailOut]:
    """Edit a draft email and/or change its status (ConflictError for an illegal change)."""
    return patch(f"/api/emails/{email_id}", EmailOut, body)


def set_email_status(
    email_id: int, status: EmailStatus | str, *, error_message: str | None = None
) -> Call[EmailOut]:
    """Move an email along its lifecycle (draft→queued→sent→delivered, queued/sent→failed with
    ``error_message``, failed→queued); ``sent_at`` is set when it becomes sent."""
    body: dict[str, str] = {"status": str(getattr(status, "value", status))}
    if error_message is not None:
        body["error_message"] = error_message
    return patch(f"/api/emails/{email_id}", EmailOut, body)
