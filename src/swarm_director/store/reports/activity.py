"""Log volume per level, emails sent and failed, and drafts' versions until approval."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import Connection, Select, func, select, text
from sqlalchemy.orm import Session

from swarm_director.enums import DraftStatus, LogLevel
from swarm_director.models.draft import Draft
from swarm_director.models.email import EmailMessage
from swarm_director.models.history import EMAIL_STEPS, HistoryEntry
from swarm_director.models.log import AgentLog
from swarm_director.models.rollup import hour_start
from swarm_director.schemas.reports import DraftReport, EmailReport, LogVolumeReport, ReportQuery
from swarm_director.store._common import core_connection
from swarm_director.store.reports.rollups import LOG_VOLUME, log_hours, read_edges, whole_hours
from swarm_director.store.reports.window import Window, resolve


def log_volume(
    source: Session | Connection,
    query: ReportQuery | None = None,
    *,
    window: Window | None = None,
    rollup: bool = True,
) -> LogVolumeReport:
    """Log records per level per bucket, by their ``timestamp``: whole UTC hours from
    ``log_volume_hours`` where the buckets allow, the rest from the logs. Raises
    ValidationError for a bad range. ``rollup=False``: every bucket from the logs (what the
    tests and the benchmark compare with)."""
    window = window or resolve(query)
    connection = core_connection(source)
    levels = {level.value: [0] * len(window.starts) for level in LogLevel}
    # Whole UTC hours from the rollup; the partial hours at either end from the logs, or as
    # the rollup's hour less the logs of the rest of it (whichever holds fewer logs).
    span = whole_hours(window) if rollup else None
    raw = [(window.since, window.until)]
    if span is not None:
        for hour, level, count in log_hours(connection, span):
            levels[level][window.index_of(hour_start(hour))] += count
        raw, counted = read_edges(
            connection, window.since, window.until, span, LOG_VOLUME, _level_counts
        )
        for start, (level, count) in counted:
            levels[str(level)][window.index_of(start)] += count
    bucket = window.bucket_sql(AgentLog.timestamp, connection.dialect.name).label("b")
    for since, until in raw:
        if since >= until:
            continue
        stmt = (
            select(bucket, AgentLog.log_level, func.count())
            .where(AgentLog.timestamp >= since, AgentLog.timestamp < until)
            .group_by(bucket, AgentLog.log_level)
        )
        for index, level, count in connection.execute(stmt):
            levels[level.value][index] += count
    return LogVolumeReport(
        range=window.described(),
        levels=levels,
        totals={name: sum(values) for name, values in levels.items()},
    )


def _level_counts(since: datetime, until: datetime) -> Select[LogLevel, int]:
    return (
        select(AgentLog.log_level, func.count())
        .where(AgentLog.timestamp >= since, AgentLog.timestamp < until)
        .group_by(AgentLog.log_level)
    )


def email_outcomes(
    source: Session | Connection, query: ReportQuery | None = None, *, window: Window | None = None
) -> EmailReport:
    """Emails sent (by ``sent_at``) and failed (each recorded change to failed: a send
    failure or a bounce) per bucket. Raises ValidationError for a bad range."""
    window = window or resolve(query)
    connection = core_connection(source)
    sent = window.counts(connection, EmailMessage.sent_at)
    failed = window.counts(
        connection,
        HistoryEntry.at,
        text(EMAIL_STEPS),  # as the partial index ix_history_email_at says it
        HistoryEntry.changes[("status", 1)].as_string() == "failed",
    )
    return EmailReport(
        range=window.described(),
        sent=sent,
        failed=failed,
        totals={"sent": sum(sent), "failed": sum(failed)},
    )


def draft_approvals(
    source: Session | Connection, query: ReportQuery | None = None, *, window: Window | None = None
) -> DraftReport:
    """Drafts approved in the range (by the approving change's ``updated_at``; a draft's
    content never changes, so its last change is its review) and the version each was: how
    many versions a document took until approval. Raises ValidationError for a bad range."""
    window = window or resolve(query)
    connection = core_connection(source)
    stmt = (
        select(Draft.version, func.count())
        .where(
            Draft.status == DraftStatus.APPROVED,
            Draft.updated_at >= window.since,
            Draft.updated_at < window.until,
        )
        .group_by(Draft.version)
    )
    versions = Counter({version: count for version, count in connection.execute(stmt)})
    ordered = sorted(versions.elements())
    n = len(ordered)

    def rank(p: int) -> int | None:
        return ordered[(p * n + 99) // 100 - 1] if n else None

    return DraftReport(
        range=window.described(),
        approved=n,
        versions=dict(sorted(versions.items())),
        mean_versions=round(sum(ordered) / n, 3) if n else None,
        p50_versions=rank(50),
        p95_versions=rank(95),
        max_versions=ordered[-1] if n else None,
    )
