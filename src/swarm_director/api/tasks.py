"""``/api/tasks``: tasks, their subtasks and status changes."""

from __future__ import annotations

from flask import Response

from swarm_director.api.common import (
    PageQuery,
    TaskPath,
    blueprint,
    created_response,
    json_response,
    no_content,
)
from swarm_director.api.row_pages import RowPageWriter
from swarm_director.schemas import TaskCreate, TaskOut, TaskPage, TaskUpdate
from swarm_director.schemas.filters import TaskFilter
from swarm_director.store import tasks
from swarm_director.web.context import connection, session
from swarm_director.web.errors import ErrorResponse

bp = blueprint("tasks", "Tasks routed through the agent hierarchy.")
#: Task pages: rows written as TaskPage's JSON without a model per row.
_PAGES = RowPageWriter(TaskOut)


class TaskQuery(TaskFilter, PageQuery):
    """The query of task lists: the filters and a page."""


@bp.get("/tasks", responses={200: TaskPage})
def list_tasks(query: TaskQuery) -> Response:
    """List tasks in id order, filtered by status, type, user, assignee, parent and priority,
    and by the search `q` over title and description."""
    page = tasks.list_tasks(connection(), query, limit=query.limit, cursor=query.cursor)
    return _PAGES.response(page.items, page.next_cursor)


@bp.post("/tasks", responses={201: TaskOut})
def create_task(body: TaskCreate) -> Response:
    """Create a task (status pending); referenced agent, parent and conversation must exist."""
    task = tasks.create_task(session(), body)
    return created_response(TaskOut.model_validate(task), f"/api/tasks/{task.id}")


@bp.get("/tasks/<int:task_id>", responses={200: TaskOut})
def get_task(path: TaskPath) -> Response:
    """Get one task."""
    return json_response(TaskOut.model_validate(tasks.read_task(connection(), path.task_id)))


@bp.patch("/tasks/<int:task_id>", responses={200: TaskOut, 409: ErrorResponse})
def update_task(path: TaskPath, body: TaskUpdate) -> Response:
    """Change a task. Status changes follow pending→in_progress→completed/failed,
    pending→failed, failed→pending (completed is final); any other is 409."""
    task = tasks.update_task(session(), path.task_id, body)
    return json_response(TaskOut.model_validate(task))


@bp.delete("/tasks/<int:task_id>", responses={204: None})
def delete_task(path: TaskPath) -> Response:
    """Delete a task with its subtasks, logs, drafts and emails."""
    tasks.delete_task(session(), path.task_id)
    return no_content()


@bp.get("/tasks/<int:task_id>/subtasks", responses={200: TaskPage})
def list_subtasks(path: TaskPath, query: PageQuery) -> Response:
    """List the direct subtasks of a task in id order."""
    page = tasks.list_subtasks(connection(), path.task_id, limit=query.limit, cursor=query.cursor)
    return _PAGES.response(page.items, page.next_cursor)
