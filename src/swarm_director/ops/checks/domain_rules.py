"""``db check``'s domain rules: what the store keeps true that the schema cannot say.

Enum values outside their set, hierarchy cycles (agents, tasks), draft version gaps and
duplicates, email ``sent_at`` against status, counters against the rows they count, and the
reports' rollup against the logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from swarm_director.models import (
    Agent,
    Conversation,
    ConversationParticipant,
    Draft,
    EmailMessage,
    EmailStatus,
    Message,
    Task,
)
from swarm_director.models.attempt import attempts_drift
from swarm_director.models.attempt_count import UNASSIGNED, attempt_counts_drift
from swarm_director.models.attempt_digest import digests_drift
from swarm_director.models.error_group import error_groups_drift
from swarm_director.models.rollup import hour_start, log_hours_drift, task_hours_drift
from swarm_director.ops.checks.findings import Problem
from swarm_director.ops.dbinfo import present_model_tables, table_of


def enum_values(conn: Connection) -> Iterable[Problem]:
    for table in present_model_tables(conn):
        pk = next(iter(table.primary_key.columns))
        for column in table.columns:
            if not isinstance(column.type, sa.Enum):
                continue
            allowed = list(column.type.enums)
            raw = sa.type_coerce(column, sa.String())
            query = sa.select(pk, raw).where(raw.is_not(None), raw.not_in(allowed)).order_by(pk)
            for row_id, value in conn.execute(query):
                yield Problem(
                    "enum_value",
                    table.name,
                    row_id,
                    f"{column.name}={value!r} is not one of {', '.join(allowed)}",
                )


def _cycles(edges: dict[int, int]) -> list[list[int]]:
    """Every cycle in the parent graph ``edges`` (child -> parent), each once."""
    done: set[int] = set()
    cycles: list[list[int]] = []
    for start in edges:
        if start in done:
            continue
        path: list[int] = []
        on_path: dict[int, int] = {}
        node: int | None = start
        while node is not None and node not in done and node not in on_path:
            on_path[node] = len(path)
            path.append(node)
            node = edges.get(node)
        if node is not None and node in on_path:
            cycles.append(path[on_path[node] :])
        done.update(path)
    return cycles


def _hierarchy_cycles(
    conn: Connection, rule: str, table: sa.Table, parent: sa.Column[Any]
) -> Iterable[Problem]:
    pk = table.c.id
    edges = {
        int(child): int(par)
        for child, par in conn.execute(sa.select(pk, parent).where(parent.is_not(None)))
    }
    for cycle in _cycles(edges):
        first = cycle.index(min(cycle))
        ordered = cycle[first:] + cycle[:first]
        chain = " -> ".join(str(i) for i in [*ordered, ordered[0]])
        yield Problem(rule, table.name, ordered[0], f"{parent.name} cycle {chain}")


def agent_cycles(conn: Connection) -> Iterable[Problem]:
    table = table_of(Agent)
    return _hierarchy_cycles(conn, "agent_cycle", table, table.c.parent_id)


def task_cycles(conn: Connection) -> Iterable[Problem]:
    table = table_of(Task)
    return _hierarchy_cycles(conn, "task_cycle", table, table.c.parent_task_id)


def _draft_versions(conn: Connection, having: sa.ColumnElement[bool]) -> dict[int, list[Any]]:
    drafts = table_of(Draft)
    flagged = (
        sa.select(drafts.c.task_id).group_by(drafts.c.task_id).having(having).scalar_subquery()
    )
    rows = conn.execute(
        sa.select(drafts.c.task_id, drafts.c.id, drafts.c.version)
        .where(drafts.c.task_id.in_(flagged))
        .order_by(drafts.c.task_id, drafts.c.version, drafts.c.id)
    )
    by_task: dict[int, list[Any]] = {}
    for task_id, draft_id, version in rows:
        by_task.setdefault(task_id, []).append((draft_id, version))
    return by_task


def draft_duplicates(conn: Connection) -> Iterable[Problem]:
    drafts = table_of(Draft)
    having = sa.func.count() != sa.func.count(sa.distinct(drafts.c.version))
    for task_id, versions in _draft_versions(conn, having).items():
        seen: set[int] = set()
        for draft_id, version in versions:
            if version in seen:
                yield Problem(
                    "draft_version_duplicate",
                    "drafts",
                    draft_id,
                    f"task {task_id} has version {version} more than once",
                )
            seen.add(version)


def draft_gaps(conn: Connection) -> Iterable[Problem]:
    drafts = table_of(Draft)
    distinct = sa.func.count(sa.distinct(drafts.c.version))
    having = sa.or_(sa.func.min(drafts.c.version) != 1, sa.func.max(drafts.c.version) != distinct)
    for task_id, versions in _draft_versions(conn, having).items():
        expected = 1
        for draft_id, version in versions:
            if version > expected:
                missing = f"{expected}" if version == expected + 1 else f"{expected}..{version - 1}"
                yield Problem(
                    "draft_version_gap",
                    "drafts",
                    draft_id,
                    f"task {task_id} jumps to version {version}; missing {missing}",
                )
            elif version < 1:
                yield Problem(
                    "draft_version_gap",
                    "drafts",
                    draft_id,
                    f"task {task_id} has version {version}; versions start at 1",
                )
            expected = max(expected, version + 1)


def email_sent_at(conn: Connection) -> Iterable[Problem]:
    emails = table_of(EmailMessage)
    status = sa.type_coerce(emails.c.status, sa.String())
    # The store sets sent_at on the change to sent, keeps it through delivered or a bounce
    # (sent -> failed) and clears it on a retry (-> queued): sent/delivered must have it,
    # draft/queued must not, failed may or may not (it failed before or after leaving).
    left = [EmailStatus.SENT.value, EmailStatus.DELIVERED.value]
    not_left = [EmailStatus.DRAFT.value, EmailStatus.QUEUED.value]
    query = (
        sa.select(emails.c.id, status, emails.c.sent_at)
        .where(
            sa.or_(
                sa.and_(status.in_(left), emails.c.sent_at.is_(None)),
                sa.and_(status.in_(not_left), emails.c.sent_at.is_not(None)),
            )
        )
        .order_by(emails.c.id)
    )
    for email_id, value, sent_at in conn.execute(query):
        if sent_at is None:
            message = f"status is {value} but sent_at is empty"
        else:
            message = f"status is {value} but sent_at is set ({sent_at})"
        yield Problem("email_sent_at", "email_messages", email_id, message)


def counters(conn: Connection) -> Iterable[Problem]:
    agents = table_of(Agent)
    conversations = table_of(Conversation)
    messages = table_of(Message)
    participants = table_of(ConversationParticipant)
    # (owner table, counter column, correlated count of the rows it counts, lifetime?)
    # Conversation and participant counters are exact. The agents' totals are lifetime
    # statistics the store keeps when a conversation is deleted, so they may exceed the rows
    # left, never fall short of them.
    rules: list[tuple[sa.Table, sa.Column[Any], sa.ScalarSelect[Any], bool]] = [
        (
            conversations,
            conversations.c.message_count,
            sa.select(sa.func.count())
            .where(messages.c.conversation_id == conversations.c.id)
            .scalar_subquery(),
            False,
        ),
        (
            conversations,
            conversations.c.participant_count,
            sa.select(sa.func.count())
            .where(
                participants.c.conversation_id == conversations.c.id,
                participants.c.is_active.is_(True),
            )
            .scalar_subquery(),
            False,
        ),
        (
            agents,
            agents.c.total_messages_sent,
            sa.select(sa.func.count())
            .where(messages.c.sender_agent_id == agents.c.id)
            .scalar_subquery(),
            True,
        ),
        (
            agents,
            agents.c.total_conversations,
            sa.select(sa.func.count())
            .where(participants.c.agent_id == agents.c.id)
            .scalar_subquery(),
            True,
        ),
        (
            participants,
            participants.c.message_count,
            sa.select(sa.func.count())
            .where(
                messages.c.conversation_id == participants.c.conversation_id,
                messages.c.sender_agent_id == participants.c.agent_id,
            )
            .scalar_subquery(),
            False,
        ),
    ]
    for owner, column, actual, lifetime in rules:
        wrong = column < actual if lifetime else column != actual
        query = sa.select(owner.c.id, column, actual).where(wrong).order_by(owner.c.id)
        for row_id, stored, counted in conn.execute(query):
            yield Problem(
                "counter",
                owner.name,
                row_id,
                f"{column.name} is {stored} but the rows say "
                f"{'at least ' if lifetime else ''}{counted}",
            )


def rollup_drift(conn: Connection) -> Iterable[Problem]:
    """Hours where ``log_volume_hours`` or ``error_group_hours`` differs from a count of the
    logs (logs inserted on SQLite by other means than the store), ``task_count_hours`` from
    the tasks and their history, ``attempt_count_hours`` from the attempts, or a digest of
    ``attempt_digests`` from its hour's attempts; and ``task_attempts`` rows that differ from
    the attempts the history holds. Repaired by
    ``db rebuild-rollups``. The rows and the rollup are read in separate statements, of one
    snapshot (see ``db_check._run``)."""
    for hour, level, kept, counted in log_hours_drift(conn):
        at = _hour_label(hour)
        yield Problem(
            "rollup_drift",
            "log_volume_hours",
            None,
            f"{at} {level}: the rollup says {kept}, the logs are {counted}",
        )
    for hour, pattern, kept, counted in error_groups_drift(conn):
        at = _hour_label(hour)
        yield Problem(
            "rollup_drift",
            "error_group_hours",
            None,
            f"{at} {pattern or '(no pattern)'}: the rollup says {kept}, the error logs are "
            f"{counted}",
        )
    for (hour, kind, type_, priority), kept, counted in task_hours_drift(conn):
        at = _hour_label(hour)
        yield Problem(
            "rollup_drift",
            "task_count_hours",
            None,
            f"{at} {kind} {type_}/{priority}: the rollup says {kept}, the tasks are {counted}",
        )
    for (hour, kind, type_, agent), kept, counted in attempt_counts_drift(conn):
        at = _hour_label(hour)
        who = "no agent" if agent == str(UNASSIGNED) else f"agent {agent}"
        yield Problem(
            "rollup_drift",
            "attempt_count_hours",
            None,
            f"{at} {kind} {type_}/{who}: the rollup says {kept}, the attempts are {counted}",
        )
    for hour in digests_drift(conn):
        yield Problem(
            "rollup_drift",
            "attempt_digests",
            None,
            f"{_hour_label(hour)}: the digest differs from the attempts and failed steps of "
            "the hour",
        )
    for claim_id, kept_row, derived_row in attempts_drift(conn):
        yield Problem(
            "rollup_drift",
            "task_attempts",
            claim_id,
            f"claim {claim_id}: the table says {_attempt_text(kept_row)}, the history says "
            f"{_attempt_text(derived_row)}",
        )


def _hour_label(hour: int) -> str:
    """An :func:`~swarm_director.models.rollup.epoch_hour` as the check prints it."""
    return hour_start(hour).strftime("%Y-%m-%dT%H:00Z")


def _attempt_text(row: tuple[Any, ...] | None) -> str:
    """An attempt row as the check prints it: agent, attempt, wait, run and end."""
    if row is None:
        return "no attempt"
    _claim, _task, agent, attempt, _at, wait, run, end = row
    return f"agent {agent}, attempt {attempt}, wait {wait} s, run {run} s, ended by {end}"
