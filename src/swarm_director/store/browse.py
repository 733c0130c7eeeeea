"""Read-only summaries for people browsing the data (the web console).

Each function answers one question a page asks in a fixed number of statements, whatever the
size of the data: no function here runs a query per row. None writes. Counts, trees of rows
and single records are Core reads (``source``: a session or a bare connection) returning rows
or small dataclasses; the lists of agents, failed tasks, conversations and emails return ORM
objects (they take a session).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Integer, Row, Select, func, literal, select
from sqlalchemy.orm import Session

from swarm_director.models import Agent, AgentLog, Conversation, EmailMessage, Task, TaskStatus
from swarm_director.models.conversation import ConversationParticipant
from swarm_director.store._common import core_connection, fits, read_or_404

#: Busiest tasks are counted over at most this many of the newest logs, so the overview costs
#: the same on a quiet database and during a burst of millions of rows.
BUSIEST_SAMPLE = 10_000
#: Most rows a tree (agents, subtasks) shows; a page never grows without bound.
MAX_TREE_ROWS = 500

M = TypeVar("M")


@dataclass(frozen=True)
class TaskCounts:
    """Tasks per (status, type), with the totals per status and per type."""

    cells: dict[tuple[str, str], int]
    by_status: dict[str, int]
    by_type: dict[str, int]
    total: int


def task_counts(source: Session | Connection) -> TaskCounts:
    """How many tasks there are per status and type (one grouped statement)."""
    stmt = select(Task.status, Task.type, func.count()).group_by(Task.status, Task.type)
    rows = core_connection(source).execute(stmt).all()
    cells: dict[tuple[str, str], int] = {}
    by_status: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for status, type_, count in rows:
        cells[(status.value, type_.value)] = count
        by_status[status.value] = by_status.get(status.value, 0) + count
        by_type[type_.value] = by_type.get(type_.value, 0) + count
    return TaskCounts(cells, by_status, by_type, sum(by_status.values()))


def agent_counts(source: Session | Connection) -> dict[str, int]:
    """How many agents there are per status."""
    stmt = select(Agent.status, func.count()).group_by(Agent.status)
    rows = core_connection(source).execute(stmt).all()
    return {status.value: count for status, count in rows}


def failed_since(session: Session, since: datetime, *, limit: int = 20) -> list[Task]:
    """Tasks that are ``failed`` and changed since ``since``, most recent first."""
    stmt = (
        select(Task)
        .where(Task.status == TaskStatus.FAILED, Task.updated_at >= since)
        .order_by(Task.updated_at.desc(), Task.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def error_logs_since(source: Session | Connection, since: datetime) -> int:
    """How many ``error`` logs were written since ``since`` (index on level, timestamp)."""
    stmt = select(func.count()).where(AgentLog.log_level == "error", AgentLog.timestamp >= since)
    return int(core_connection(source).execute(stmt).scalar_one())


def busiest_tasks(
    source: Session | Connection, since: datetime, *, limit: int = 10
) -> list[Row[Any]]:
    """Tasks with the most logs since ``since`` among the newest :data:`BUSIEST_SAMPLE` logs:
    rows of ``id, title, status, logs``, busiest first."""
    recent = (
        select(AgentLog.task_id)
        .where(AgentLog.timestamp >= since)
        .order_by(AgentLog.timestamp.desc(), AgentLog.id.desc())
        .limit(BUSIEST_SAMPLE)
        .subquery()
    )
    counts = (
        select(recent.c.task_id, func.count().label("logs"))
        .group_by(recent.c.task_id)
        .order_by(func.count().desc(), recent.c.task_id)
        .limit(limit)
        .subquery()
    )
    stmt = (
        select(Task.id, Task.title, Task.status, counts.c.logs)
        .join(counts, counts.c.task_id == Task.id)
        .order_by(counts.c.logs.desc(), Task.id)
    )
    return list(core_connection(source).execute(stmt).all())


@dataclass
class AgentNode:
    """An agent in the hierarchy with its direct reports and its tasks per status."""

    agent: Agent
    depth: int = 0
    tasks: dict[str, int] = field(default_factory=dict)
    children: list[AgentNode] = field(default_factory=list)


def agent_tree(session: Session, *, limit: int = MAX_TREE_ROWS) -> tuple[list[AgentNode], bool]:
    """The agent hierarchy (roots first, each followed by its reports, depth-first) and
    whether it was cut at ``limit`` agents. Agents whose parent was cut appear as roots."""
    agents = list(session.scalars(select(Agent).order_by(Agent.id).limit(limit + 1)))
    truncated = len(agents) > limit
    agents = agents[:limit]
    nodes = {agent.id: AgentNode(agent) for agent in agents}
    if nodes:
        counts = session.execute(
            select(Task.assigned_agent_id, Task.status, func.count())
            .where(Task.assigned_agent_id.in_(list(nodes)))
            .group_by(Task.assigned_agent_id, Task.status)
        ).all()
        for agent_id, status, count in counts:
            if agent_id is not None:
                nodes[agent_id].tasks[status.value] = count
    roots: list[AgentNode] = []
    for node in nodes.values():
        parent_id = node.agent.parent_id
        parent = nodes.get(parent_id) if parent_id is not None else None
        (parent.children if parent is not None else roots).append(node)
    return _depth_first(roots), truncated


def _depth_first(roots: list[AgentNode]) -> list[AgentNode]:
    out: list[AgentNode] = []
    stack = [(node, 0) for node in reversed(roots)]
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if node.agent.id in seen:  # a damaged hierarchy with a loop is shown once
            continue
        seen.add(node.agent.id)
        node.depth = depth
        out.append(node)
        stack.extend((child, depth + 1) for child in reversed(node.children))
    return out


def agent_names(source: Session | Connection, ids: Iterable[int | None]) -> dict[int, str]:
    """Names of the agents with these ids (missing ones are left out), in one statement."""
    wanted = sorted({i for i in ids if i is not None and fits(Agent.id.type, i)})
    if not wanted:
        return {}
    stmt = select(Agent.id, Agent.name).where(Agent.id.in_(wanted))
    rows = core_connection(source).execute(stmt).all()
    return {agent_id: name for agent_id, name in rows}


@dataclass(frozen=True)
class TreeRow:
    """A task in a subtask tree: its depth below the root and its columns."""

    depth: int
    task: Row[Any]


def subtask_tree(
    source: Session | Connection, task_id: int, *, limit: int = MAX_TREE_ROWS
) -> tuple[list[TreeRow], bool]:
    """Every subtask below the task, depth-first in id order, as rows of ``id, title, status,
    parent_task_id``, with whether the tree was cut at ``limit`` rows (one recursive query)."""
    base = select(Task.id, Task.parent_task_id, Task.title, Task.status).where(
        Task.parent_task_id == task_id
    )
    tree = base.cte("subtasks", recursive=True)
    step = select(Task.id, Task.parent_task_id, Task.title, Task.status).join(
        tree, Task.parent_task_id == tree.c.id
    )
    # UNION (not UNION ALL): stored data with a loop still ends.
    tree = tree.union(step)
    rows = core_connection(source).execute(select(tree).order_by(tree.c.id).limit(limit + 1))
    found = rows.all()
    children: dict[int, list[Row[Any]]] = {}
    for row in found[:limit]:
        children.setdefault(row.parent_task_id, []).append(row)
    out: list[TreeRow] = []
    stack = [(row, 1) for row in reversed(children.get(task_id, []))]
    seen: set[int] = set()
    while stack:
        row, depth = stack.pop()
        if row.id in seen:
            continue
        seen.add(row.id)
        out.append(TreeRow(depth, row))
        stack.extend((child, depth + 1) for child in reversed(children.get(row.id, [])))
    return out, len(found) > limit


def task_ancestors(source: Session | Connection, task_id: int, *, limit: int = 50) -> list[Any]:
    """The task's parent, grandparent, ... (nearest first) as rows of ``id, title``."""
    task = read_or_404(source, Task, task_id, "task")
    if task.parent_task_id is None:
        return []
    base = select(Task.id, Task.parent_task_id, Task.title, literal(1, Integer).label("n"))
    base = base.where(Task.id == task.parent_task_id)
    chain = base.cte("ancestors", recursive=True)
    step = select(Task.id, Task.parent_task_id, Task.title, chain.c.n + 1).join(
        chain, Task.id == chain.c.parent_task_id
    )
    chain = chain.union(step)
    stmt = select(chain.c.id, chain.c.title).where(chain.c.n <= limit).order_by(chain.c.n)
    return list(core_connection(source).execute(stmt))


