"""The attempts' errors of a report's range, per pattern (:class:`~swarm_director.models.
attempt_errors.Tally`): the range's ended hours from their digests' ``errors`` where the
digest holds, the rest (the partial hours at either end, the current hour, hours not
digested yet) from the history's failed steps: their messages counted by the database, and
only the groups reported looked up for their newest steps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Connection

from swarm_director.models.attempt_digest import hour_runs, valid_digests
from swarm_director.models.attempt_errors import (
    EXAMPLES,
    Patterns,
    Step,
    Tally,
    failed_steps,
    instant,
    merged,
    message_counts,
    stamp,
)
from swarm_director.models.history import HistoryEntry
from swarm_director.models.rollup import hour_start
from swarm_director.store.reports.rollups import hours_within
from swarm_director.store.reports.window import Window

#: Distinct messages counted per statement (a stretch of the history; the error logs without
#: a pattern, :mod:`~swarm_director.store.reports.errors`): a bound on the work, kept far
#: above a real swarm's.
MAX_DISTINCT = 20_000
#: Failed steps read at a time while looking for the groups' newest.
_BATCH = 1_000

Ranges = list[tuple[datetime, datetime]]


def attempt_tallies(
    connection: Connection, window: Window, rollup: bool = True
) -> tuple[dict[str, Tally], Ranges]:
    """The range's tallies per pattern, and the stretches read from the history. The counts
    are whole; a tally's newest steps are those of the digests only, until
    :func:`add_newest` adds the stretches' (for the groups reported alone). ``rollup=False``:
    every failed step from the history."""
    tallies: dict[str, Tally] = {}
    ranges: Ranges = [(window.since, window.until)]
    span = hours_within(window.since, window.until) if rollup else None
    if span is not None:
        digests = connection.execute(valid_digests(span.first, span.end, "errors")).all()
        digested = {int(hour) for hour, _text in digests}
        tallies = merged(text for _hour, text in digests)
        ranges = [(window.since, span.since), (span.until, window.until)]
        ranges[1:1] = [
            (hour_start(a), hour_start(b)) for a, b in hour_runs(span.first, span.end, digested)
        ]
    ranges = [(since, until) for since, until in ranges if since < until]
    patterns = Patterns()
    for since, until in ranges:
        for message, count in connection.execute(message_counts(since, until, MAX_DISTINCT)):
            pattern = patterns[message or ""]
            tallies.setdefault(pattern, Tally()).count += int(count)
    return tallies, ranges


def add_newest(connection: Connection, ranges: Ranges, wanted: dict[str, Tally]) -> None:
    """Add to each of the ``wanted`` tallies the newest failed steps of its pattern in the
    ``ranges``: each stretch's steps are read newest first until every wanted pattern has
    :data:`~swarm_director.models.attempt_errors.EXAMPLES` of them (older ones cannot be
    among the newest)."""
    if not wanted:
        return
    patterns = Patterns()
    for since, until in ranges:
        found: dict[str, list[Step]] = {pattern: [] for pattern in wanted}
        open_ = set(wanted)
        for step in _newest_first(connection, since, until):
            pattern = patterns[step[2]]
            if pattern not in open_:
                continue
            steps = found[pattern]
            # Past the fifth, a step of the same time and task may still sort before it
            # (the messages break the tie); an older one may not.
            if len(steps) >= EXAMPLES and step[:2] < steps[EXAMPLES - 1][:2]:
                open_.discard(pattern)
                if not open_:
                    break
                continue
            steps.append(step)
        for pattern, steps in found.items():
            wanted[pattern].add(Tally(0, steps))


def _newest_first(connection: Connection, since: datetime, until: datetime) -> Iterator[Step]:
    """The failed steps of ``[since, until)``, newest first, read :data:`_BATCH` at a time
    (a server-side cursor needs a transaction, which a report read may not have): each batch
    starts at the last one's oldest time again and skips the steps of that time it has
    given."""
    stmt, limit = failed_steps(since, until), _BATCH
    given: Counter[Step] = Counter()  # the steps given at the oldest time read so far
    while True:
        rows = [
            (stamp(at), int(task_id), message or "")
            for at, task_id, message in connection.execute(stmt.limit(limit))
        ]
        skip = Counter(given)
        fresh = []
        for step in rows:
            if skip[step]:
                skip[step] -= 1
            else:
                fresh.append(step)
        yield from fresh
        if len(rows) < limit:
            return
        oldest = instant(rows[-1][0])
        at_oldest = Counter(step for step in rows if step[0] == rows[-1][0])
        if not fresh or at_oldest.total() == len(rows):
            limit *= 2  # a batch of one time only: read more of it at once
        given = at_oldest
        stmt = failed_steps(since, until).where(HistoryEntry.at <= oldest)
