"""Reports over a time range (see docs/reports.md): counts per bucket, durations, failure
rates and the most frequent errors, computed by the database from the tasks, the logs and the
history of every change. Each function takes a session or connection and a
:class:`~swarm_director.schemas.reports.ReportQuery`."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from swarm_director.models.log_pattern import mask
from swarm_director.schemas.reports import FailureReport, ReportQuery
from swarm_director.store._common import core_connection
from swarm_director.store.reports.activity import draft_approvals, email_outcomes, log_volume
from swarm_director.store.reports.attempt_times import durations
from swarm_director.store.reports.attempts import failure_rows
from swarm_director.store.reports.errors import top_errors
from swarm_director.store.reports.task_counts import task_counts
from swarm_director.store.reports.window import MAX_BUCKETS, Window, resolve


def failures(
    source: Session | Connection,
    query: ReportQuery | None = None,
    *,
    window: Window | None = None,
    rollup: bool = True,
) -> FailureReport:
    """Failure rates of the attempts claimed in the range by task type and by agent, and the
    most frequent errors. ``rollup=False`` counts the failure rates from every attempt
    instead of the digests and ``attempt_count_hours``, and the errors from every failed step
    (the same figures). Raises ValidationError for a bad
    range."""
    window = window or resolve(query)
    connection = core_connection(source)
    rows = failure_rows(connection, window, rollup=rollup)
    return FailureReport(
        range=window.described(),
        by_type=rows["type"],
        by_agent=rows["agent"],
        errors=top_errors(connection, window, rollup=rollup),
    )


__all__ = [
    "MAX_BUCKETS",
    "Window",
    "draft_approvals",
    "durations",
    "email_outcomes",
    "failures",
    "log_volume",
    "mask",
    "resolve",
    "task_counts",
]
