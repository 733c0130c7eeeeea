"""The durations report reads each ended hour's attempts from its digest
(models/attempt_digest.py) and stays exact: the figures equal those computed from every
attempt (``rollup=False``, itself checked against Python in test_reports.py) for ranges cut
anywhere, after the digests were written and then made stale by a task's new type, a task
deleted, the history pruned or rewritten, and while queue workers and the fold run at once.
On both dialects."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.db.base import utcnow
from swarm_director.models import Task, TaskAttempt, attempt_digest
from swarm_director.models.attempt_digest import AttemptDigest, Digest, digests_of, pack, unpack
from swarm_director.models.history import HistoryEntry
from swarm_director.models.rollup import epoch_hour
from swarm_director.ops.rollup_fold import fold_digests
from swarm_director.schemas.reports import DurationRow, ErrorGroup, FailureRow, ReportQuery
from swarm_director.store import reports, tasks
from swarm_director.store.history import prune_history
from swarm_director.store.reports import attempt_errors as attempt_errors_module
from swarm_director.store.reports import attempt_times as durations_module
from swarm_director.store.reports import attempts as attempts_module
from swarm_director.store.reports import resolve
from swarm_director.store.reports.attempt_errors import attempt_tallies
from tests.store.queue_workers import run_workers
from tests.store.reports_swarm import START, Swarm, build

SINCE = START
UNTIL = START + timedelta(hours=48)
#: Ranges cut at whole hours, inside hours, and inside one hour.
RANGES = [
    (SINCE, UNTIL),
    (SINCE + timedelta(minutes=17, seconds=3), UNTIL - timedelta(hours=9, minutes=41)),
    (SINCE + timedelta(hours=3), SINCE + timedelta(hours=11)),
    (SINCE + timedelta(hours=2, minutes=5), SINCE + timedelta(hours=2, minutes=50)),
]


def _durations(
    db: Database, since: datetime = SINCE, until: datetime = UNTIL, *, rollup: bool = True
) -> list[DurationRow]:
    with db.statement_reads() as conn:
        query = ReportQuery(since=since, until=until)
        return reports.durations(conn, query, rollup=rollup).types


def _failures(
    db: Database, since: datetime = SINCE, until: datetime = UNTIL, *, rollup: bool = True
) -> tuple[list[FailureRow], list[FailureRow], list[ErrorGroup]]:
    with db.statement_reads() as conn:
        query = ReportQuery(since=since, until=until)
        report = reports.failures(conn, query, rollup=rollup)
    return report.by_type, report.by_agent, report.errors


def _exact(db: Database) -> None:
    for since, until in RANGES:
        assert _durations(db, since, until) == _durations(db, since, until, rollup=False)
        assert _failures(db, since, until) == _failures(db, since, until, rollup=False)


def _valid_hours(db: Database) -> set[int]:
    with db.engine.connect() as conn:
        return {
            int(h)
            for (h,) in conn.exec_driver_sql(
                "SELECT epoch_hour FROM attempt_digests d WHERE NOT EXISTS "
                "(SELECT 1 FROM attempt_digest_marks m WHERE m.epoch_hour = d.epoch_hour)"
            )
        }


def _rows_read_from_attempts(db: Database, since: datetime, until: datetime) -> int:
    """How many attempt rows the report reads itself (the rest come from digests)."""
    counted = 0
    real = durations_module.digests_of

    def counting(rows: Any) -> dict[str, Digest]:
        nonlocal counted
        listed = list(rows)
        counted += len(listed)
        return real(listed)

    with mock.patch.object(durations_module, "digests_of", counting):
        _durations(db, since, until)
    return counted


@pytest.fixture
def swarm(db: Database) -> Swarm:
    return build(db)


def test_the_ended_hours_are_digested_and_read_from_their_digests(
    db: Database, swarm: Swarm
) -> None:
    live = [a for a in swarm.attempts if a.task_id not in swarm.deleted]
    # No digest yet: every attempt read the raw way (the digests' reader reads none).
    assert _rows_read_from_attempts(db, SINCE, UNTIL) == 0
    before = _durations(db)
    assert before == _durations(db, rollup=False)

    assert fold_digests(db.engine) > 0
    hours = {epoch_hour(a.claimed) for a in live}
    assert hours <= _valid_hours(db)
    assert fold_digests(db.engine) == 0  # nothing left to do
    # The whole range from digests, the partial hours at its ends from the attempts.
    assert _rows_read_from_attempts(db, SINCE, UNTIL) == 0
    inner = RANGES[1]
    in_edges = [
        a
        for a in live
        if inner[0] <= a.claimed < inner[1]
        and epoch_hour(a.claimed) in (epoch_hour(inner[0]), epoch_hour(inner[1]))
    ]
    assert _rows_read_from_attempts(db, *inner) == len(in_edges)
    assert _durations(db) == before
    _exact(db)
    # The failure rates of the whole hours come from the digests' counts: the rollup is read
    # only for hours that have no attempt (and so no digest).
    read = attempts_module.attempt_totals
    spans: list[Any] = []

    def recorded(connection: Any, span: Any) -> Any:
        spans.append(span)
        return read(connection, span)

    with mock.patch.object(attempts_module, "attempt_totals", recorded):
        assert _failures(db) == _failures(db, rollup=False)
    assert spans and not [h for h in hours for s in spans if s.first <= h < s.end]


def test_a_range_of_digested_and_undigested_hours_gives_the_raw_figures(
    db: Database, swarm: Swarm
) -> None:
    fold_digests(db.engine)
    with db.engine.begin() as conn:  # every third hour's digest gone
        conn.execute(sa.text("DELETE FROM attempt_digests WHERE mod(epoch_hour, 3) = 0"))
    _exact(db)


def _new_type(db: Database) -> None:
    with db.engine.begin() as conn:  # the store never changes a type; SQL by hand may
        conn.execute(
            sa.text(
                "UPDATE tasks SET type = 'communication' WHERE id IN (SELECT task_id FROM "
                "task_attempts WHERE attempt > 1) AND type <> 'communication'"
            )
        )


def _delete_tasks(db: Database) -> None:
    with db.engine.connect() as conn:
        ids = conn.exec_driver_sql(
            "SELECT DISTINCT a.task_id FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
            "ORDER BY a.task_id LIMIT 5"
        ).scalars()
        doomed = list(ids)
    with db.transaction() as session:
        for task_id in doomed:
            tasks.delete_task(session, task_id)


def _prune(db: Database) -> None:
    with db.engine.begin() as conn:
        assert prune_history(conn, START + timedelta(hours=9, minutes=30)) > 0


def _attempts_recomputed(db: Database) -> None:
    """What the history's triggers do to ``task_attempts`` when a step is written between
    others or deleted: an attempt's run changes, another moves to a later hour, another
    ends otherwise."""
    attempts = TaskAttempt.__table__
    with db.engine.begin() as conn:
        ids = conn.execute(
            sa.select(attempts.c.claim_id, attempts.c.claimed_at, attempts.c.run_s)
            .where(attempts.c.run_s.is_not(None))
            .order_by(attempts.c.claim_id)
            .limit(6)
        ).all()
        for claim_id, _claimed_at, run_s in ids[:3]:
            update = attempts.update().where(attempts.c.claim_id == claim_id)
            conn.execute(update.values(run_s=run_s + 5400))
        for claim_id, claimed_at, _run_s in ids[3:]:
            update = attempts.update().where(attempts.c.claim_id == claim_id)
            conn.execute(update.values(claimed_at=claimed_at + timedelta(hours=2)))
        last = conn.execute(  # in other hours than those above
            sa.select(attempts.c.claim_id)
            .where(attempts.c.end_action == "complete")
            .order_by(attempts.c.claim_id.desc())
            .limit(2)
        ).scalars()
        for claim_id in list(last):
            update = attempts.update().where(attempts.c.claim_id == claim_id)
            conn.execute(update.values(end_action="retry"))


@pytest.mark.parametrize(
    "change", [_new_type, _delete_tasks, _prune, _attempts_recomputed], ids=lambda f: f.__name__
)
def test_a_change_retires_the_digests_of_its_hours(db: Database, swarm: Swarm, change: Any) -> None:
    fold_digests(db.engine)
    before = _durations(db), _failures(db)
    change(db)
    after = _durations(db), _failures(db)
    assert after[0] != before[0] and after[1] != before[1]  # shown before any fold
    assert after == (_durations(db, rollup=False), _failures(db, rollup=False))
    _exact(db)
    assert fold_digests(db.engine) > 0  # the retired hours, written again
    assert (_durations(db), _failures(db)) == after
    _exact(db)


def _hour_of_failures(db: Database) -> tuple[int, datetime]:
    """A digested hour with failed steps, and the time of its first."""
    valid = _valid_hours(db)
    with db.engine.connect() as conn:
        steps = conn.execute(
            sa.select(HistoryEntry.at)
            .where(HistoryEntry.action.in_(("fail", "retry", "expire")))
            .order_by(HistoryEntry.at)
        ).scalars()
        at = next(at for at in steps if epoch_hour(at) in valid)
    return epoch_hour(at), at


def test_a_failed_step_written_changed_or_deleted_retires_its_hours_digest(
    db: Database, swarm: Swarm
) -> None:
    """The most frequent errors come from the digests' errors; a failed step written into a
    digested hour (a task that no longer exists: no attempt changes), its message changed,
    then deleted, each retire that hour's digest, and the report stays the raw one."""
    fold_digests(db.engine)
    hour, at = _hour_of_failures(db)
    history = HistoryEntry.__table__
    new_step = {
        "entity": "task", "entity_id": 999_999, "action": "fail", "actor": "test",
        "changes": {"last_error": [None, "disk full on node 7"]}, "at": at + timedelta(seconds=1),
    }  # fmt: skip
    with db.engine.begin() as conn:
        step_id = conn.execute(history.insert().values(**new_step)).inserted_primary_key[0]
    assert hour not in _valid_hours(db)
    errors = _failures(db)[2]
    assert errors == _failures(db, rollup=False)[2]
    disk = [e for e in errors if e.pattern == "disk full on node <n>"]
    assert [(e.count, e.ids) for e in disk] == [(1, [999_999])]
    assert fold_digests(db.engine) == 1 and hour in _valid_hours(db)
    assert _failures(db)[2] == errors

    with db.engine.begin() as conn:
        changes = {"last_error": [None, "disk full on node 8 of 9"]}
        conn.execute(history.update().where(history.c.id == step_id).values(changes=changes))
    assert hour not in _valid_hours(db)
    errors = _failures(db)[2]
    assert errors == _failures(db, rollup=False)[2]
    assert [e.count for e in errors if e.pattern == "disk full on node <n> of <n>"] == [1]
    fold_digests(db.engine)

    with db.engine.begin() as conn:
        conn.execute(history.delete().where(history.c.id == step_id))
    assert hour not in _valid_hours(db)
    errors = _failures(db)[2]
    assert errors == _failures(db, rollup=False)[2]
    assert not [e for e in errors if e.pattern.startswith("disk full")]
    _exact(db)


