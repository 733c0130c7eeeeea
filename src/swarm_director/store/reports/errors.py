"""The most frequent errors: failed attempts' messages (from the history) and error-level log
records, grouped by their message with numbers and ids masked.

Masking is done here rather than in SQL: SQLite has no regular expressions, and one Python
function keeps both dialects' groups identical. The database groups equal raw messages first,
so what comes back is one row per distinct message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select

from swarm_director.enums import LogLevel
from swarm_director.models.history import HistoryEntry
from swarm_director.models.log import AgentLog
from swarm_director.schemas.reports import ErrorGroup
from swarm_director.store.reports.window import Window

#: Most groups reported, and ids kept as examples per group.
TOP_ERRORS = 10
EXAMPLE_IDS = 5
#: Distinct raw messages read per source: a bound on the work, kept far above a real swarm's.
MAX_DISTINCT = 20_000

_MASKS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def mask(message: str) -> str:
    """``message`` with UUIDs, long hex ids and numbers replaced by placeholders, on one line
    of at most 200 characters."""
    text = " ".join(message.split())
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text[:200]


@dataclass
class _Group:
    count: int = 0
    example: str = ""
    ids: list[int] = field(default_factory=list)
    last_at: datetime | None = None


def top_errors(connection: Connection, window: Window) -> list[ErrorGroup]:
    """The :data:`TOP_ERRORS` most frequent error groups of failed attempts and error logs in
    the range, most frequent first."""
    h = HistoryEntry
    message = h.changes[("last_error", 1)].as_string()
    attempts = (
        select(message, func.count(), func.max(h.at), func.min(h.entity_id))
        .where(
            h.entity == "task",
            h.action.in_(("fail", "retry", "expire")),
            h.at >= window.since,
            h.at < window.until,
        )
        .group_by(message)
        .limit(MAX_DISTINCT)
    )
    logs = (
        select(AgentLog.message, func.count(), func.max(AgentLog.timestamp), func.min(AgentLog.id))
        .where(
            AgentLog.log_level == LogLevel.ERROR,
            AgentLog.timestamp >= window.since,
            AgentLog.timestamp < window.until,
        )
        .group_by(AgentLog.message)
        .limit(MAX_DISTINCT)
    )
    groups: dict[tuple[str, str], _Group] = {}
    for source, stmt in (("task", attempts), ("log", logs)):
        for text, count, last_at, first_id in connection.execute(stmt):
            _add(groups, source, text, count, last_at, first_id)
    ranked = sorted(groups.items(), key=lambda item: (-item[1].count, item[0]))
    return [
        ErrorGroup(
            source=source,
            pattern=pattern,
            count=group.count,
            example=group.example,
            ids=sorted(group.ids),
            last_at=group.last_at,
        )
        for (source, pattern), group in ranked[:TOP_ERRORS]
    ]


def _add(
    groups: dict[tuple[str, str], _Group],
    source: str,
    text: str | None,
    count: int,
    last_at: datetime,
    first_id: int,
) -> None:
    raw = text or "(no message)"
    group = groups.setdefault((source, mask(raw)), _Group(example=raw[:500]))
    group.count += count
    if len(group.ids) < EXAMPLE_IDS and first_id not in group.ids:
        group.ids.append(first_id)
    if group.last_at is None or last_at > group.last_at:
        group.last_at = last_at
        group.example = raw[:500]
