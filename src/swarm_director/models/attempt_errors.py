"""The attempts' errors of a stretch of time, grouped by pattern: how many failed steps each
pattern has and its newest steps (the failures report's "most frequent errors").

A failed step is a ``fail``, ``retry`` or ``expire`` row of a task's history; its message is
``history.error_message`` and its group the message with numbers and ids masked
(:func:`~swarm_director.models.log_pattern.error_pattern`). A :class:`Tally` per pattern adds
up over any split of the time: counts add, and the newest :data:`EXAMPLES` steps of a union
are the newest of each part's newest. So an ended hour's tallies are kept in its digest
(:mod:`swarm_director.models.attempt_digest`, column ``errors``) and a month is summed from
720 of them instead of grouping every failed step of the month (docs/benchmarks.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, text

from swarm_director.models.history import FAILED_STEPS, HistoryEntry
from swarm_director.models.log_pattern import error_pattern

#: Newest steps kept per pattern: the report's example ids.
EXAMPLES = 5

#: A failed step: when (:func:`stamp`), the task's id, its message ("" for none).
Step = tuple[str, int, str]
#: A step's time as text, in UTC: one width, so that texts sort as the times do.
_STAMP = "%Y-%m-%dT%H:%M:%S.%f"


def stamp(at: datetime) -> str:
    """``at`` as a :data:`Step` holds it (compared and stored as text: the digests hold
    thousands, of which a report shows a few)."""
    return at.astimezone(UTC).strftime(_STAMP)


def instant(text_: str) -> datetime:
    """The time :func:`stamp` wrote."""
    return datetime.strptime(text_, _STAMP).replace(tzinfo=UTC)


@dataclass
class Tally:
    """A pattern's failed steps: how many, and the newest :data:`EXAMPLES` of them, newest
    first (by time, then task id, then message: one order on both dialects)."""

    count: int = 0
    newest: list[Step] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.count += other.count
        self.newest = _newest(self.newest + other.newest)


def merged(texts: Iterable[str]) -> dict[str, Tally]:
    """The tallies that digests' ``errors`` texts (:func:`dump_tallies`) hold, added up per
    pattern: each pattern's newest are chosen once, from every text's."""
    counts: dict[str, int] = {}
    steps: dict[str, list[list[Any]]] = {}
    for text_ in texts:
        for pattern, (count, newest) in json.loads(text_).items():
            counts[pattern] = counts.get(pattern, 0) + count
            steps.setdefault(pattern, []).extend(newest)
    return {
        pattern: Tally(count, [tuple(step) for step in _newest(steps[pattern])])
        for pattern, count in counts.items()
    }


class Patterns(dict[str, str]):
    """Messages' patterns, each masked once: ``patterns[message or ""]``."""

    def __missing__(self, raw: str) -> str:
        pattern = self[raw] = error_pattern(raw)
        return pattern


def _newest(steps: Iterable[Any]) -> list[Any]:
    # A sort, not heapq.nlargest: the digests come oldest first, so nearly every step would
    # replace the heap's smallest.
    return sorted(steps, reverse=True)[:EXAMPLES]


def _failed_within(since: datetime, until: datetime) -> list[Any]:
    """The conditions of the tasks' failed steps in ``[since, until)``, as the partial index
    ``ix_history_failed_at`` says them."""
    h = HistoryEntry
    return [h.entity == "task", text(FAILED_STEPS), h.at >= since, h.at < until]


def failed_steps(since: datetime, until: datetime) -> Select[datetime, int, str | None]:
    """``(at, task id, message)`` of the tasks' failed steps in ``[since, until)``, newest
    first (the partial index ``ix_history_failed_at`` holds every column, in this order)."""
    h = HistoryEntry
    return (
        select(h.at, h.entity_id, h.error_message)
        .where(*_failed_within(since, until))
        .order_by(h.at.desc(), h.entity_id.desc())
    )


def message_counts(since: datetime, until: datetime, limit: int) -> Select[str | None, int]:
    """``(message, count)`` per distinct message of the failed steps in ``[since, until)``,
    at most ``limit`` messages."""
    h = HistoryEntry
    return (
        select(h.error_message, func.count())
        .where(*_failed_within(since, until))
        .group_by(h.error_message)
        .limit(limit)
    )


def tallies_of(steps: Iterable[tuple[datetime, int, str | None]]) -> dict[str, Tally]:
    """Per pattern, the :class:`Tally` of ``steps`` ``(at, task id, message)``."""
    patterns = Patterns()
    found: dict[str, tuple[int, list[Step]]] = {}
    for at, task_id, message in steps:
        raw = message or ""
        pattern = patterns[raw]
        count, steps_of = found.get(pattern, (0, []))
        steps_of.append((stamp(at), int(task_id), raw))
        found[pattern] = (count + 1, steps_of)
    return {p: Tally(count, _newest(steps_of)) for p, (count, steps_of) in found.items()}


def dump_tallies(tallies: dict[str, Tally]) -> str:
    """The digest's ``errors`` text: per pattern, its count and newest steps (times as
    :func:`stamp` writes them), sorted keys: the same tallies, the same text."""
    return json.dumps(
        {pattern: [t.count, t.newest] for pattern, t in tallies.items()},
        sort_keys=True,
        separators=(",", ":"),
    )
