"""A report's range cut into buckets, and the SQL that puts a timestamp into its bucket.

Buckets are computed here, in Python, from the IANA database (``zoneinfo``), not by the
database: SQLite knows no time zones, and PostgreSQL's would have to agree with Python's.
A row's bucket is an integer computed in SQL from whole epoch seconds (exact on both dialects:
no floating point near a boundary), shifted by the zone's UTC offset, which is a CASE over the
few offset changes (daylight saving) inside the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Connection, case, cast, func, literal, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from swarm_director.db.base import utcnow
from swarm_director.db.types import UTCDateTime
from swarm_director.errors import ValidationError
from swarm_director.schemas.reports import ReportQuery, ReportRange

#: Seconds per bucket.
WIDTHS = {"minute": 60, "hour": 3600, "day": 86400}
#: More buckets than this is no chart: a minute bucket covers at most a day, an hour 62 days.
MAX_BUCKETS = 1500
#: Most buckets counted each over its own range of the timestamp (:meth:`Window.counts`):
#: one SELECT a bucket in a UNION ALL, of which SQLite takes at most 500.
RANGED_BUCKETS = 100
#: The longest range a report covers.
MAX_RANGE = timedelta(days=400)
DEFAULT_SPAN = timedelta(hours=24)


def _invalid(field: str, problem: str) -> ValidationError:
    return ValidationError(
        f"invalid report range at {field}: {problem}", details={"fields": {field: problem}}
    )


@dataclass(frozen=True)
class Window:
    """A resolved report range: ``since`` ≤ t < ``until``, cut into ``len(starts)`` buckets."""

    since: datetime
    until: datetime
    bucket: str
    tz: str
    starts: list[datetime]
    #: Local epoch seconds of the first bucket's start.
    origin: int
    #: (instant, UTC offset in seconds from that instant on) for each offset in the range.
    offsets: list[tuple[datetime, int]]

    @property
    def width(self) -> int:
        return WIDTHS[self.bucket]

    def described(self) -> ReportRange:
        return ReportRange(
            since=self.since, until=self.until, bucket=self.bucket, tz=self.tz, buckets=self.starts
        )

    def index_of(self, when: datetime) -> int:
        """The bucket of ``when`` (what the SQL computes, for tests and Python callers)."""
        local = int(when.timestamp() // 1) + self._offset(when)
        return (local - self.origin) // self.width

    def _offset(self, when: datetime) -> int:
        found = self.offsets[0][1]
        for start, seconds in self.offsets:
            if when >= start:
                found = seconds
        return found

    def bucket_ranges(self) -> list[tuple[datetime, datetime]] | None:
        """Each bucket's part of the range, ``[start, end)``, or None when there are more
        than :data:`RANGED_BUCKETS` or a bucket's start is not where :meth:`index_of` starts
        it (a whole second of a zone's local midnight that does not exist, say)."""
        if len(self.starts) > RANGED_BUCKETS:
            return None
        before = timedelta(microseconds=1)
        for i, start in enumerate(self.starts[1:], 1):
            where = (self.index_of(start - before), self.index_of(start))
            if start.microsecond or where != (i - 1, i):
                return None
        ends = [*self.starts[1:], self.until]
        return [(max(start, self.since), end) for start, end in zip(self.starts, ends, strict=True)]

    def counts(self, connection: Connection, column: Any, *where: Any) -> list[int]:
        """Rows per bucket by timestamp ``column`` (and the conditions ``where``). Each bucket
        is counted over its own range of the column, all in one statement, so an index on the
        column counts them without a function a row (docs/reports.md, "The emails report"):
        on SQLite always, on PostgreSQL when there is no other condition (an index-only count;
        with conditions on other columns, each range reads the table, and one scan putting
        each row in its bucket is cheaper). More than :data:`RANGED_BUCKETS` buckets are put
        in their buckets by :meth:`bucket_sql`."""
        found = [0] * len(self.starts)
        dialect = dialect_of(connection)
        ranged = dialect == "sqlite" or not where
        ranges = self.bucket_ranges() if ranged else None
        stmt: Any
        if ranges is None:
            bucket = self.bucket_sql(column, dialect).label("b")
            stmt = (
                select(bucket, func.count())
                .where(column >= self.since, column < self.until, *where)
                .group_by(bucket)
            )
        else:
            stmt = union_all(
                *(
                    select(literal(i), func.count()).where(column >= start, column < end, *where)
                    for i, (start, end) in enumerate(ranges)
                )
            )
        for index, count in connection.execute(stmt):
            found[int(index)] += int(count)
        return found

    def bucket_sql(self, column: Any, dialect: str) -> ColumnElement[Any]:
        """The 0-based bucket of timestamp ``column`` (rows in the range only)."""
        seconds = _epoch_seconds(column, dialect)
        if len(self.offsets) == 1:
            shifted: ColumnElement[Any] = seconds + self.offsets[0][1] - self.origin
        else:
            shift = case(
                *[
                    (column < literal(start, UTCDateTime()), self.offsets[i - 1][1])
                    for i, (start, _seconds) in enumerate(self.offsets)
                    if i > 0
                ],
                else_=self.offsets[-1][1],
            )
            shifted = seconds + shift - self.origin
        # Integer division of non-negative integers: the floor, on both dialects.
        return shifted // self.width


def _epoch_seconds(column: Any, dialect: str) -> ColumnElement[Any]:
    """Whole seconds since the epoch (floor) of a UTC timestamp column."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    # SQLite keeps naive UTC text ("YYYY-MM-DD HH:MM:SS.ffffff"); strftime('%s') reads it as
    # UTC but rounds the fraction to milliseconds first (23:59:59.9996 would become the next
    # day), so the fraction is cut off before it reads the text.
    return cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger)


def _aligned_start(since_local: datetime, bucket: str) -> datetime:
    if bucket == "minute":
        return since_local.replace(second=0, microsecond=0)
    if bucket == "hour":
        return since_local.replace(minute=0, second=0, microsecond=0)
    return since_local.replace(hour=0, minute=0, second=0, microsecond=0)


def _offsets(zone: ZoneInfo, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offsets between ``since`` and ``until``, each with the instant it
    starts (found hour by hour, then narrowed to the second)."""

    def offset_at(when: datetime) -> int:
        delta = when.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    found = [(since, offset_at(since))]
    step = timedelta(hours=1)
    probe = since
    while probe < until:
        following = min(probe + step, until)
        if offset_at(following) != found[-1][1]:
            low, high = probe, following  # offset_at(low) is the old one, high's the new
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset_at(middle) == found[-1][1]:
                    low = middle
                else:
                    high = middle
            found.append((high.replace(microsecond=0), offset_at(high)))
        probe = following
    return found


def resolve(query: ReportQuery | None = None, *, now: datetime | None = None) -> Window:
    """The buckets of ``query``'s range. Raises ValidationError for an empty or reversed
    range, one longer than 400 days, a zone with minute or hour buckets, or more than
    :data:`MAX_BUCKETS` buckets."""
    query = query or ReportQuery()
    until = query.until or (now or utcnow())
    since = query.since or until - DEFAULT_SPAN
    if since >= until:
        raise _invalid("since", "must be before until")
    if until - since > MAX_RANGE:
        raise _invalid("since", f"the range is at most {MAX_RANGE.days} days")
    if query.tz != "UTC" and query.bucket != "day":
        raise _invalid("tz", "a time zone applies to day buckets only (minute and hour are UTC)")
    zone = ZoneInfo(query.tz)
    offsets = _offsets(zone, since, until)
    first = _aligned_start(since.astimezone(zone), query.bucket)
    origin = int(first.replace(tzinfo=UTC).timestamp())
    width = WIDTHS[query.bucket]
    last = until - timedelta(microseconds=1)
    probe = Window(since, until, query.bucket, query.tz, [], origin, offsets)
    count = probe.index_of(last) + 1
    if count > MAX_BUCKETS:
        raise _invalid(
            "bucket", f"{count} {query.bucket} buckets; at most {MAX_BUCKETS}: widen the bucket"
        )
    naive = first.replace(tzinfo=None)
    starts = [
        (naive + timedelta(seconds=width * i)).replace(tzinfo=zone).astimezone(zone)
        if query.tz != "UTC"
        else (naive + timedelta(seconds=width * i)).replace(tzinfo=UTC)
        for i in range(count)
    ]
    return Window(since, until, query.bucket, query.tz, starts, origin, offsets)


def dialect_of(connection: Connection) -> str:
    return connection.dialect.name
