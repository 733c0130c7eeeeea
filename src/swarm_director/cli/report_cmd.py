"""``swarm-director report tasks|durations|agents|errors|logs|emails|drafts``: the reports of
:mod:`swarm_director.store.reports` as a table, CSV or JSON."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from swarm_director.cli.common import SwarmGroup, database_option, emit_json, opened
from swarm_director.cli.main import cli
from swarm_director.db import utcnow
from swarm_director.durations import DurationError, parse_duration
from swarm_director.schemas.reports import (
    DraftReport,
    DurationReport,
    EmailReport,
    FailureReport,
    FailureRow,
    LogVolumeReport,
    ReportQuery,
    ReportRange,
    TaskCountsReport,
)
from swarm_director.store import reports

Table = tuple[list[str], list[list[Any]]]


@cli.group(cls=SwarmGroup)
def report() -> None:
    """The swarm's trends over a time range: counts per bucket, durations, failure rates.

    \b
    Examples:
      swarm-director report tasks --since 7d --by type
      swarm-director report logs --since 24h --bucket hour --csv
      swarm-director report tasks --since 30d --bucket day --tz Europe/Berlin --json
    """


def _when(text: str | None, now: datetime, name: str) -> datetime | None:
    """``7d`` (that long before now) or an ISO 8601 time (UTC when it has no zone)."""
    if text is None:
        return None
    try:
        return now - parse_duration(text)
    except DurationError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (7d, 12h) nor an ISO 8601 time", param_hint=name
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.now().astimezone().tzinfo)


def _auto_bucket(span: timedelta) -> str:
    if span <= timedelta(hours=3):
        return "minute"
    if span <= timedelta(days=3):
        return "hour"
    return "day"


def _query(
    since: str | None, until: str | None, bucket: str | None, tz: str, by: str | None = None
) -> ReportQuery:
    now = utcnow()
    end = _when(until, now, "--until") or now
    start = _when(since, now, "--since") or end - timedelta(hours=24)
    try:
        return ReportQuery(
            since=start,
            until=end,
            bucket=bucket or _auto_bucket(end - start),
            tz=tz,
            by=by,
        )
    except PydanticValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else "range"
        message = str(problem["msg"]).removeprefix("Value error, ")
        raise click.BadParameter(message, param_hint=f"--{field}") from None


def _options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option(
                "--since",
                help="Start: a duration before now (7d, 12h) or an ISO 8601 time.",
                default="24h",
                show_default=True,
            ),
            click.option("--until", help="End (exclusive): a duration before now or a time."),
            click.option(
                "--bucket",
                type=click.Choice(["minute", "hour", "day"]),
                help="Bucket width [default: minute up to 3 h, hour up to 3 days, else day].",
            ),
            click.option(
                "--tz", default="UTC", show_default=True, help="IANA zone of day buckets."
            ),
            click.option("--json", "fmt", flag_value="json", help="Print the report as JSON."),
            click.option("--csv", "fmt", flag_value="csv", help="Print the table as CSV."),
            database_option,
        )
    ):
        f = option(f)
    return f


def _stamp(value: datetime) -> str:
    return value.isoformat(timespec="minutes").replace("+00:00", "Z")


def _emit(result: BaseModel, table: Table, fmt: str | None, caption: str) -> None:
    if fmt == "json":
        emit_json(result.model_dump(mode="json"))
        return
    header, rows = table
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        return
    click.echo(caption)
    if not rows:
        click.echo("nothing in this range")
        return
    text = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    numeric = [all(_numeric(row[i]) for row in text) for i in range(len(header))]
    for row in text:
        cells = (
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(row, widths, numeric, strict=True)
        )
        click.echo("  ".join(cells).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("%", "").replace("—", "").isdigit() or text == "—"


def _range_line(described: ReportRange) -> str:
    zone = f" ({described.tz})" if described.tz != "UTC" else ""
    return (
        f"{_stamp(described.since)} → {_stamp(described.until)}, "
        f"{len(described.buckets)} {described.bucket} bucket(s){zone}"
    )


Rendered = tuple[list[str], list[list[Any]], str]
R = TypeVar("R", bound=BaseModel)


def _report_command(
    name: str, compute: Callable[[Any, ReportQuery], R], *extra: Callable[..., Any]
) -> Callable[[Callable[[R, str | None], Rendered]], click.Command]:
    """Register ``report NAME``: the shared options (and ``extra`` ones after them), the
    report computed on a read connection, shown as ``render`` (header, rows, caption) puts
    it; the help is ``render``'s docstring."""

    def register(render: Callable[[R, str | None], Rendered]) -> click.Command:
        def command(
            since: str,
            until: str | None,
            bucket: str | None,
            tz: str,
            fmt: str | None,
            database_url: str | None,
            by: str | None = None,
        ) -> None:
            query = _query(since, until, bucket, tz, by)
            with opened(database_url) as (db, _settings), db.statement_reads() as conn:
                result = compute(conn, query)
            header, rows, caption = render(result, by)
            _emit(result, (header, rows), fmt, caption)

        for option in reversed(extra):
            command = option(command)
        return report.command(name, help=render.__doc__)(_options(command))

    return register