def test_the_newest_steps_are_read_in_batches_across_a_tie(db: Database, swarm: Swarm) -> None:
    """The groups' newest steps are read newest first a batch at a time; seven failed steps
    of one task at one instant straddle batches of two, and each is read once."""
    at = SINCE + timedelta(hours=5, minutes=1)
    history = HistoryEntry.__table__
    with db.engine.begin() as conn:
        for n in range(7):
            changes = {"last_error": [None, f"tie breaker {n}"]}
            conn.execute(
                history.insert().values(
                    entity="task",
                    entity_id=999_998,
                    action="fail",
                    actor="t",
                    changes=changes,
                    at=at,
                )
            )
    whole = _failures(db, rollup=False)[2]
    with mock.patch.object(attempt_errors_module, "_BATCH", 2):
        assert _failures(db, rollup=False)[2] == whole
        fold_digests(db.engine)
        assert _failures(db)[2] == whole
    tie = [(e.count, e.example, e.ids, e.last_at) for e in whole if e.pattern == "tie breaker <n>"]
    assert tie == [(7, "tie breaker 6", [999_998], at)]


def test_the_errors_of_digested_hours_are_not_read_from_the_history(
    db: Database, swarm: Swarm
) -> None:
    """After the fold, the failed steps read from the history are those of hours that have
    no digest (hours with failed steps but no claim) and, for the groups reported, only as
    many as their newest examples need."""
    fold_digests(db.engine)
    valid = _valid_hours(db)
    window = resolve(ReportQuery(since=SINCE, until=UNTIL))
    with db.statement_reads() as conn:
        tallies, ranges = attempt_tallies(conn, window)
        _raw, raw_ranges = attempt_tallies(conn, window, rollup=False)
    assert raw_ranges == [(SINCE, UNTIL)]
    for since, until in ranges:
        assert not {h for h in range(epoch_hour(since), epoch_hour(until)) if h in valid}
    expected: dict[str, int] = {}
    for message, _at, _task in swarm.errors:
        pattern = reports.mask(message)
        expected[pattern] = expected.get(pattern, 0) + 1
    assert {p: t.count for p, t in tallies.items()} == expected


