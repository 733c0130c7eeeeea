"""Console pages: the task list, a task's page, and logs across tasks."""

from __future__ import annotations

from typing import Any, Literal

from swarm_director.console.common import (
    PAGE_SIZE,
    Paged,
    api_url,
    bp,
    filter_args,
    here,
    int_arg,
    live_stream_url,
    newest_first,
    render,
)
from swarm_director.console.history_pages import describe, timeline
from swarm_director.errors import NotFoundError
from swarm_director.models import LogLevel, TaskPriority, TaskStatus, TaskType
from swarm_director.schemas.filters import LogFilter, TaskFilter, TaskLogFilter
from swarm_director.store import browse, drafts, emails, logs, tasks
from swarm_director.web.context import connection, session

Order = Literal["asc", "desc"]


@bp.get("/tasks")
def task_list() -> str:
    """Tasks newest first with the API's filters and search; older/newer keyset paging."""
    filters = filter_args(TaskFilter)
    s = session()

    def fetch(order: Order, cursor: str | None) -> Any:
        return tasks.list_tasks(s, filters, order=order, limit=PAGE_SIZE, cursor=cursor)

    paged = newest_first(fetch)
    names = browse.agent_names(s, [t.assigned_agent_id for t in paged.items])
    return render(
        "tasks.html",
        title="Tasks",
        api=[api_url("/api/tasks", **filters.query_params())],
        paged=paged,
        names=names,
        filters=filters,
        q=filters.q or "",
        statuses=list(TaskStatus),
        types=list(TaskType),
        priorities=list(TaskPriority),
    )


def _log_page(log_filter: LogFilter) -> Paged:
    conn = connection()

    def fetch(order: Order, cursor: str | None) -> Any:
        return logs.list_logs(conn, log_filter, order=order, limit=PAGE_SIZE, cursor=cursor)

    return newest_first(fetch)


@bp.get("/tasks/<int:task_id>")
def task_page(task_id: int) -> str:
    """A task: its place in the tree, subtasks, status timeline, logs (newest first, filtered,
    paged, live), drafts with a diff between any two versions, and emails."""
    s = session()
    task = tasks.read_task(connection(), task_id)
    filters = filter_args(TaskLogFilter)
    log_paged = _log_page(LogFilter.of(filters, task_id=task_id))
    subtasks, tree_cut = browse.subtask_tree(s, task_id)
    versions = drafts.list_drafts(s, task_id, limit=PAGE_SIZE)
    email_page = emails.list_emails(s, {"task_id": task_id}, limit=PAGE_SIZE)
    span = browse.log_span(s, task_id)
    changes, more_changes = timeline("task", task_id)
    shown, diff = _drafts_shown(s, task_id, versions.items)
    ids = [task.assigned_agent_id, *(row.agent_id for row in log_paged.items)]
    for draft in versions.items:
        ids += [draft.author_agent_id, draft.reviewer_agent_id]
    live = None
    if not filters.given() and not log_paged.first:
        live = live_stream_url(task_id)
    return render(
        "task.html",
        title=f"Task {task.id}: {task.title}",
        api=[
            f"/api/tasks/{task_id}",
            f"/api/tasks/{task_id}/subtasks",
            api_url(f"/api/tasks/{task_id}/logs", **filters.query_params()),
            f"/api/tasks/{task_id}/drafts",
            f"/api/tasks/{task_id}/emails",
            f"/api/tasks/{task_id}/history",
        ],
        task=task,
        ancestors=browse.task_ancestors(s, task_id),
        subtasks=subtasks,
        tree_cut=tree_cut,
        tree_limit=browse.MAX_TREE_ROWS,
        timeline=_timeline(changes, span, versions.items, email_page.items),
        timeline_cut=more_changes,
        logs=log_paged,
        filters=filters,
        levels=list(LogLevel),
        q=filters.q or "",
        live=live,
        drafts=versions.items,
        more_drafts=versions.next_cursor is not None,
        shown=shown,
        diff=diff,
        emails=email_page.items,
        more_emails=email_page.next_cursor is not None,
        names=browse.agent_names(s, ids),
    )


def _drafts_shown(s: Any, task_id: int, versions: list[Any]) -> tuple[Any, Any]:
    """The version to show (``?version=``, default the newest) and the diff asked for by
    ``?diff_from=&diff_to=`` (None without one)."""
    shown = versions[-1] if versions else None
    wanted = int_arg("version")
    if wanted is not None:
        shown = drafts.get_draft_version(s, task_id, wanted)
    diff_from, diff_to = int_arg("diff_from"), int_arg("diff_to")
    diff = None
    if diff_from is not None and diff_to is not None:
        text = drafts.diff_drafts(s, task_id, diff_from, diff_to)
        diff = {"from": diff_from, "to": diff_to, "lines": _diff_lines(text)}
    elif diff_from is not None or diff_to is not None:
        raise NotFoundError("a diff needs both diff_from and diff_to versions")
    return shown, diff


def _diff_lines(text: str) -> list[tuple[str, str]]:
    """Each line of a unified diff with its kind (add, del, hunk, head or same)."""
    out = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append((kind, line))
    return out


def _timeline(
    changes: list[Any], span: Any, versions: list[Any], mails: list[Any]
) -> list[dict[str, Any]]:
    """The task's recorded changes (each status change with who made it), with its first and
    last log, draft versions and emails sent, in time order."""
    events: list[dict[str, Any]] = [
        {"at": row.at, "what": describe(row), "who": row.actor} for row in changes
    ]
    if span.first is not None:
        events.append({"at": span.first, "what": "first log"})
    for draft in versions:
        events.append({"at": draft.created_at, "what": f"draft version {draft.version} written"})
    for mail in mails:
        if mail.sent_at is not None:
            events.append({"at": mail.sent_at, "what": f"email {mail.id} sent"})
    if span.last is not None and span.last != span.first:
        events.append({"at": span.last, "what": "last log"})
    return sorted(events, key=lambda event: event["at"])


@bp.get("/logs")
def log_list() -> str:
    """Logs across tasks, newest first, with the task page's filters."""
    filters = filter_args(LogFilter)
    if filters.task_id is not None:
        tasks.read_task(connection(), filters.task_id)
    paged = _log_page(filters)
    names = browse.agent_names(session(), [row.agent_id for row in paged.items])
    return render(
        "logs.html",
        title="Logs",
        api=[api_url("/api/logs", **filters.query_params())],
        logs=paged,
        filters=filters,
        task_id=filters.task_id,
        levels=list(LogLevel),
        q=filters.q or "",
        names=names,
        here=here,
    )
