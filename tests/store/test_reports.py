"""Reports are exact: every figure of every report equals a count made here, in Python, from
what the known swarm (tests/store/reports_swarm.py) did, on both dialects; with retries,
lease expiries, a deleted task, empty buckets and a day bucket 25 hours long (Berlin, the
night daylight saving time ends)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest

from swarm_director.db import Database
from swarm_director.errors import ValidationError
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import logs, reports
from swarm_director.store.reports import resolve
from swarm_director.store.reports import window as window_module
from tests.store.conftest import new_task
from tests.store.reports_swarm import START, Swarm, build

SINCE = START
UNTIL = START + timedelta(hours=48)


@pytest.fixture
def swarm(db: Database) -> Swarm:
    return build(db)


def _hour(t: datetime) -> int:
    return int((t - SINCE) // timedelta(hours=1))


def _berlin_day(t: datetime) -> int:
    first = SINCE.astimezone(ZoneInfo("Europe/Berlin")).date()
    return (t.astimezone(ZoneInfo("Europe/Berlin")).date() - first).days


def _nearest_rank(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[-(-p * len(ordered) // 100) - 1]


def _secs(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)


def test_tasks_per_hour_are_counted_exactly(db: Database, swarm: Swarm) -> None:
    query = ReportQuery(since=SINCE, until=UNTIL, bucket="hour")
    with db.statement_reads() as conn:
        report = reports.task_counts(conn, query)
    assert len(report.range.buckets) == 48
    assert report.range.buckets[0] == SINCE
    (series,) = report.series
    live = {k: v for k, v in swarm.tasks.items() if k not in swarm.deleted}
    created, completed, failed = [0] * 48, [0] * 48, [0] * 48
    for _kind, _priority, _agent, at in live.values():
        created[_hour(at)] += 1
    for task_id, at in swarm.completed:
        if task_id not in swarm.deleted:
            completed[_hour(at)] += 1
    for task_id, at in swarm.failed:
        if task_id not in swarm.deleted:
            failed[_hour(at)] += 1
    assert series.created == created
    assert series.completed == completed
    assert series.failed == failed
    assert 0 in created[:30]  # the quiet stretch left empty buckets
    assert report.totals == {
        "created": sum(created),
        "completed": sum(completed),
        "failed": sum(failed),
    }


@pytest.mark.parametrize("by", ["type", "priority", "agent"])
def test_tasks_grouped_by_type_priority_and_agent(db: Database, swarm: Swarm, by: str) -> None:
    query = ReportQuery(since=SINCE, until=UNTIL, bucket="hour", by=by)
    with db.statement_reads() as conn:
        report = reports.task_counts(conn, query)
    position = {"type": 0, "priority": 1, "agent": 2}[by]

    def key(task_id: int) -> str | None:
        value = swarm.tasks[task_id][position]
        return None if value is None else str(value)

    expected: dict[str | None, dict[str, list[int]]] = defaultdict(
        lambda: {"created": [0] * 48, "completed": [0] * 48, "failed": [0] * 48}
    )
    for task_id, (_k, _p, _a, at) in swarm.tasks.items():
        if task_id not in swarm.deleted:
            expected[key(task_id)]["created"][_hour(at)] += 1
    for name, steps in (("completed", swarm.completed), ("failed", swarm.failed)):
        for task_id, at in steps:
            if task_id not in swarm.deleted:
                expected[key(task_id)][name][_hour(at)] += 1
    got = {
        s.key: {"created": s.created, "completed": s.completed, "failed": s.failed}
        for s in report.series
    }
    assert got == dict(expected)
    if by == "agent":
        labels = {s.key: s.label for s in report.series}
        assert {labels[str(i)] for i in swarm.agents if str(i) in labels} <= set(
            swarm.agents.values()
        )


def test_day_buckets_follow_the_time_zone_across_daylight_saving(
    db: Database, swarm: Swarm
) -> None:
    query = ReportQuery(since=SINCE, until=UNTIL, bucket="day", tz="Europe/Berlin")
    with db.statement_reads() as conn:
        report = reports.task_counts(conn, query)
        logs = reports.log_volume(conn, query)
    berlin = ZoneInfo("Europe/Berlin")
    starts = report.range.buckets
    assert [s.astimezone(berlin).isoformat() for s in starts] == [
        "2026-10-24T00:00:00+02:00",
        "2026-10-25T00:00:00+02:00",  # this day has 25 hours
        "2026-10-26T00:00:00+01:00",
    ]
    created = [0] * 3
    for task_id, (_k, _p, _a, at) in swarm.tasks.items():
        if task_id not in swarm.deleted:
            created[_berlin_day(at)] += 1
    assert report.series[0].created == created
    per_level: dict[str, list[int]] = {lv: [0] * 3 for lv in ("debug", "info", "warning", "error")}
    for level, at, _message in swarm.logs:
        if SINCE <= at < UNTIL:
            per_level[level][_berlin_day(at)] += 1
    assert logs.levels == per_level
    # UTC days cut the same data elsewhere.
    with db.statement_reads() as conn:
        utc = reports.task_counts(conn, ReportQuery(since=SINCE, until=UNTIL, bucket="day"))
    utc_created = [0] * 3
    for task_id, (_k, _p, _a, at) in swarm.tasks.items():
        if task_id not in swarm.deleted:
            utc_created[(at.date() - SINCE.date()).days] += 1
    assert utc.series[0].created == utc_created


def test_minute_buckets_and_range_edges(db: Database, swarm: Swarm) -> None:
    # since inclusive, until exclusive, to the microsecond: the first claim's second.
    first = min(a.claimed for a in swarm.attempts if a.task_id not in swarm.deleted)
    query = ReportQuery(since=first, until=first + timedelta(minutes=3), bucket="minute")
    with db.statement_reads() as conn:
        report = reports.task_counts(conn, query)
        after = reports.durations(
            conn, ReportQuery(since=first + timedelta(microseconds=1), until=UNTIL)
        )
        before = reports.durations(conn, ReportQuery(since=SINCE, until=first))
    assert report.range.buckets[0] == first.replace(second=0, microsecond=0)
    assert len(report.range.buckets) in (3, 4)
    counted = sum(r.attempts for r in before.types) + sum(r.attempts for r in after.types)
    live = [a for a in swarm.attempts if a.task_id not in swarm.deleted]
    assert counted == len(live) - 1  # only the attempt claimed at `first` fell between


def test_durations_retries_and_percentiles(db: Database, swarm: Swarm) -> None:
    with db.statement_reads() as conn:
        report = reports.durations(conn, ReportQuery(since=SINCE, until=UNTIL))
    live = [a for a in swarm.attempts if a.task_id not in swarm.deleted]
    by_type: dict[str, list] = defaultdict(list)
    for attempt in live:
        by_type[attempt.type].append(attempt)
    assert [row.type for row in report.types] == sorted(by_type)
    for row in report.types:
        attempts = by_type[row.type]
        waits = [_secs(a.claimed - a.ready) for a in attempts]
        runs = [_secs(a.ended - a.claimed) for a in attempts if a.outcome == "complete"]
        retries = sum(1 for a in attempts if a.number > 1)
        tasks = len({a.task_id for a in attempts})
        assert row.attempts == len(attempts)
        assert row.tasks == tasks
        assert row.retries == retries
        assert row.retries_per_task == round(retries / tasks, 3)
        assert row.wait_p50_s == _nearest_rank(waits, 50)
        assert row.wait_p95_s == _nearest_rank(waits, 95)
        assert row.run_p50_s == _nearest_rank(runs, 50)
        assert row.run_p95_s == _nearest_rank(runs, 95)
    assert sum(row.retries for row in report.types) > 0


def test_failure_rates_by_type_and_agent(db: Database, swarm: Swarm) -> None:
    with db.statement_reads() as conn:
        report = reports.failures(conn, ReportQuery(since=SINCE, until=UNTIL))
    live = [a for a in swarm.attempts if a.task_id not in swarm.deleted]
    for rows, key in (
        (report.by_type, lambda a: a.type),
        (report.by_agent, lambda a: str(a.agent_id)),
    ):
        expected = {}
        for group in {key(a) for a in live}:
            mine = [a for a in live if key(a) == group]
            done = sum(1 for a in mine if a.outcome == "complete")
            bad = sum(1 for a in mine if a.outcome in ("fail", "retry", "expire"))
            rate = round(bad / (done + bad), 4) if done + bad else None
            expected[group] = (len(mine), done, bad, len(mine) - done - bad, rate)
        got = {r.key: (r.attempts, r.completed, r.failed, r.running, r.failure_rate) for r in rows}
        assert got == expected
    rates = [r.failure_rate or 0 for r in report.by_agent]
    assert rates == sorted(rates, reverse=True)
    assert {r.label for r in report.by_agent} <= set(swarm.agents.values())


def test_the_most_frequent_errors_are_grouped_with_numbers_and_ids_masked(
    db: Database, swarm: Swarm
) -> None:
    with db.statement_reads() as conn:
        report = reports.failures(conn, ReportQuery(since=SINCE, until=UNTIL))
    # The builder's attempt errors and error logs, masked by hand.
    timeout = "timeout after <n> s calling model gpt-<n> for job <n>"
    masked = {
        "timeout after 30 s calling model gpt-4 for job 1234": timeout,
        "timeout after 45 s calling model gpt-4 for job 99": timeout,
        "rate limited by upstream 4f3a9c2e1b7d (retry in 12.5 s)": (
            "rate limited by upstream <hex> (retry in <n> s)"
        ),
        "quota exceeded": "quota exceeded",
    }
    expected: Counter[tuple[str, str]] = Counter()
    for message, _at, _task in swarm.errors:
        pattern = masked.get(message) or reports.mask(message)
        expected[("task", pattern)] += 1
    for level, at, message in swarm.logs:
        if level == "error" and SINCE <= at < UNTIL:
            expected[("log", masked[message])] += 1
    assert reports.mask("lease expired (attempt 2 of 3)") == "lease expired (attempt <n> of <n>)"
    got = Counter({(e.source, e.pattern): e.count for e in report.errors})
    # The deleted task's errors count: the report counts recorded failures, and deleting a
    # task does not unmake them (its history stays).
    top = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert sorted(got.items(), key=lambda item: (-item[1], item[0])) == top
    assert [e.count for e in report.errors] == sorted(
        (e.count for e in report.errors), reverse=True
    )
    # Each attempts' group names the tasks of its five newest failed steps, and its newest.
    for group in report.errors:
        if group.source == "task":
            mine = sorted(
                ((at, task, m) for m, at, task in swarm.errors if reports.mask(m) == group.pattern),
                reverse=True,
            )[:5]
            assert group.ids == sorted({task for _at, task, _m in mine})
            assert (group.last_at, group.example) == (mine[0][0], mine[0][2])


def test_emails_and_drafts(db: Database, swarm: Swarm) -> None:
    query = ReportQuery(since=SINCE, until=UNTIL, bucket="hour")
    with db.statement_reads() as conn:
        mails = reports.email_outcomes(conn, query)
        approvals = reports.draft_approvals(conn, query)
    sent, failed = [0] * 48, [0] * 48
    for at in swarm.sent:
        sent[_hour(at)] += 1
    for at in swarm.email_failures:
        failed[_hour(at)] += 1
    assert (mails.sent, mails.failed) == (sent, failed)
    versions = sorted(v for v, _at in swarm.approvals)
    assert approvals.approved == len(versions)
    assert approvals.versions == dict(sorted(Counter(versions).items()))
    assert approvals.p50_versions == _nearest_rank(versions, 50)
    assert approvals.p95_versions == _nearest_rank(versions, 95)
    assert approvals.max_versions == max(versions)
    assert approvals.mean_versions == round(sum(versions) / len(versions), 3)


@pytest.mark.parametrize(
    ("bucket", "tz", "hours", "ranged"),
    [("hour", "UTC", 48, True), ("day", "Europe/Berlin", 48, True), ("minute", "UTC", 24, False)],
)
def test_emails_per_bucket_are_the_same_counted_by_range_or_by_bucket(
    db: Database, swarm: Swarm, bucket: str, tz: str, hours: int, ranged: bool
) -> None:
    """Up to 100 buckets are each counted over their own range of the timestamp (on
    PostgreSQL only without other conditions: the sent emails, not the failed), more by a
    bucket computed a row (window.counts): both give a count made in Python, the 25-hour
    Berlin day included."""
    until = SINCE + timedelta(hours=hours)
    window = resolve(ReportQuery(since=SINCE, until=until, bucket=bucket, tz=tz))
    assert (window.bucket_ranges() is not None) is ranged
    of = {
        "hour": _hour,
        "day": _berlin_day,
        "minute": lambda t: int((t - SINCE) // timedelta(minutes=1)),
    }[bucket]
    sent, failed = [0] * len(window.starts), [0] * len(window.starts)
    for at in swarm.sent:
        if at < until:
            sent[of(at)] += 1
    for at in swarm.email_failures:
        if at < until:
            failed[of(at)] += 1
    with db.statement_reads() as conn:
        mails = reports.email_outcomes(conn, window=window)
        with mock.patch.object(window_module, "RANGED_BUCKETS", 0):  # a bucket a row
            other = reports.email_outcomes(conn, window=window)
    assert (mails.sent, mails.failed) == (sent, failed) == (other.sent, other.failed)
    assert sum(sent) > 5 and sum(failed) > 0


def test_an_empty_range_has_zero_buckets_not_missing_ones(db: Database, swarm: Swarm) -> None:
    later = UNTIL + timedelta(days=30)
    query = ReportQuery(since=later, until=later + timedelta(hours=6), bucket="hour")
    with db.statement_reads() as conn:
        counts = reports.task_counts(conn, query)
        logs = reports.log_volume(conn, query)
        durations = reports.durations(conn, query)
        failures = reports.failures(conn, query)
    assert counts.series[0].created == [0] * 6
    assert logs.levels["error"] == [0] * 6
    assert durations.types == [] and failures.by_agent == [] and failures.errors == []


@pytest.mark.parametrize(
    ("fields", "problem_field"),
    [
        ({"since": UNTIL, "until": SINCE}, "since"),
        ({"since": SINCE, "until": SINCE}, "since"),
        ({"since": SINCE, "until": SINCE + timedelta(days=401), "bucket": "day"}, "since"),
        ({"since": SINCE, "until": SINCE + timedelta(days=3), "bucket": "minute"}, "bucket"),
        ({"since": SINCE, "until": UNTIL, "tz": "Europe/Berlin"}, "tz"),
    ],
)
def test_a_bad_range_is_refused_with_the_field_named(
    db: Database, fields: dict, problem_field: str
) -> None:
    with db.statement_reads() as conn, pytest.raises(ValidationError) as caught:
        reports.task_counts(conn, ReportQuery(**fields))
    assert problem_field in caught.value.details["fields"]


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="IANA"):
        ReportQuery(tz="Mars/Olympus_Mons")


def test_window_buckets_agree_with_python() -> None:
    window = reports.resolve(
        ReportQuery(since=SINCE, until=UNTIL, bucket="day", tz="Europe/Berlin")
    )
    # 01:00 UTC on the 25th is when Berlin's clocks go back: the same local day either side.
    edge = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert window.index_of(edge - timedelta(seconds=1)) == window.index_of(edge) == 1
    assert window.index_of(datetime(2026, 10, 25, 22, 59, 59, tzinfo=UTC)) == 1
    assert window.index_of(datetime(2026, 10, 25, 23, 0, tzinfo=UTC)) == 2


def test_a_log_in_the_last_half_millisecond_of_an_hour_counts_in_that_hour(db: Database) -> None:
    # SQLite's strftime('%s') rounds a time to milliseconds before it reads it: a log at
    # 09:59:59.9996 was counted in the 10:00 bucket.
    edge = datetime(2026, 10, 20, 9, 59, 59, 999600, tzinfo=UTC)
    with db.transaction() as session:
        task_id = new_task(session).id
        logs.add_logs(
            session,
            task_id,
            [{"agent_type": "a", "message": "edge", "timestamp": edge, "log_level": "info"}],
        )
    query = ReportQuery(
        since=edge.replace(minute=0, second=0, microsecond=0),
        until=edge + timedelta(hours=1),
        bucket="hour",
    )
    with db.statement_reads() as conn:
        report = reports.log_volume(conn, query)
    assert report.levels["info"] == [1, 0]