def test_workers_and_the_fold_at_once_leave_the_report_exact(db: Database) -> None:
    """Four queue workers claim, complete, fail and retry while the fold digests every hour
    (the current one too, as if it had ended) again and again."""
    build(db)
    stop = threading.Event()
    errors: list[BaseException] = []

    def fold() -> None:
        try:
            while not stop.is_set():
                fold_digests(db.engine, now=utcnow() + timedelta(hours=2))
        except BaseException as error:
            errors.append(error)

    folder = threading.Thread(target=fold)
    folder.start()
    try:
        run_workers(db)
    finally:
        stop.set()
        folder.join()
    assert errors == []
    now = utcnow()
    whole = (SINCE, now + timedelta(hours=1))
    with db.engine.connect() as conn:
        marks = conn.exec_driver_sql("SELECT count(*) FROM attempt_digest_marks").scalar_one()
    rows = _durations(db, *whole)
    assert rows == _durations(db, *whole, rollup=False)
    assert sum(row.attempts for row in rows) > 60
    # Whatever the last fold did not see is marked (PostgreSQL) or was deleted (SQLite); a
    # fold now leaves every hour digested and the report the same.
    fold_digests(db.engine, now=now + timedelta(hours=2))
    assert _durations(db, *whole) == rows
    assert marks >= 0


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_change_committed_while_the_fold_runs_leaves_its_hour_stale(
    db: Database, swarm: Swarm
) -> None:
    """PostgreSQL: a task given another type commits after the fold has read the latest
    hour (its attempts there under the old type) and before the fold deletes the marks: the
    fold's snapshot does not see the change's marks, so they stay, and the digest is not read
    until a later fold has seen the change."""
    live = [a for a in swarm.attempts if a.task_id not in swarm.deleted]
    latest = max(live, key=lambda a: a.claimed)
    new_type = "analysis" if latest.type != "analysis" else "communication"
    real_pack = attempt_digest.pack
    with db.engine.connect() as writer:
        writer.begin()
        writer.execute(sa.update(Task).where(Task.id == latest.task_id).values(type=new_type))

        def pack_then_commit(digests: dict[str, Digest]) -> bytes:
            if writer.in_transaction():
                writer.commit()  # after the fold read the hour, before it deletes the marks
            return real_pack(digests)

        with mock.patch.object(attempt_digest, "pack", pack_then_commit):
            # One transaction: a later one would see the change and digest the hour again.
            assert fold_digests(db.engine, batches=1) > 0
    assert epoch_hour(latest.claimed) not in _valid_hours(db)
    assert _durations(db) == _durations(db, rollup=False)
    fold_digests(db.engine)
    assert epoch_hour(latest.claimed) in _valid_hours(db)
    _exact(db)


