"""The reports' operations (see :mod:`.operations` for the others): each takes the range
as keyword arguments (``since``, ``until``: datetimes or ISO 8601 text; ``bucket``:
minute, hour or day; ``tz``: an IANA zone for day buckets)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict, Unpack

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


class ReportRangeArgs(TypedDict, total=False):
    """The range of every report: ``since``, ``until``, ``bucket`` (default hour), ``tz``
    (default UTC)."""

    since: When
    until: When
    bucket: str
    tz: str


def _report(name: str, model: type[Any], by: str | None = None, **args: Any) -> Call[Any]:
    unknown = set(args) - set(ReportRangeArgs.__annotations__)
    if unknown:
        raise TypeError(f"unexpected keyword argument {min(unknown)!r}")
    params = query(
        since=args.get("since"),
        until=args.get("until"),
        bucket=args.get("bucket", "hour"),
        tz=args.get("tz", "UTC"),
        by=by,
    )
    return Call("GET", f"/api/reports/{name}", model, params=params)


def report_tasks(
    *, by: str | None = None, **args: Unpack[ReportRangeArgs]
) -> Call[TaskCountsReport]:
    """Tasks created, completed and failed per bucket (``by``: type, priority or agent)."""
    call: Call[TaskCountsReport] = _report("tasks", TaskCountsReport, by, **args)
    return call


def report_durations(**args: Unpack[ReportRangeArgs]) -> Call[DurationReport]:
    """Wait and run p50/p95 and retries per task type."""
    call: Call[DurationReport] = _report("durations", DurationReport, **args)
    return call


def report_failures(**args: Unpack[ReportRangeArgs]) -> Call[FailureReport]:
    """Failure rates by type and agent, and the most frequent errors."""
    call: Call[FailureReport] = _report("failures", FailureReport, **args)
    return call


def report_logs(**args: Unpack[ReportRangeArgs]) -> Call[LogVolumeReport]:
    """Log records per level per bucket."""
    call: Call[LogVolumeReport] = _report("logs", LogVolumeReport, **args)
    return call


def report_emails(**args: Unpack[ReportRangeArgs]) -> Call[EmailReport]:
    """Emails sent and failed per bucket."""
    call: Call[EmailReport] = _report("emails", EmailReport, **args)
    return call


def report_drafts(**args: Unpack[ReportRangeArgs]) -> Call[DraftReport]:
    """Drafts approved in the range and their versions until approval."""
    call: Call[DraftReport] = _report("drafts", DraftReport, **args)
    return call
