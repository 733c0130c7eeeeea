"""Console pages: overview, agents (tree and agent page) and conversations."""

from __future__ import annotations

import functools
from datetime import timedelta

from swarm_director.console import auth
from swarm_director.console.common import (
    PAGE_SIZE,
    api_url,
    bp,
    filter_args,
    here,
    render,
    text_arg,
)
from swarm_director.console.history_pages import agent_changes
from swarm_director.db import utcnow
from swarm_director.models import (
    AgentStatus,
    ApiScope,
    ConversationStatus,
    LogLevel,
    TaskStatus,
    TaskType,
)
from swarm_director.ops import audit, dbinfo
from swarm_director.ops.backup.manifest import list_backups
from swarm_director.schemas.filters import ConversationFilter, LogFilter, TaskFilter
from swarm_director.store import agents, browse, conversations, logs, tasks
from swarm_director.web.context import connection, database, session, state

#: "Failures in the last 24 h" and "busiest tasks" look this far back.
FAILURE_WINDOW = timedelta(hours=24)
BUSY_WINDOW = timedelta(hours=1)
SHORT_LIST = 20


@functools.cache
def head_revision() -> str | None:
    """The migrations' head (read once per process: it cannot change while it runs)."""
    return dbinfo.head_revision()


def database_health() -> dict[str, object]:
    """Revision vs head, size, the newest backup with its verify result, the newest event of
    each maintenance operation (the last ``db check`` among them)."""
    db = database()
    backups = list_backups(state().settings.resolved_backup_dir())
    usable = [entry for entry in backups if entry.manifest is not None]
    last_backup = usable[-1] if usable else None
    verified = audit.verify_results(db.engine) if last_backup is not None else {}
    return {
        "dialect": db.dialect,
        "url": db.masked_url,
        "revision": dbinfo.schema_revision(connection()),
        "head": head_revision(),
        "bytes": dbinfo.database_bytes(db.engine),
        "backup": last_backup,
        "backup_verify": verified.get(str(last_backup.path)) if last_backup else None,
        "events": audit.latest_events(db.engine),
    }


def readiness() -> dict[str, object]:
    """What a read key may see of the database's health (what ``/api/ready`` says)."""
    return {
        "dialect": database().dialect,
        "revision": dbinfo.schema_revision(connection()),
        "head": head_revision(),
    }


@bp.get("/")
def overview() -> str:
    """Tasks by status and type, failures of the last 24 h, agents by status, the busiest
    tasks of the last hour and the database's health."""
    s = session()
    now = utcnow()
    admin = auth.allows(ApiScope.ADMIN)
    # A lesser key sees what /api/ready tells it (dialect, revision), not the admin facts.
    health = database_health() if admin else readiness()
    api = ["/api/tasks?status=failed", "/api/agents", "/api/admin/stats", "/api/ready"]
    return render(
        "overview.html",
        title="Overview",
        api=api if admin else [link for link in api if not link.startswith("/api/admin/")],
        counts=browse.task_counts(s),
        statuses=list(TaskStatus),
        types=list(TaskType),
        failed=browse.failed_since(s, now - FAILURE_WINDOW, limit=SHORT_LIST),
        error_logs=browse.error_logs_since(s, now - FAILURE_WINDOW),
        agent_counts=browse.agent_counts(s),
        agent_statuses=list(AgentStatus),
        busiest=browse.busiest_tasks(s, now - BUSY_WINDOW),
        sample=browse.BUSIEST_SAMPLE,
        health=health,
        admin=admin,
    )


@bp.get("/agents")
def agent_list() -> str:
    """The hierarchy as a tree (director → departments → workers) with task counts."""
    nodes, truncated = browse.agent_tree(session())
    return render(
        "agents.html",
        title="Agents",
        api=["/api/agents"],
        nodes=nodes,
        truncated=truncated,
        limit=browse.MAX_TREE_ROWS,
        statuses=list(TaskStatus),
    )


@bp.get("/agents/<int:agent_id>")
def agent_page(agent_id: int) -> str:
    """An agent with its tasks, recent logs, conversations and the emails of its tasks."""
    s = session()
    agent = agents.get_agent(s, agent_id)
    task_page = tasks.list_tasks(
        s, TaskFilter(assigned_agent_id=agent_id), order="desc", limit=SHORT_LIST
    )
    log_page = logs.list_logs(connection(), LogFilter(agent_id=agent_id), limit=SHORT_LIST)
    reports = agents.list_agents(s, {"parent_id": agent_id}, limit=PAGE_SIZE)
    names = browse.agent_names(s, [agent.parent_id])
    return render(
        "agent.html",
        title=f"Agent {agent.name}",
        api=[
            f"/api/agents/{agent_id}",
            api_url("/api/tasks", assigned_agent_id=agent_id),
            api_url("/api/logs", agent_id=agent_id),
        ],
        agent=agent,
        names=names,
        reports=reports.items,
        tasks=task_page.items,
        more_tasks=task_page.next_cursor is not None,
        logs=log_page.items,
        more_logs=log_page.next_cursor is not None,
        conversations=browse.conversations_of_agent(s, agent_id, limit=SHORT_LIST),
        emails=browse.emails_of_agent(s, agent_id, limit=SHORT_LIST),
        levels=list(LogLevel),
        **agent_changes(agent_id),
    )


@bp.get("/conversations")
def conversation_list() -> str:
    """Conversations, filtered by status and task, in id order."""
    filters = filter_args(ConversationFilter)
    cursor = text_arg("cursor")
    page = conversations.list_conversations(session(), filters, limit=PAGE_SIZE, cursor=cursor)
    return render(
        "conversations.html",
        title="Conversations",
        api=[api_url("/api/conversations", **filters.query_params(), cursor=cursor)],
        items=page.items,
        statuses=list(ConversationStatus),
        filters=filters,
        next_url=here(cursor=page.next_cursor) if page.next_cursor else None,
        first_url=here(cursor=None) if cursor else None,
    )


@bp.get("/conversations/<int:conversation_id>")
def conversation_page(conversation_id: int) -> str:
    """The message thread (in order, paged) with its participants."""
    s = session()
    conversation = conversations.get_conversation(s, conversation_id)
    cursor = text_arg("cursor")
    messages = conversations.list_messages(s, conversation_id, limit=PAGE_SIZE, cursor=cursor)
    participants = conversations.list_participants(s, conversation_id, limit=PAGE_SIZE)
    ids: list[int | None] = [p.agent_id for p in participants.items]
    ids += [m.sender_agent_id for m in messages.items]
    ids.append(conversation.created_by_agent_id)
    base = f"/api/conversations/{conversation_id}"
    return render(
        "conversation.html",
        title=f"Conversation {conversation.title}",
        api=[base, f"{base}/participants", api_url(f"{base}/messages", cursor=cursor)],
        conversation=conversation,
        messages=messages.items,
        participants=participants.items,
        more_participants=participants.next_cursor is not None,
        names=browse.agent_names(s, ids),
        next_url=here(cursor=messages.next_cursor) if messages.next_cursor else None,
        first_url=here(cursor=None) if cursor else None,
    )
