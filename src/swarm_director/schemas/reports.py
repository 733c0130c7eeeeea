"""Reports over a time range: what the API answers and the range it is asked for.

One query model (:class:`ReportQuery`) serves every report, so the API, the client, the CLI
and the console ask the same way; the store resolves it into buckets
(:mod:`swarm_director.store.reports.window`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from swarm_director.schemas.common import ISOTimestamp, OutputModel

Bucket = Literal["minute", "hour", "day"]
GroupBy = Literal["type", "agent", "priority"]


class ReportQuery(BaseModel):
    """The range and buckets of a report: ``since`` inclusive, ``until`` exclusive."""

    model_config = ConfigDict(extra="forbid")

    since: ISOTimestamp | None = Field(
        default=None, description="Start (ISO 8601, inclusive); default: 24 h before `until`."
    )
    until: ISOTimestamp | None = Field(
        default=None, description="End (ISO 8601, exclusive); default: now."
    )
    bucket: Bucket = Field(default="hour", description="Bucket width: minute, hour or day.")
    tz: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone of day buckets (e.g. `Europe/Berlin`); minute and hour "
        "buckets are UTC.",
    )
    by: GroupBy | None = Field(
        default=None, description="Tasks report only: one series per type, agent or priority."
    )

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or Europe/Berlin") from None
        return value


class ReportRange(OutputModel):
    """The range a report covers and its buckets' starts (in `tz` for day buckets)."""

    since: AwareDatetime
    until: AwareDatetime
    bucket: Bucket
    tz: str
    buckets: list[AwareDatetime] = Field(description="The start of each bucket, oldest first.")


class TaskSeries(OutputModel):
    """Counts per bucket of one group (all tasks when the report is not grouped)."""

    key: str | None = Field(description="The type, priority or agent id; null: all, or none.")
    label: str
    created: list[int]
    completed: list[int]
    failed: list[int]


class TaskCountsReport(OutputModel):
    """Tasks created (by `created_at`), completed (queue `complete` steps) and failed (queue
    `fail` steps and lease expiries that used up the attempts) per bucket."""

    range: ReportRange
    by: GroupBy | None
    series: list[TaskSeries]
    totals: dict[str, int]


class LogVolumeReport(OutputModel):
    """Log records per level per bucket (by the record's `timestamp`)."""

    range: ReportRange
    levels: dict[str, list[int]]
    totals: dict[str, int]


class EmailReport(OutputModel):
    """Emails sent (by `sent_at`) and failed (status changes to failed) per bucket."""

    range: ReportRange
    sent: list[int]
    failed: list[int]
    totals: dict[str, int]


class DurationRow(OutputModel):
    """Attempts of one task type claimed in the range, in seconds (nearest-rank percentiles,
    to the millisecond)."""

    type: str
    attempts: int
    tasks: int = Field(description="Tasks with a claim in the range.")
    retries: int = Field(description="Claims in the range that were not a task's first.")
    retries_per_task: float
    wait_p50_s: float | None = Field(description="Ready (created, due or expired) → claimed.")
    wait_p95_s: float | None
    run_p50_s: float | None = Field(description="Claimed → completed (completed attempts).")
    run_p95_s: float | None


class DurationReport(OutputModel):
    range: ReportRange
    types: list[DurationRow]


class FailureRow(OutputModel):
    """Attempts claimed in the range and how they ended."""

    key: str | None
    label: str
    attempts: int
    completed: int
    failed: int = Field(description="Ended by fail, retry or lease expiry.")
    running: int = Field(description="Not ended yet (or ended by hand).")
    failure_rate: float | None = Field(description="failed / (completed + failed).")


class ErrorGroup(OutputModel):
    """Errors whose messages are equal once numbers and ids are masked."""

    source: Literal["task", "log"]
    pattern: str
    count: int
    example: str
    ids: list[int] = Field(description="Up to 5 task ids (source task) or log ids (source log).")
    last_at: AwareDatetime


class FailureReport(OutputModel):
    range: ReportRange
    by_type: list[FailureRow]
    by_agent: list[FailureRow]
    errors: list[ErrorGroup]


class DraftReport(OutputModel):
    """Drafts approved in the range (by the approval's time) and the version that was."""

    range: ReportRange
    approved: int
    versions: dict[int, int] = Field(description="How many approvals came at each version.")
    mean_versions: float | None
    p50_versions: int | None
    p95_versions: int | None
    max_versions: int | None


def utc_text(value: datetime) -> str:
    """A timestamp as a short ISO 8601 string (``Z`` for UTC)."""
    return value.isoformat().replace("+00:00", "Z")