@_report_command(
    "tasks",
    reports.task_counts,
    click.option("--by", type=click.Choice(["type", "agent", "priority"]), help="One series each."),
)
def _tasks(result: TaskCountsReport, by: str | None) -> Rendered:
    """Tasks created, completed and failed per bucket.

    \b
    Examples:
      swarm-director report tasks --since 7d --by type
      swarm-director report tasks --since 2026-12-01 --until 2026-12-06 --bucket day --csv
    """
    rows = []
    for index, start in enumerate(result.range.buckets):
        for series in result.series:
            counts = [series.created[index], series.completed[index], series.failed[index]]
            if by is not None and not any(counts):
                continue  # grouped: only the groups that had something in the bucket
            rows.append([_stamp(start), *([series.label] if by else []), *counts])
    header = ["bucket", *([by] if by else []), "created", "completed", "failed"]
    totals = result.totals
    caption = (
        f"{_range_line(result.range)}: {totals['created']} created, "
        f"{totals['completed']} completed, {totals['failed']} failed"
    )
    return header, rows, caption


@_report_command("durations", reports.durations)
def _durations(result: DurationReport, by: str | None) -> Rendered:
    """Time waiting (ready → claimed) and running (claimed → completed), p50 and p95 in
    seconds, and retries per task, by task type.

    \b
    Example:
      swarm-director report durations --since 7d
    """
    header = [
        "type",
        "attempts",
        "tasks",
        "retries",
        "retries/task",
        "wait p50 s",
        "wait p95 s",
        "run p50 s",
        "run p95 s",
    ]
    rows: list[list[Any]] = [
        [
            r.type,
            r.attempts,
            r.tasks,
            r.retries,
            r.retries_per_task,
            r.wait_p50_s,
            r.wait_p95_s,
            r.run_p50_s,
            r.run_p95_s,
        ]
        for r in result.types
    ]
    return header, rows, _range_line(result.range)


def _failure_table(rows: Sequence[FailureRow], key: str) -> list[list[Any]]:
    return [
        [
            key,
            r.label,
            r.attempts,
            r.completed,
            r.failed,
            r.running,
            None if r.failure_rate is None else f"{r.failure_rate:.1%}",
        ]
        for r in rows
    ]


@_report_command("agents", reports.failures)
def _agents(result: FailureReport, by: str | None) -> Rendered:
    """Failure rates of attempts by agent and by task type, worst first (an attempt failed
    when it ended by fail, retry or lease expiry).

    \b
    Example:
      swarm-director report agents --since 7d --csv
    """
    header = ["by", "name", "attempts", "completed", "failed", "running", "failure rate"]
    rows = _failure_table(result.by_agent, "agent") + _failure_table(result.by_type, "type")
    return header, rows, _range_line(result.range)


@_report_command("errors", reports.failures)
def _errors(result: FailureReport, by: str | None) -> Rendered:
    """The most frequent errors of failed attempts and error logs, grouped by their message
    with numbers and ids masked.

    \b
    Example:
      swarm-director report errors --since 24h
    """
    header = ["count", "source", "pattern", "ids", "last"]
    rows: list[list[Any]] = [
        [e.count, e.source, e.pattern, " ".join(map(str, e.ids)), _stamp(e.last_at)]
        for e in result.errors
    ]
    return header, rows, _range_line(result.range)


@_report_command("logs", reports.log_volume)
def _logs(result: LogVolumeReport, by: str | None) -> Rendered:
    """Log records per level per bucket.

    \b
    Example:
      swarm-director report logs --since 24h --bucket hour
    """
    levels = list(result.levels)
    rows: list[list[Any]] = [
        [_stamp(start), *(result.levels[level][i] for level in levels)]
        for i, start in enumerate(result.range.buckets)
    ]
    counts = ", ".join(f"{result.totals[level]} {level}" for level in levels)
    return ["bucket", *levels], rows, f"{_range_line(result.range)}: {counts}"


@_report_command("emails", reports.email_outcomes)
def _emails(result: EmailReport, by: str | None) -> Rendered:
    """Emails sent and failed per bucket.

    \b
    Example:
      swarm-director report emails --since 7d --bucket day
    """
    rows: list[list[Any]] = [
        [_stamp(start), result.sent[i], result.failed[i]]
        for i, start in enumerate(result.range.buckets)
    ]
    return ["bucket", "sent", "failed"], rows, _range_line(result.range)


@_report_command("drafts", reports.draft_approvals)
def _drafts(result: DraftReport, by: str | None) -> Rendered:
    """Drafts approved in the range: how many versions each document took.

    \b
    Example:
      swarm-director report drafts --since 30d
    """
    rows: list[list[Any]] = [[version, count] for version, count in result.versions.items()]
    caption = (
        f"{_range_line(result.range)}: {result.approved} approved; versions mean "
        f"{_cell(result.mean_versions)}, p50 {_cell(result.p50_versions)}, "
        f"p95 {_cell(result.p95_versions)}, max {_cell(result.max_versions)}"
    )
    return ["version", "approvals"], rows, caption
