"""Tasks, their subtasks and their status lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import Connection, Row, select
from sqlalchemy.orm import Session

from swarm_director.db import utcnow
from swarm_director.errors import ConflictError
from swarm_director.models import (
    TASK_TRANSITIONS,
    Agent,
    Conversation,
    Task,
    TaskStatus,
)
from swarm_director.models.fulltext import TASKS
from swarm_director.schemas.filters import TaskFilter
from swarm_director.schemas.tasks import TaskCreate, TaskUpdate
from swarm_director.store._common import (
    attribute_columns,
    check_transition,
    core_connection,
    get_or_404,
    lock_hierarchy,
    lock_or_404,
    read_or_404,
    require_ref,
    validated,
    would_create_cycle,
)
from swarm_director.store.filtering import SEARCHED, FilterRules
from swarm_director.store.pagination import (
    DEFAULT_LIMIT,
    Ordering,
    Page,
    ordering_for,
    paginate_rows,
)
from swarm_director.store.queue_wait import announce
from swarm_director.store.search_pages import search_page

_BY_ID = Ordering("tasks", (Task.id,))
_NEWEST_FIRST = _BY_ID.reversed()
#: What :func:`read_task` returns and :func:`list_tasks` pages: a row with Task's column
#: attributes.
TaskRecord = Row[Any]
_TASK_COLUMNS = attribute_columns(Task)


def _check_refs(session: Session, fields: Mapping[str, Any]) -> None:
    """ValidationError naming the first reference in ``fields`` to a row that does not exist."""
    if fields.get("assigned_agent_id") is not None:
        require_ref(session, Agent, fields["assigned_agent_id"], "assigned_agent_id", "agent")
    if fields.get("parent_task_id") is not None:
        require_ref(session, Task, fields["parent_task_id"], "parent_task_id", "task")
    if fields.get("conversation_id") is not None:
        conversation_id = fields["conversation_id"]
        require_ref(session, Conversation, conversation_id, "conversation_id", "conversation")


def create_task(session: Session, data: TaskCreate | Mapping[str, Any]) -> Task:
    """Creates a ``pending`` task and returns it (flushed, with its id).

    Raises ValidationError for bad fields or references to missing rows.
    """
    body = validated(TaskCreate, data, "task")
    fields = body.model_dump()
    _check_refs(session, fields)
    task = Task(**fields, status=TaskStatus.PENDING)
    session.add(task)
    session.flush()
    announce(session)
    return task


def get_task(session: Session, task_id: int) -> Task:
    """The task with this id; NotFoundError if there is none."""
    return get_or_404(session, Task, task_id, "task")


def read_task(source: Session | Connection, task_id: int) -> TaskRecord:
    """The task with this id as a read-only row with :class:`Task`'s attributes (one Core
    statement, no ORM object: for reads that only show it); NotFoundError if there is none."""
    return read_or_404(source, Task, task_id, "task")


def list_tasks(
    source: Session | Connection,
    task_filter: TaskFilter | Mapping[str, Any] | None = None,
    *,
    order: Literal["asc", "desc"] = "asc",
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[TaskRecord]:
    """A page of tasks in id order (oldest first; ``order="desc"``: newest first) matching
    every filter of ``task_filter`` (:class:`~swarm_director.schemas.filters.TaskFilter`, or a
    mapping of its fields); its ``q`` searches title and description (words and "quoted
    phrases", see :mod:`swarm_director.store.search`). Raises ValidationError for a bad filter,
    order, limit, cursor or query.

    The items are read-only rows with :class:`Task`'s column attributes, not ORM objects (a
    listing only shows them), read by Core statements on ``source``: a session's connection,
    or a bare read connection, which is cheaper still.
    """
    ordering = ordering_for(order, asc=_BY_ID, desc=_NEWEST_FIRST)
    wanted = TASK_FILTERS.parse(task_filter)
    stmt = TASK_FILTERS.apply(select(*_TASK_COLUMNS), wanted)
    connection = core_connection(source)
    if wanted.q is not None:
        return search_page(
            connection,
            stmt,
            ordering,
            TASKS,
            Task.id,
            wanted.q,
            limit=limit,
            cursor=cursor,
            fetch=lambda page: connection.execute(page).all(),
        )
    return paginate_rows(connection, stmt, ordering, limit=limit, cursor=cursor)


#: The conditions of :class:`TaskFilter`.
TASK_FILTERS = FilterRules(
    TaskFilter,
    status=Task.status,
    type=Task.type,
    user_id=Task.user_id,
    assigned_agent_id=Task.assigned_agent_id,
    parent_task_id=Task.parent_task_id,
    priority=Task.priority,
    q=SEARCHED,
)


def list_subtasks(
    source: Session | Connection,
    task_id: int,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[TaskRecord]:
    """A page of the direct subtasks of a task, in id order (rows, as :func:`list_tasks`);
    NotFoundError if it is missing."""
    read_task(source, task_id)
    return list_tasks(source, TaskFilter(parent_task_id=task_id), limit=limit, cursor=cursor)


def update_task(session: Session, task_id: int, data: TaskUpdate | Mapping[str, Any]) -> Task:
    """Applies the fields present in ``data`` and returns the task.

    A status change must follow the lifecycle (pending→in_progress→completed/failed,
    pending→failed, failed→pending; completed is final); becoming ``completed`` stamps
    ``completed_at``. With ``expected_status`` the update applies only if the task's status is
    still that one (a claim: two agents taking the same pending task, one wins). Everything is
    checked before anything changes.

    Raises NotFoundError, ValidationError, InvalidTransitionError (illegal status change),
    ConflictError (the status is not ``expected_status``; the new parent is the task itself or
    one of its subtasks).
    """
    changes = validated(TaskUpdate, data, "task update").model_dump(exclude_unset=True)
    expected = changes.pop("expected_status", None)
    # A status change or precondition is a read-check-write: lock the row so that two
    # concurrent changes cannot both pass the check.
    task = (
        lock_or_404(session, Task, task_id, "task")
        if "status" in changes or expected is not None
        else get_task(session, task_id)
    )
    if expected is not None and task.status != expected:
        wanted = TaskStatus(expected).value
        raise ConflictError(
            f"task {task.id} is {task.status.value}, not {wanted}; nothing was changed",
            details={"status": task.status.value, "expected_status": wanted},
        )
    if "status" in changes:
        check_transition(TASK_TRANSITIONS, "task", task.id, task.status, changes["status"])
    _check_refs(session, changes)
    new_parent = changes.get("parent_task_id")
    if new_parent is not None and new_parent != task.parent_task_id:
        lock_hierarchy(session, Task.__tablename__)
        if would_create_cycle(session, Task.id, Task.parent_task_id, task.id, new_parent):
            raise ConflictError(
                f"task {new_parent} is task {task.id} or one of its subtasks",
                details={"fields": {"parent_task_id": "would create a cycle of subtasks"}},
            )
    changes_made = set(changes)
    new_status = changes.pop("status", task.status)
    for field, value in changes.items():
        setattr(task, field, value)
    if new_status != task.status:
        if task.status is TaskStatus.IN_PROGRESS:
            # Whoever held the lease holds it no longer: its heartbeat and completion are refused.
            task.lease_token = task.lease_expires_at = None
        task.status = new_status
        if new_status is TaskStatus.COMPLETED:
            task.completed_at = utcnow()
    session.flush()
    if new_status is TaskStatus.PENDING and "status" in changes_made:
        announce(session)
    return task


def delete_task(session: Session, task_id: int) -> None:
    """Deletes the task with its subtasks (recursively), logs, drafts and emails;
    conversations about it are kept and unlinked. Objects already loaded in ``session`` are
    expired so they show this. Raises NotFoundError."""
    task = get_task(session, task_id)
    session.delete(task)
    session.flush()
    session.expire_all()
