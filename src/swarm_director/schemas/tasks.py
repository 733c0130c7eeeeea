"""Request and response bodies for tasks."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field

from swarm_director.enums import TaskPriority, TaskStatus, TaskType
from swarm_director.schemas.common import (
    InputModel,
    ISOTimestamp,
    Name,
    OutputModel,
    PageOut,
    Patch,
    PositiveId,
    ShortText,
    StoredJSON,
    Title,
)

#: How often the work queue may hand a task out (a first try and its retries).
Attempts = Annotated[
    int, Field(ge=1, le=100, strict=True, description="Claims allowed before it fails.")
]


class TaskCreate(InputModel):
    """A new task; it starts ``pending``."""

    type: TaskType
    title: Title
    description: ShortText | None = None
    user_id: Name | None = Field(default=None, description="Who asked for the task.")
    priority: TaskPriority = TaskPriority.MEDIUM
    assigned_agent_id: PositiveId | None = None
    parent_task_id: PositiveId | None = Field(default=None, description="Makes it a subtask.")
    conversation_id: PositiveId | None = None
    max_attempts: Attempts = 3
    not_before: ISOTimestamp | None = Field(
        default=None, description="Not claimed from the work queue before this time (ISO 8601)."
    )


class TaskUpdate(InputModel):
    """Fields of a task that may change. ``status`` follows the task lifecycle:
    pending→in_progress→completed/failed, pending→failed, failed→pending; completed is final.
    ``type`` and ``user_id`` are fixed at creation."""

    title: Patch[Title] = None
    description: ShortText | None = None
    status: Patch[TaskStatus] = None
    priority: Patch[TaskPriority] = None
    assigned_agent_id: PositiveId | None = None
    parent_task_id: PositiveId | None = None
    conversation_id: PositiveId | None = None
    max_attempts: Patch[Attempts] = None
    not_before: ISOTimestamp | None = None
    last_error: ShortText | None = Field(
        default=None, description="Why the task failed (e.g. the reason an operator failed it)."
    )
    expected_status: Patch[TaskStatus] = Field(
        default=None,
        description="Precondition, not a change: apply this update only if the task's status "
        "is still this one, else 409 `conflict` and nothing changes. Two agents claiming the "
        'same task with `{"status": "in_progress", "expected_status": "pending"}`: one wins.',
    )


class TaskOut(OutputModel):
    """A task as stored."""

    id: int
    type: TaskType
    user_id: str | None
    status: TaskStatus
    title: str
    description: str | None
    priority: TaskPriority
    assigned_agent_id: int | None
    parent_task_id: int | None
    conversation_id: int | None
    completed_at: AwareDatetime | None
    # The work queue's fields have defaults so a client parses a server that predates them.
    attempts: int = Field(default=0, description="Claims from the work queue so far.")
    max_attempts: int = 3
    not_before: AwareDatetime | None = None
    claimed_at: AwareDatetime | None = None
    lease_expires_at: AwareDatetime | None = None
    last_error: str | None = None
    result: StoredJSON | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class TaskPage(PageOut[TaskOut]):
    """A page of tasks."""
