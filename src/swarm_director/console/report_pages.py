"""The console's Reports page (and the overview's small charts of the last 24 hours): the
reports of :mod:`swarm_director.store.reports` drawn as server-rendered SVG bars, each with
its numbers as a table, and each bar a link to the listing of what it counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import request, url_for
from pydantic import ValidationError as PydanticValidationError

from swarm_director.console.charts import Chart, Series, bar_list, column_chart
from swarm_director.console.common import api_url, bad_param, bp, render
from swarm_director.db import utcnow
from swarm_director.enums import LogLevel
from swarm_director.schemas.reports import FailureRow, ReportQuery, ReportRange
from swarm_director.store import reports
from swarm_director.store.reports import Window
from swarm_director.web.context import connection

#: The range picker's choices: label → (span, bucket).
RANGES: dict[str, tuple[timedelta, str]] = {
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "day"),
    "30d": (timedelta(days=30), "day"),
}
DEFAULT_RANGE = "24h"
LEVEL_CSS = {level.value: f"c-{level.value}" for level in LogLevel}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _picked() -> tuple[str, ReportQuery]:
    """The range of the query string: a choice of :data:`RANGES`, in a time zone."""
    choice = request.args.get("range", "").strip() or DEFAULT_RANGE
    if choice not in RANGES:
        raise bad_param("range", f"must be one of {', '.join(RANGES)}")
    span, bucket = RANGES[choice]
    tz = request.args.get("tz", "").strip() or "UTC"
    now = utcnow()
    try:
        query = ReportQuery(since=now - span, until=now, bucket=bucket, tz=tz)
    except PydanticValidationError:
        raise bad_param("tz", "must be an IANA time zone such as UTC or Europe/Berlin") from None
    if bucket != "day" and tz != "UTC":
        query = query.model_copy(update={"tz": "UTC"})  # hours are UTC; the zone is for days
    return choice, query


def _span(described: ReportRange, index: int) -> dict[str, Any]:
    """``since``/``until`` of bucket ``index``, clipped to the range."""
    starts = described.buckets
    since = max(starts[index], described.since)
    until = starts[index + 1] if index + 1 < len(starts) else described.until
    return {"since": _iso(since), "until": _iso(min(until, described.until))}


def task_chart(window: Window, *, small: bool = False) -> Chart:
    """Tasks created, completed and failed per bucket; a bar links to the history of those
    steps in its bucket (the Activity page)."""
    result = reports.task_counts(connection(), window=window)
    (series,) = result.series
    described = result.range

    def activity(action: str) -> Any:
        return lambda i: url_for(
            "console.activity", entity="task", action=action, **_span(described, i)
        )

    return column_chart(
        "chart-tasks-small" if small else "chart-tasks",
        "Tasks per " + window.bucket,
        described.buckets,
        window.bucket,
        [
            Series("created", "c-created", series.created, activity("create")),
            Series("completed", "c-completed", series.completed, activity("complete")),
            Series("failed", "c-failed", series.failed, activity("fail")),
        ],
        small=small,
    )


def log_chart(window: Window, *, small: bool = False) -> Chart:
    """Log records per level per bucket, stacked; a segment links to the log listing of its
    bucket from that level up (the listing's level filter is a minimum)."""
    result = reports.log_volume(connection(), window=window)
    described = result.range

    def logs(level: str) -> Any:
        return lambda i: url_for("console.log_list", level=level, **_span(described, i))

    return column_chart(
        "chart-logs-small" if small else "chart-logs",
        "Log records per " + window.bucket + " and level",
        described.buckets,
        window.bucket,
        [
            Series(name, LEVEL_CSS[name], values, logs(name))
            for name, values in result.levels.items()
        ],
        stacked=True,
        small=small,
    )


def _rate(value: float | None) -> float:
    return round(100 * (value or 0), 1)


def _failure_chart(
    chart_id: str, title: str, rows: Sequence[FailureRow], link: Callable[[str], str]
) -> Chart:
    """A bar a group (agent or task type): its failure rate, linked to ``link(key)`` when
    the group has a key."""
    return bar_list(
        chart_id,
        title,
        [r.label for r in rows],
        [
            Series(
                "failure rate",
                "c-failed",
                [_rate(r.failure_rate) for r in rows],
                lambda i: link(key) if (key := rows[i].key) else None,
            )
        ],
        unit=" %",
        extra=[
            ("failed", [str(r.failed) for r in rows]),
            ("attempts", [str(r.attempts) for r in rows]),
        ],
    )


@bp.get("/reports")
def reports_page() -> str:
    """Charts of the chosen range: tasks, durations, failure rates, errors, logs, emails and
    drafts."""
    choice, query = _picked()
    window = reports.resolve(query)
    conn = connection()
    durations = reports.durations(conn, window=window)
    failures = reports.failures(conn, window=window)
    emails = reports.email_outcomes(conn, window=window)
    drafts = reports.draft_approvals(conn, window=window)
    types = [row.type for row in durations.types]
    charts = [
        task_chart(window),
        bar_list(
            "chart-durations",
            "Waiting and running time by task type (seconds, p50 and p95)",
            types,
            [
                Series("wait p50", "c-wait", [r.wait_p50_s or 0 for r in durations.types]),
                Series("wait p95", "c-wait95", [r.wait_p95_s or 0 for r in durations.types]),
                Series("run p50", "c-run", [r.run_p50_s or 0 for r in durations.types]),
                Series("run p95", "c-run95", [r.run_p95_s or 0 for r in durations.types]),
            ],
            unit=" s",
            extra=[
                ("attempts", [str(r.attempts) for r in durations.types]),
                ("retries per task", [f"{r.retries_per_task:g}" for r in durations.types]),
            ],
        ),
        _failure_chart(
            "chart-agent-failures",
            "Failed attempts by agent (% of finished attempts)",
            failures.by_agent,
            lambda key: url_for("console.agent_page", agent_id=int(key)),
        ),
        _failure_chart(
            "chart-type-failures",
            "Failed attempts by task type (% of finished attempts)",
            failures.by_type,
            lambda key: url_for("console.task_list", type=key, status="failed"),
        ),
        log_chart(window),
        column_chart(
            "chart-emails",
            "Emails sent and failed per " + window.bucket,
            emails.range.buckets,
            window.bucket,
            [
                Series(
                    "sent",
                    "c-completed",
                    emails.sent,
                    lambda i: url_for("console.activity", entity="email", **_span(emails.range, i)),
                ),
                Series(
                    "failed",
                    "c-failed",
                    emails.failed,
                    lambda i: url_for("console.activity", entity="email", **_span(emails.range, i)),
                ),
            ],
        ),
        bar_list(
            "chart-drafts",
            "Drafts approved, by the version that was approved",
            [f"version {v}" for v in drafts.versions],
            [Series("approvals", "c-created", list(drafts.versions.values()))],
        ),
    ]
    params = {"since": _iso(window.since), "until": _iso(window.until), "bucket": window.bucket}
    if window.tz != "UTC":
        params["tz"] = window.tz
    return render(
        "reports.html",
        title="Reports",
        api=[
            api_url(f"/api/reports/{name}", **params)
            for name in ("tasks", "durations", "failures", "logs", "emails", "drafts")
        ],
        charts=charts,
        errors=failures.errors,
        drafts=drafts,
        choice=choice,
        ranges=list(RANGES),
        tz=request.args.get("tz", "").strip() or "UTC",
        window=window,
    )


def overview_charts() -> list[Chart]:
    """The overview's small charts: tasks and logs per hour of the last 24 hours."""
    now = utcnow()
    window = reports.resolve(ReportQuery(since=now - timedelta(hours=24), until=now))
    return [task_chart(window, small=True), log_chart(window, small=True)]
