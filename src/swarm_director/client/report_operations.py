"""The reports' operations (see :mod:`.operations` for the others): each takes the range
as keyword arguments (``since``, ``until``: datetimes or ISO 8601 text; ``bucket``:
minute, hour or day; ``tz``: an IANA zone for day buckets)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from swarm_director.client.calls import Call, query
from swarm_director.schemas.reports import (
    DraftReport,
    DurationReport,
    EmailReport,
    FailureReport,
    LogVolumeReport,
    TaskCountsReport,
)

When = datetime | str | None


def _report(name: str, model: type[Any], **params: Any) -> Call[Any]:
    return Call("GET", f"/api/reports/{name}", model, params=query(**params))


def report_tasks(
    *,
    since: When = None,
    until: When = None,
    bucket: str = "hour",
    tz: str = "UTC",
    by: str | None = None,
) -> Call[TaskCountsReport]:
    """Tasks created, completed and failed per bucket (``by``: type, priority or agent)."""
    call: Call[TaskCountsReport] = _report(
        "tasks", TaskCountsReport, since=since, until=until, bucket=bucket, tz=tz, by=by
    )
    return call


def report_durations(
    *, since: When = None, until: When = None, bucket: str = "hour", tz: str = "UTC"
) -> Call[DurationReport]:
    """Wait and run p50/p95 and retries per task type."""
    call: Call[DurationReport] = _report(
        "durations", DurationReport, since=since, until=until, bucket=bucket, tz=tz
    )
    return call


def report_failures(
    *, since: When = None, until: When = None, bucket: str = "hour", tz: str = "UTC"
) -> Call[FailureReport]:
    """Failure rates by type and agent, and the most frequent errors."""
    call: Call[FailureReport] = _report(
        "failures", FailureReport, since=since, until=until, bucket=bucket, tz=tz
    )
    return call


def report_logs(
    *, since: When = None, until: When = None, bucket: str = "hour", tz: str = "UTC"
) -> Call[LogVolumeReport]:
    """Log records per level per bucket."""
    call: Call[LogVolumeReport] = _report(
        "logs", LogVolumeReport, since=since, until=until, bucket=bucket, tz=tz
    )
    return call


def report_emails(
    *, since: When = None, until: When = None, bucket: str = "hour", tz: str = "UTC"
) -> Call[EmailReport]:
    """Emails sent and failed per bucket."""
    call: Call[EmailReport] = _report(
        "emails", EmailReport, since=since, until=until, bucket=bucket, tz=tz
    )
    return call


def report_drafts(
    *, since: When = None, until: When = None, bucket: str = "hour", tz: str = "UTC"
) -> Call[DraftReport]:
    """Drafts approved in the range and their versions until approval."""
    call: Call[DraftReport] = _report(
        "drafts", DraftReport, since=since, until=until, bucket=bucket, tz=tz
    )
    return call
