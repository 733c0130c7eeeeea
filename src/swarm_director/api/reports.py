"""``GET /api/reports/...``: the swarm's trends over a time range (see
:mod:`swarm_director.store.reports`)."""

from __future__ import annotations

from flask import Response

from swarm_director.api.common import QueryModel, blueprint, json_response
from swarm_director.schemas.reports import (
    DraftReport,
    DurationReport,
    EmailReport,
    FailureReport,
    LogVolumeReport,
    ReportQuery,
    TaskCountsReport,
)
from swarm_director.store import reports
from swarm_director.web.context import connection

bp = blueprint("reports", "Counts, durations and failure rates of the swarm over a time range.")


class ReportParams(QueryModel, ReportQuery):
    """The range of a report: `since` (inclusive) to `until` (exclusive), the bucket width
    and, for day buckets, an IANA time zone."""


def _query(params: ReportParams) -> ReportQuery:
    return ReportQuery.model_validate(params.model_dump())


@bp.get("/reports/tasks", responses={200: TaskCountsReport})
def report_tasks(query: ReportParams) -> Response:
    """Tasks created, completed and failed per bucket; `by` gives one series per type,
    priority or assigned agent. Completed and failed are the work queue's steps."""
    return json_response(reports.task_counts(connection(), _query(query)))


@bp.get("/reports/durations", responses={200: DurationReport})
def report_durations(query: ReportParams) -> Response:
    """Per task type, over the attempts claimed in the range: time waiting (ready → claimed)
    and running (claimed → completed), p50 and p95, and retries per task."""
    return json_response(reports.durations(connection(), _query(query)))


@bp.get("/reports/failures", responses={200: FailureReport})
def report_failures(query: ReportParams) -> Response:
    """Failure rates of attempts by task type and by agent (worst first), and the most
    frequent errors grouped with numbers and ids masked."""
    return json_response(reports.failures(connection(), _query(query)))


@bp.get("/reports/logs", responses={200: LogVolumeReport})
def report_logs(query: ReportParams) -> Response:
    """Log records per level per bucket."""
    return json_response(reports.log_volume(connection(), _query(query)))


@bp.get("/reports/emails", responses={200: EmailReport})
def report_emails(query: ReportParams) -> Response:
    """Emails sent and failed per bucket."""
    return json_response(reports.email_outcomes(connection(), _query(query)))


@bp.get("/reports/drafts", responses={200: DraftReport})
def report_drafts(query: ReportParams) -> Response:
    """Drafts approved in the range and how many versions each took."""
    return json_response(reports.draft_approvals(connection(), _query(query)))
