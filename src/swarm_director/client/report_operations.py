"""The reports' operations (see :mod:`.operations` for the others): each takes the range
as keyword arguments (``since``, ``until``: datetimes or ISO 8601 text; ``bucket``:
minute, hour or day; ``tz``: an IANA zone for day buckets)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict, TypeVar, Unpack

from pydantic import BaseModel

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
R = TypeVar("R", bound=BaseModel)


class ReportRangeArgs(TypedDict, total=False):
    """The range of every report: ``since``, ``until``, ``bucket`` (default hour), ``tz``
    (default UTC)."""

    since: When
    until: When
    bucket: str
    tz: str


def _report(name: str, model: type[R], by: str | None = None, **args: Any) -> Call[R]:
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
    return _report("tasks", TaskCountsReport, by, **args)


def report_durations(**args: Unpack[ReportRangeArgs]) -> Call[DurationReport]:
    """Wait and run p50/p95 and retries per task type."""
    return _report("durations", DurationReport, **args)


def report_failures(**args: Unpack[ReportRangeArgs]) -> Call[FailureReport]:
    """Failure rates by type and agent, and the most frequent errors."""
    return _report("failures", FailureReport, **args)


def report_logs(**args: Unpack[ReportRangeArgs]) -> Call[LogVolumeReport]:
    """Log records per level per bucket."""
    return _report("logs", LogVolumeReport, **args)


def report_emails(**args: Unpack[ReportRangeArgs]) -> Call[EmailReport]:
    """Emails sent and failed per bucket."""
    return _report("emails", EmailReport, **args)


def report_drafts(**args: Unpack[ReportRangeArgs]) -> Call[DraftReport]:
    """Drafts approved in the range and their versions until approval."""
    return _report("drafts", DraftReport, **args)