def test_db_check_names_a_drifted_digest_and_rebuild_rollups_drops_them(
    db: Database, db_url: URL, swarm: Swarm
) -> None:
    url = db_url.render_as_string(hide_password=False)
    fold_digests(db.engine)
    assert _cli("db", "check", "--database-url", url)[0] == 0
    latest = max(a.claimed for a in swarm.attempts if a.task_id not in swarm.deleted)
    with db.engine.begin() as conn:  # a digest written wrong, its triggers bypassed
        conn.execute(
            sa.update(AttemptDigest)
            .where(AttemptDigest.epoch_hour == epoch_hour(latest))
            .values(payload=pack({}))
        )
    assert _durations(db) != _durations(db, rollup=False)
    code, out = _cli("db", "check", "--database-url", url)
    assert code == 1
    assert (
        f"{latest:%Y-%m-%dT%H}:00Z: the digest differs from the attempts and failed steps of "
        "the hour" in out
    )

    code, out = _cli("db", "rebuild-rollups", "--database-url", url)
    assert code == 0
    assert _valid_hours(db) == set()
    assert _durations(db) == _durations(db, rollup=False)
    assert fold_digests(db.engine) > 0
    assert _cli("db", "check", "--database-url", url)[0] == 0
    _exact(db)
    hour, at = _hour_of_failures(db)
    with db.engine.begin() as conn:  # the errors written wrong
        conn.execute(
            sa.update(AttemptDigest).where(AttemptDigest.epoch_hour == hour).values(errors="{}")
        )
    assert _failures(db)[2] != _failures(db, rollup=False)[2]
    code, out = _cli("db", "check", "--database-url", url)
    assert code == 1 and f"{at:%Y-%m-%dT%H}:00Z: the digest differs" in out


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_a_digest_packs_and_unpacks_every_width() -> None:
    rows = [
        ("analysis", 1, 1, 0.5, 2.25),
        ("analysis", 2**40, 2, 2**31 / 1000 + 1.0, None),  # an 8-byte id and wait
        ("analysis", 1, 2, None, 0.001),
        ("communication", 7, 3, -0.002, 1.0),
    ]
    digests = unpack(pack(digests_of(rows)))
    analysis, communication = digests["analysis"], digests["communication"]
    assert (analysis.attempts, analysis.retries) == (3, 2)
    assert analysis.tasks.tolist() == [1, 2**40]
    assert analysis.waits.tolist() == [500, 2**31 + 1000]
    assert analysis.runs.tolist() == [1, 2250]
    assert communication.waits.tolist() == [-2] and communication.tasks.tolist() == [7]
    assert unpack(pack({})) == {}
