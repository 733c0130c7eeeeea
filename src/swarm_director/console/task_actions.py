"""Console actions on tasks: retry, fail with a reason, requeue an expired lease, change the
priority, reassign, and retry many failed tasks at once (see :mod:`.forms` for the checks).

Each goes through the store function the API calls for it: ``PATCH /api/tasks/<id>``
(:func:`~swarm_director.store.tasks.update_task`) and ``POST /api/tasks/<id>/requeue``
(:func:`~swarm_director.store.queue.requeue_task`). Every form carries the task's change
stamp (``seen``): when the task changed after the page was shown, the action is refused.
"""

from __future__ import annotations

from typing import Any

from flask import request, url_for
from werkzeug.wrappers import Response as BaseResponse

from swarm_director.console.common import bp
from swarm_director.console.forms import (
    action,
    back_to,
    bad_field,
    confirm_first,
    done,
    form_enum,
    form_id,
    form_text,
    seen,
)
from swarm_director.enums import ApiScope
from swarm_director.errors import ConflictError
from swarm_director.models import Task, TaskPriority, TaskStatus
from swarm_director.schemas.filters import TaskFilter
from swarm_director.store import queue, tasks
from swarm_director.store.filtering import parse_filter
from swarm_director.store.preconditions import unchanged
from swarm_director.web.context import session

#: Most tasks one bulk retry takes (the confirmation says when more match).
BULK_MAX = 200


def _page(task_id: int) -> str:
    return back_to(url_for("console.task_page", task_id=task_id))


def _task(task_id: int) -> Task:
    """The task, locked, as the page showed it (else 409, stale)."""
    return unchanged(session(), Task, task_id, "task", seen())


def _retry_fields(task: Task) -> dict[str, Any]:
    """The update that retries a failed task: back to pending, with one more attempt when it
    used them all up (else the queue would fail it again at once)."""
    fields: dict[str, Any] = {"status": TaskStatus.PENDING, "expected_status": TaskStatus.FAILED}
    if task.attempts >= task.max_attempts:
        fields["max_attempts"] = task.attempts + 1
    return fields


@bp.post("/tasks/<int:task_id>/retry")
@action(ApiScope.WRITE)
def retry_task(task_id: int) -> BaseResponse:
    """A failed task back to pending (``PATCH`` status pending, expected failed)."""
    task = _task(task_id)
    tasks.update_task(session(), task_id, _retry_fields(task))
    return done(f"Task {task_id} is pending again; an agent will claim it.", _page(task_id))


@bp.post("/tasks/<int:task_id>/fail")
@action(ApiScope.WRITE)
def fail_task(task_id: int) -> BaseResponse | str:
    """An in-progress task failed by hand with a reason (``PATCH`` status failed, expected
    in_progress, last_error); its lease ends, so the agent's late completion is refused."""
    reason = form_text("reason")
    _task(task_id)
    asked = confirm_first(
        f"Fail task {task_id}? Its agent's lease ends and the reason is kept: “{reason}”.",
        "Fail the task",
        _page(task_id),
    )
    if asked is not None:
        return asked
    tasks.update_task(
        session(),
        task_id,
        {
            "status": TaskStatus.FAILED,
            "expected_status": TaskStatus.IN_PROGRESS,
            "last_error": reason,
        },
    )
    return done(f"Task {task_id} failed: {reason}", _page(task_id))


@bp.post("/tasks/<int:task_id>/requeue")
@action(ApiScope.WRITE)
def requeue_task(task_id: int) -> BaseResponse:
    """A task whose lease expired back to pending now (``POST /api/tasks/<id>/requeue``)."""
    _task(task_id)
    queue.requeue_task(session(), task_id)
    return done(f"Task {task_id} is pending again; an agent will claim it.", _page(task_id))


@bp.post("/tasks/<int:task_id>/priority")
@action(ApiScope.WRITE)
def change_priority(task_id: int) -> BaseResponse:
    """A new priority (``PATCH`` priority)."""
    priority = form_enum("priority", TaskPriority)
    task = _task(task_id)
    if task.status is TaskStatus.COMPLETED:
        raise ConflictError(f"task {task_id} is completed; nothing was changed")
    tasks.update_task(session(), task_id, {"priority": priority})
    return done(f"Task {task_id} now has priority {priority.value}.", _page(task_id))


@bp.post("/tasks/<int:task_id>/assign")
@action(ApiScope.WRITE)
def assign_task(task_id: int) -> BaseResponse:
    """Another agent for the task (``PATCH`` assigned_agent_id)."""
    agent_id = form_id("agent_id")
    task = _task(task_id)
    if task.status is TaskStatus.COMPLETED:
        raise ConflictError(f"task {task_id} is completed; nothing was changed")
    tasks.update_task(session(), task_id, {"assigned_agent_id": agent_id})
    return done(f"Task {task_id} is assigned to agent {agent_id}.", _page(task_id))


def _bulk_filter() -> TaskFilter:
    given = {name: request.form.get(name, "").strip() for name in TaskFilter.filter_names()}
    given = {k: v for k, v in given.items() if v}
    return parse_filter(TaskFilter, {**given, "status": TaskStatus.FAILED})


def _bulk_ids() -> list[int]:
    raw = request.form.get("ids", "")
    parts = raw.split(",") if raw else []
    if not parts or len(parts) > BULK_MAX or not all(p.isascii() and p.isdigit() for p in parts):
        raise bad_field("ids", "the confirmed list of tasks is damaged; start again from the list")
    return [int(p) for p in parts]


@bp.post("/tasks/retry")
@action(ApiScope.WRITE)
def retry_tasks() -> BaseResponse | str:
    """Retry the failed tasks of the task list's filters, after a confirmation that names
    how many; the confirmed list is retried exactly, or not at all when one of them is no
    longer failed."""
    task_filter = _bulk_filter()
    back = back_to(url_for("console.task_list", **task_filter.query_params()))
    if request.form.get("confirmed") != "yes":
        page = tasks.list_tasks(session(), task_filter, limit=BULK_MAX)
        ids = [t.id for t in page.items]
        if not ids:
            raise ConflictError("no failed task matches these filters; nothing was changed")
        more = " (the first of more: retry again for the rest)" if page.next_cursor else ""
        asked = confirm_first(
            f"Retry {len(ids)} failed task{'s' if len(ids) != 1 else ''}{more}?",
            f"Retry {len(ids)} task{'s' if len(ids) != 1 else ''}",
            back,
            {"ids": ",".join(map(str, ids))},
        )
        assert asked is not None
        return asked
    ids = _bulk_ids()
    s = session()
    for task_id in ids:
        task = tasks.get_task(s, task_id)
        if task.status is not TaskStatus.FAILED:
            raise ConflictError(
                f"task {task_id} is {task.status.value} now, no longer failed; reload the list "
                "and try again. Nothing was changed.",
                details={"reason": "stale", "id": task_id},
            )
        tasks.update_task(s, task_id, _retry_fields(task))
    return done(f"{len(ids)} failed task{'s' if len(ids) != 1 else ''} pending again.", back)
