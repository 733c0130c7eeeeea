"""The failures report's most frequent errors, read through ``error_group_hours``: the same
groups, counts, examples and ids as a count of the error logs in Python, for ranges that
start and end mid-hour, with error logs written by hand (no pattern) among them; and the
rollup repaired by ``db rebuild-rollups``, which gives hand-written logs their pattern."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.models.error_group import error_groups_drift
from swarm_director.models.log_pattern import error_pattern
from swarm_director.models.rollup import compact
from swarm_director.schemas.reports import ErrorGroup, ReportQuery
from swarm_director.store import logs, queue, reports
from tests.store.conftest import new_agent, new_task

FIRST = datetime(2026, 11, 2, 6, 40, 11, tzinfo=UTC)
FAMILIES = (
    "model timeout after {n} s on job {n}",
    "upstream 4f3a9c2e{n:04d}7d refused",
    "quota exceeded",
    "table t_{n} missing",
)


def _new_task(db: Database) -> int:
    with db.transaction() as session:
        return new_task(session).id


def _fill(db: Database) -> None:
    """Error logs of four families over 40 hours through the store (bulk and one by one), with
    other levels between them, and twelve written by hand without a pattern."""
    task = _new_task(db)
    rows: list[dict[str, Any]] = []
    for i in range(400):
        family = FAMILIES[i % len(FAMILIES)] if i % 3 else "all is well {n}"
        rows.append(
            {
                "agent_type": "worker",
                "message": family.format(n=i),
                "log_level": "error" if i % 3 else "info",
                "timestamp": FIRST + timedelta(minutes=6 * i, seconds=i % 7),
            }
        )
    with db.transaction() as session:
        logs.add_logs(session, task, rows[:300])
        for row in rows[300:]:
            logs.add_log(session, task, row)
    stamp = (
        "2026-11-03 03:{:02d}:00"
        if db.engine.dialect.name == "sqlite"
        else ("2026-11-03 03:{:02d}:00+00")
    )
    # SQL by hand: no pattern; each message once. Written as info, then made errors by an
    # UPDATE, which the rollup's triggers count on both dialects (SQLite counts no INSERT by
    # hand: its store counts its own inserts).
    with db.engine.begin() as conn:
        for i in range(12):
            message = "quota exceeded" + " x" * i if i < 4 else f"table t_{900 + i} missing"
            conn.execute(
                sa.text(
                    'INSERT INTO agent_logs (task_id, agent_type, message, "timestamp", '
                    "log_level, created_at) VALUES (:t, 'w', :m, :at, 'info', :at)"
                ),
                {"t": task, "m": message, "at": stamp.format(i * 4)},
            )
        conn.exec_driver_sql("UPDATE agent_logs SET log_level = 'error' WHERE agent_type = 'w'")


def _expected(db: Database, since: datetime, until: datetime) -> list[tuple[Any, ...]]:
    """``(pattern, count, example, ids, last_at)`` of the log groups, most frequent first,
    counted in Python from every error log in the range."""
    with db.engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT id, message, \"timestamp\" FROM agent_logs WHERE log_level = 'error'")
        ).all()
    groups: dict[str, list[tuple[datetime, int, str]]] = defaultdict(list)
    for log_id, message, at in found:
        when = at if isinstance(at, datetime) else datetime.fromisoformat(at)
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if since <= when < until:
            groups[reports.mask(message)].append((when, log_id, message))
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    out = []
    for pattern, members in ranked:
        newest = sorted(members, reverse=True)[:5]
        out.append(
            (pattern, len(members), newest[0][2], sorted(i for _a, i, _m in newest), newest[0][0])
        )
    return out


def _got(db: Database, since: datetime, until: datetime) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        report = reports.failures(conn, ReportQuery(since=since, until=until))
    return [_row(e) for e in report.errors if e.source == "log"]


def _row(group: ErrorGroup) -> tuple[Any, ...]:
    return (group.pattern, group.count, group.example, group.ids, group.last_at)


def test_the_most_frequent_errors_equal_a_count_of_the_error_logs(db: Database) -> None:
    _fill(db)
    ranges = [
        (FIRST, FIRST + timedelta(hours=41)),  # everything
        (FIRST + timedelta(minutes=77, microseconds=3), FIRST + timedelta(hours=29, minutes=5)),
        (FIRST + timedelta(minutes=5), FIRST + timedelta(minutes=50)),  # within one hour
    ]
    for since, until in ranges:
        expected = _expected(db, since, until)
        assert expected, (since, until)
        assert _got(db, since, until) == expected
    # The hand-written logs are grouped with the store's, under the same pattern.
    assert any(row[0] == "table t_<n> missing" and row[1] > 8 for row in _expected(db, *ranges[0]))
    with db.engine.begin() as conn:
        compact(conn)  # PostgreSQL: from the deltas to the hour rows, the same figures
    for since, until in ranges:
        assert _got(db, since, until) == _expected(db, since, until)
    with db.engine.connect() as conn:
        assert error_groups_drift(conn) == []


def test_rebuild_gives_hand_written_error_logs_their_pattern(db: Database, db_url: URL) -> None:
    _fill(db)
    whole = (FIRST, FIRST + timedelta(hours=41))
    before = _got(db, *whole)
    with db.engine.connect() as conn:
        bare = conn.exec_driver_sql(
            "SELECT count(*) FROM agent_logs WHERE log_level = 'error' AND error_pattern IS NULL"
        ).scalar_one()
    assert bare == 12
    url = db_url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["db", "rebuild-rollups", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "error_group_hours" in result.output
    with db.engine.connect() as conn:
        patterns = dict(
            conn.exec_driver_sql(
                "SELECT message, error_pattern FROM agent_logs WHERE agent_type = 'w'"
            ).all()
        )
        assert error_groups_drift(conn) == []
    assert patterns["table t_911 missing"] == "table t_<n> missing"
    assert patterns["quota exceeded x x"] == "quota exceeded x x"
    assert _got(db, *whole) == before


def test_db_check_names_a_drifted_error_group(db: Database, db_url: URL) -> None:
    task = _new_task(db)
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    with db.transaction() as session:
        logs.add_logs(
            session,
            task,
            [
                {
                    "agent_type": "w",
                    "message": f"disk {i} full",
                    "log_level": "error",
                    "timestamp": at,
                }
                for i in range(3)
            ],
        )
    with db.engine.begin() as conn:
        compact(conn)
        conn.exec_driver_sql("UPDATE error_group_hours SET logs = logs + 4")
    url = db_url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["db", "check", "--database-url", url])
    assert result.exit_code == 1
    assert "2026-12-01T09:00Z disk <n> full: the rollup says 7, the error logs are 3" in (
        result.output
    )
    assert CliRunner().invoke(cli, ["db", "rebuild-rollups", "--database-url", url]).exit_code == 0
    assert CliRunner().invoke(cli, ["db", "check", "--database-url", url]).exit_code == 0


def test_a_group_counted_without_logs_left_is_not_reported(db: Database) -> None:
    """Counts whose logs are gone (deleted between the report's statements, or a rollup
    changed by hand) leave no example: the report leaves the group out instead of failing."""
    _fill(db)
    whole = (FIRST, FIRST + timedelta(hours=41))
    hour = int((FIRST + timedelta(hours=3) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO error_group_hours (epoch_hour, pattern, logs) VALUES (:h, :p, 999)"
            ),
            {"h": hour // 3600, "p": "ghost <n>"},
        )
    got = _got(db, *whole)
    assert "ghost <n>" not in [row[0] for row in got]
    assert got == _expected(db, *whole)[: len(got)] and len(got) >= 4


def test_a_long_attempt_error_is_grouped_by_its_first_500_characters(db: Database) -> None:
    """An error far longer than an index entry may be (4-byte characters: 12,000 bytes) is
    stored, and the report groups it by its first 500 characters, which it shows."""
    head = "🔥 model failed on job 1234: " + "🔥" * 600
    errors = [head + " first tail", head + " another tail 77", "short error 5"]
    with db.transaction() as session:
        agent = new_agent(session).id
        for _ in errors:
            new_task(session)
    for error in errors:
        with db.transaction() as session:
            (claim,) = queue.claim_tasks(session, agent, limit=1)
            queue.fail_task(session, claim.task.id, claim.lease_token, error, retry=False)
    now = datetime.now(UTC)
    with db.engine.connect() as conn:
        found = reports.failures(
            conn, ReportQuery(since=now - timedelta(hours=1), until=now + timedelta(minutes=1))
        ).errors
    groups = {(g.pattern, g.count) for g in found if g.source == "task"}
    assert groups == {(error_pattern(head[:500]), 2), ("short error <n>", 1)}
    long_group = next(g for g in found if g.count == 2)
    assert long_group.example == head[:500]
