"""Which logs a cleanup deletes: an age for every level, a longer one for some, a task status.

``--keep error=90d,warning=60d`` is parsed here; the policy turns into the ``WHERE`` clause of
every read and delete of the run, and into the per-level cutoffs that decide whether a whole
monthly partition may go (:mod:`.partitions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from swarm_director.durations import parse_duration
from swarm_director.models import AgentLog, LogLevel, Task, TaskStatus
from swarm_director.ops.dbinfo import table_of
from swarm_director.ops.errors import RetentionError

LOGS = table_of(AgentLog)
TASKS = table_of(Task)


def parse_keep(text: str | None) -> dict[LogLevel, timedelta]:
    """``error=90d,warning=60d`` as {level: duration}."""
    keep: dict[LogLevel, timedelta] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        level, sep, duration = part.partition("=")
        try:
            parsed_level = LogLevel(level.strip().lower())
        except ValueError:
            levels = ", ".join(v.value for v in LogLevel)
            raise RetentionError(f"unknown log level {level.strip()!r} (use {levels})") from None
        if not sep:
            raise RetentionError(f"--keep needs LEVEL=DURATION, got {part.strip()!r}")
        keep[parsed_level] = parse_duration(duration)
    return keep


@dataclass
class RetentionPolicy:
    """Which logs go: older than ``older_than``, except levels with their own ``keep``."""

    older_than: timedelta
    keep: dict[LogLevel, timedelta] = field(default_factory=dict)
    task_statuses: list[TaskStatus] | None = None

    def criteria(self, now: datetime) -> sa.ColumnElement[bool]:
        level = LOGS.c.log_level
        branches = [
            sa.and_(level == lvl, LOGS.c.timestamp < now - age) for lvl, age in self.keep.items()
        ]
        others = LOGS.c.timestamp < now - self.older_than
        if self.keep:
            others = sa.and_(level.not_in(list(self.keep)), others)
        where: sa.ColumnElement[bool] = sa.or_(*branches, others)
        if self.task_statuses:
            finished = sa.select(TASKS.c.id).where(TASKS.c.status.in_(self.task_statuses))
            where = sa.and_(where, LOGS.c.task_id.in_(finished))
        return where

    def keep_cutoffs(self, now: datetime) -> dict[LogLevel, datetime]:
        """{level: the instant before which that level's rows go}."""
        return {level: now - age for level, age in self.keep.items()}

    def describe(self) -> dict[str, Any]:
        return {
            "older_than_s": self.older_than.total_seconds(),
            "keep_s": {k.value: v.total_seconds() for k, v in self.keep.items()},
            "task_status": [s.value for s in self.task_statuses] if self.task_statuses else None,
        }
