"""Pages of search hits: a listing's keyset pages restricted to the rows a query matches.

SQLite when the query has at most ``search.SQLITE_SORTED_HITS`` hits: the listing's
statement restricted to the hits' rowids, paginated as any other (SQLite reads them by id and
sorts them).

PostgreSQL first looks for the page in a window of the listing (:func:`_pg_windowed`): the
next ``search.PG_WINDOW_ROWS`` rows of the listing's own plan (its ordered index, as a page
without a search reads it), each checked against the query, cheapest check first. That plan
holds whatever the statistics say: a table that grows faster than ANALYZE follows (or with no
autovacuum at all) has statistics that know nothing of its newest rows and words, and the
planner, guessing 0.5 % of rows for an unknown word, read and sorted every hit of a word in
every tenth log (docs/benchmarks.md, "Reads under live ingest"). A window that held some hits
but too few for the page is followed by one larger window, up to ``search.PG_WINDOW_MOST_ROWS``
rows, when at the density it showed that is enough for the page. Without the page by then (a
rare word), one statement (:func:`_pg_index_page`): the sort keys of the listing's hits through
the GIN index, the page's among them, and its rows read by those keys; with more than
``search.PG_SORTED_HITS`` hits, the listing filtered by the match, as the planner likes it (a
walk of the ordered index).

SQLite with more hits (a common word): the hits are a filter on a walk of the listing's ordered
index. Filtering by the list of *all* hits costs building that list (a million rowids at 10 M
logs; docs/benchmarks.md, "Scale"), though a page needs only the hits among the rows it walks.
So the walk is cut into a window first: the next ``WINDOW_ROWS`` rows of the listing (after the
cursor, with every filter), and the lowest and highest id among them. Every row of the window is
between those ids, so the hits between them (FTS5 seeks a rowid range in its index) are exactly
the window's hits, and the first ``limit + 1`` of them in the listing's order are the page,
exactly, when the window holds that many. When it does not, the window grows by what the hits it
held say is needed (``WINDOW_GROWTH_*``; ``WINDOW_TRIES`` tries; a window that reaches the end
of the listing is exact whatever it holds). After the last try, or as soon as a window's ids
span more than ``WINDOW_SPAN_SHARE`` of the table's (a listing whose rows are spread thin, such
as one task's among many, where a window's hits are nearly all the hits), the page is read by
the list of all hits. When ids follow time, as appended logs do, a window's ids are a narrow
range and the first try fills the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from swarm_director.models.fulltext import FullTextSource
from swarm_director.store import search
from swarm_director.store.pagination import (
    Ordering,
    Page,
    after_cursor,
    check_limit,
    in_order,
    page_of,
    through_condition,
)
from swarm_director.store.search import (
    SearchQuery,
    parse_query,
    pg_holds_words,
    pg_match,
    plain_plans,
    sqlite_has_many_hits,
    sqlite_hits,
)

#: Rows of the listing in the first window of a search with many hits (SQLite).
WINDOW_ROWS = 1_000
#: How much larger each next window is: enough, at the hit density the last one showed, for
#: twice the page (a window without hits: the most), but at least the least.
WINDOW_GROWTH_LEAST = 4
WINDOW_GROWTH_MOST = 64
#: How many windows are tried before the page is read through the list of all hits.
WINDOW_TRIES = 3

#: A window whose ids span more than this share of the table's ids is given up: its hits
#: would be most of the hits, and the list of all of them is read instead.
WINDOW_SPAN_SHARE = 0.25

#: PostgreSQL: a window after the first is sized for this many pages at the density of hits
#: the one before showed (each row of a window costs a check; one too small, a second try),
#: and not tried when that is more than the largest window.
PG_WINDOW_MARGIN = 1.5
#: PostgreSQL: the name of a window's subquery (:func:`_pg_windowed`), and of the index's.
_WINDOW = "search_window"
_INDEX = "search_index"

#: Runs a page's statement: rows for a select of columns, objects for a select of an entity.
Fetch = Callable[[Select[Any]], Sequence[Any]]


def search_page(
    connection: Connection,
    stmt: Select[Any],
    ordering: Ordering,
    source: FullTextSource,
    id_column: InstrumentedAttribute[int],
    text: str,
    *,
    limit: int,
    cursor: str | None,
    fetch: Fetch,
) -> Page[Any]:
    """The page after ``cursor`` of the rows of ``stmt`` (a listing's select, filters applied)
    in ``ordering`` that match the search ``text`` in ``source`` (words and "quoted phrases",
    see :func:`swarm_director.store.search.parse_query`). ``fetch`` runs the page's statement
    on ``connection`` (or the session it belongs to).

    Raises ValidationError for a bad ``limit``, query or ``cursor``.
    """
    limit = check_limit(limit)
    query = parse_query(text)
    condition: ColumnElement[bool]
    if connection.dialect.name != "sqlite":
        pg = _PgSearch(connection, stmt, ordering, source, query, limit, cursor, fetch)
        page = _pg_windowed(pg) or _pg_by_keys(pg)
        if page is not None:
            return page
        condition = pg_match(source, query)  # keys Python cannot sort: the planner's walk
    else:
        hits = sqlite_hits(source, query)
        if not sqlite_has_many_hits(connection, hits):
            condition = id_column.in_(hits)  # few: read by id, then sorted
        else:
            page = _windowed(connection, stmt, ordering, id_column, hits, limit, cursor, fetch)
            if page is not None:
                return page
            # ``id + 0``: an expression, so SQLite walks the listing's ordered index and keeps
            # the rows among the hits (by id, it would read and sort every hit).
            condition = (id_column + 0).in_(hits)
    walk = in_order(after_cursor(stmt.where(condition), ordering, cursor), ordering)
    return page_of(list(fetch(walk.limit(limit + 1))), ordering, limit, cursor)


@dataclass(frozen=True)
class _PgSearch:
    """PostgreSQL: what a search's page is looked for with (the arguments of
    :func:`search_page`, the query parsed)."""

    connection: Connection
    stmt: Select[Any]
    ordering: Ordering
    source: FullTextSource
    query: SearchQuery
    limit: int
    cursor: str | None
    fetch: Fetch


def _pg_by_keys(pg: _PgSearch) -> Page[Any] | None:
    """PostgreSQL, after the windows: the page, in one statement (None when the listing's
    keys do not sort in Python, see :func:`_pg_index_page`)."""
    ordering = pg.ordering
    if not ordering.sorts_in_python():
        return None
    with plain_plans(pg.connection):
        rows = list(pg.fetch(_pg_index_page(pg)))
    rows.sort(key=lambda row: tuple(getattr(row, k.key) for k in ordering.keys))
    if ordering.descending:
        rows.reverse()
    return page_of(rows, ordering, pg.limit, pg.cursor)


def _pg_index_page(pg: _PgSearch) -> Select[Any]:
    """PostgreSQL: the statement of the page's rows (unordered) through the GIN index.

    The sort keys of every hit of the listing (up to PG_SORTED_HITS), the page's keys among
    them, and the page's rows read by those keys; with more hits, the listing filtered by the
    match, as the planner likes it (a walk of the ordered index). Each way is a branch of one
    ``UNION ALL`` whose condition is a constant of the statement (an InitPlan), so the other
    is not run; one statement is one round trip, each a wait for a core under load
    (docs/benchmarks.md, "Reads under live ingest"), and one snapshot.

    No word of the query is looked up in the statistics' most common elements any more (the
    walk for those): a word the statistics know as frequent is all but always in the first
    window, and one that is not (frequent in older rows only) is better served by its keys,
    when they are few enough, than by a walk through every newer row; the look-up in
    ``pg_stats`` cost more to plan and run than the rest of a rare word's statement.

    Reading the hits' rows by a list of ids left the plan to the planner, which takes every
    partition for holding all the ids and, without statistics, guessed a quarter of the table
    for 50 ids and read all of it (docs/benchmarks.md, "Full-text search"); a join on the
    page's keys, 51 rows the planner knows to be few, is a lookup by primary key per row.
    """
    stmt, ordering = pg.stmt, pg.ordering
    hits = after_cursor(stmt, ordering, pg.cursor).where(pg_match(pg.source, pg.query))
    keys = (
        hits.with_only_columns(*ordering.keys)
        .limit(search.PG_SORTED_HITS + 1)
        .cte("search_keys")
        .prefix_with("MATERIALIZED")
    )
    key_columns = [keys.c[key.key] for key in ordering.keys]
    page_keys = (
        sa.select(*key_columns)
        .order_by(*(c.desc() if ordering.descending else c.asc() for c in key_columns))
        .limit(pg.limit + 1)
        .cte("search_page_keys")
        .prefix_with("MATERIALIZED")
    )
    counted = sa.select(sa.func.count()).select_from(keys).scalar_subquery()
    by_keys = stmt.join(
        page_keys, sa.and_(*(key == page_keys.c[key.key] for key in ordering.keys))
    ).where(counted <= search.PG_SORTED_HITS)
    walk = in_order(hits, ordering).where(counted > search.PG_SORTED_HITS).limit(pg.limit + 1)
    both = sa.union_all(by_keys, walk.subquery().select()).subquery(_INDEX)
    entity = _selected_entity(stmt)
    return sa.select(aliased(entity, both)) if entity is not None else sa.select(*both.c)


def _pg_windowed(pg: _PgSearch) -> Page[Any] | None:
    """PostgreSQL: the page found among the next rows of the listing (module docstring), or
    None when the windows tried did not hold it.

    A window is a subquery, the listing's rows in order with ``LIMIT``, so its plan is the
    listing's own whatever the statistics hold; the query is tested on the subquery's rows,
    which the planner cannot push into it, and the page is read from them (not by id: for a
    list of ids the planner without statistics guessed a quarter of the table and read all of
    it). Every row of a window comes before every row after it, so the first ``limit + 1`` hits
    of a window are the page's, exactly; and a window holding fewer rows than its size reached
    the end of the listing, so its hits are all there are.
    """
    ordering, source, query, limit = pg.ordering, pg.source, pg.query, pg.limit
    listing = in_order(after_cursor(pg.stmt, ordering, pg.cursor), ordering)
    if not set(source.columns) <= set(listing.selected_columns.keys()):
        return None  # the text is not among the listing's columns under its own name
    entity = _selected_entity(pg.stmt)

    def window_page(size: int) -> list[Any]:
        window = listing.limit(size).subquery(_WINDOW)
        keys = [window.c[key.key] for key in ordering.keys]
        hits = sa.select(aliased(entity, window)) if entity is not None else sa.select(*window.c)
        page = (
            hits.where(pg_holds_words(source, query, _WINDOW), pg_match(source, query, _WINDOW))
            .order_by(*(key.desc() if ordering.descending else key.asc() for key in keys))
            .limit(limit + 1)
        )
        return list(pg.fetch(page))

    def window_rows(size: int) -> int:
        window = listing.with_only_columns(*ordering.keys).limit(size).subquery()
        counted = sa.select(sa.func.count()).select_from(window)
        return int(pg.connection.execute(counted).scalar_one())

    size = search.PG_WINDOW_ROWS
    while True:
        rows = window_page(size)
        if not rows:
            return None  # rarer than one row in ``size``: the GIN index finds them sooner
        if len(rows) > limit or window_rows(size) < size:
            return page_of(rows, ordering, limit, pg.cursor)
        most = search.PG_WINDOW_MOST_ROWS
        wanted = math.ceil(PG_WINDOW_MARGIN * (limit + 1) * size / len(rows))
        if size >= most or wanted > most:
            # Too rare for the largest window, margin included: the index, as above. (Tried
            # when it might just hold the page, it was read in vain as often as not: two
            # hits in 1,000 rows, then 32,000 rows holding 20 more, 100-190 ms under load.)
            return None
        size = min(most, max(size * WINDOW_GROWTH_LEAST, wanted))


def _selected_entity(stmt: Select[Any]) -> Any | None:
    """The entity ``stmt`` selects whole (its rows are objects), else None (columns, or one
    column of an entity)."""
    descriptions = stmt.column_descriptions
    entity = descriptions[0]["entity"] if len(descriptions) == 1 else None
    return entity if entity is not None and descriptions[0]["expr"] is entity else None


def _windowed(
    connection: Connection,
    stmt: Select[Any],
    ordering: Ordering,
    id_column: InstrumentedAttribute[int],
    hits: Select[tuple[int]],
    limit: int,
    cursor: str | None,
    fetch: Fetch,
) -> Page[Any] | None:
    """The page read window by window (module docstring), or None when no window held it."""
    listing = after_cursor(stmt, ordering, cursor)
    key = id_column + 0  # not the primary key: SQLite keeps to the listing's own index
    rowid = hits.selected_columns[0]
    # Two statements: SQLite reads a lone min() or max() of the primary key at the index's end.
    first, final = (
        sa.select(sa.func.min(id_column)).scalar_subquery(),
        sa.select(sa.func.max(id_column)).scalar_subquery(),
    )
    lowest, highest = connection.execute(sa.select(first, final)).one()
    if lowest is None:
        return None
    widest = (highest - lowest + 1) * WINDOW_SPAN_SHARE
    keys = in_order(listing.with_only_columns(*ordering.keys), ordering)
    size = WINDOW_ROWS
    for _ in range(WINDOW_TRIES):
        last = connection.execute(keys.offset(size - 1).limit(1)).first()
        window = listing if last is None else listing.where(through_condition(ordering, last))
        bounds = window.with_only_columns(sa.func.min(key), sa.func.max(key))
        low, high = connection.execute(bounds).one()
        if low is not None and high - low + 1 > widest:
            return None
        rows: Sequence[Any] = []
        if low is not None:
            window_hits = hits.where(rowid >= low, rowid <= high)
            rows = fetch(in_order(window.where(key.in_(window_hits)), ordering).limit(limit + 1))
        if len(rows) > limit or last is None:
            return page_of(list(rows), ordering, limit, cursor)
        wanted = math.ceil(2 * (limit + 1) / max(len(rows), 1))
        size *= min(WINDOW_GROWTH_MOST, max(WINDOW_GROWTH_LEAST, wanted))
    return None