@dataclass(frozen=True)
class LogSpan:
    """When a task's first and last logs were written (None without logs)."""

    first: datetime | None
    last: datetime | None


def log_span(source: Session | Connection, task_id: int) -> LogSpan:
    """First and last log timestamps of a task: two index seeks, never a scan of its logs
    (written as two scalar subqueries so SQLite's min/max optimisation applies to each)."""
    first = select(func.min(AgentLog.timestamp)).where(AgentLog.task_id == task_id)
    last = select(func.max(AgentLog.timestamp)).where(AgentLog.task_id == task_id)
    row = core_connection(source).execute(
        select(first.scalar_subquery().label("first"), last.scalar_subquery().label("last"))
    )
    first_at, last_at = row.one()
    return LogSpan(_aware(first_at), _aware(last_at))


def _aware(value: Any) -> datetime | None:
    # min()/max() come back untyped from SQLite (a string); the column type parses them.
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def conversations_of_agent(
    session: Session, agent_id: int, *, limit: int = 20
) -> list[Conversation]:
    """Conversations the agent takes or took part in, newest first."""
    stmt = (
        select(Conversation)
        .join(ConversationParticipant, ConversationParticipant.conversation_id == Conversation.id)
        .where(ConversationParticipant.agent_id == agent_id)
    )
    return _newest(session, stmt, Conversation.id, limit)


def emails_of_agent(session: Session, agent_id: int, *, limit: int = 20) -> list[EmailMessage]:
    """Emails of the tasks assigned to the agent, newest first."""
    stmt = (
        select(EmailMessage)
        .join(Task, Task.id == EmailMessage.task_id)
        .where(Task.assigned_agent_id == agent_id)
    )
    return _newest(session, stmt, EmailMessage.id, limit)


def _newest(session: Session, stmt: Select[M], id_column: Any, limit: int) -> list[M]:
    """The ``limit`` objects of ``stmt`` with the highest ``id_column``, highest first."""
    return list(session.scalars(stmt.order_by(id_column.desc()).limit(limit)))


def log_record(source: Session | Connection, log_id: int) -> Row[Any]:
    """The log record with this id (its columns, ``meta`` included); NotFoundError if none."""
    return read_or_404(source, AgentLog, log_id, "log record")
