"""Search queries: what users type, turned into each engine's query syntax, safely.

Users type words and "quoted phrases"; a row matches when it holds every word and every
phrase (words in that order, adjacent). Nothing typed reaches an engine's query language as
syntax: each term is reduced to its words (runs of letters and digits, the tokens the indexes
hold, see :mod:`swarm_director.models.fulltext`), and this module writes the query from those,
every word quoted. ``AND``, ``OR``, ``NEAR(``, ``*`` and ``col:term`` are therefore plain
words or separators, never operators, and no input can make the engine raise a syntax error.
Text without a single word, or longer than the limits, is a ValidationError naming ``q``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Select
from sqlalchemy.orm import InstrumentedAttribute

from swarm_director.errors import ValidationError
from swarm_director.models.fulltext import PG_CONFIG, FullTextSource
from swarm_director.schemas.common import MAX_SEARCH_CHARS

#: Most words one query may hold (each is one more index lookup).
MAX_SEARCH_WORDS = 32
#: On SQLite, a query with at most this many hits reads them by id and sorts them; one with
#: more walks the listing's own index in order and keeps the rows among the hits (see
#: :mod:`swarm_director.store.search_pages`).
SQLITE_SORTED_HITS = 5_000
#: On PostgreSQL, a query whose page no window of the listing held reads the sort keys of at
#: most this many hits and the page's rows by their keys; a query with more is left to the
#: planner (the ordered walk; see :mod:`swarm_director.store.search_pages`).
PG_SORTED_HITS = 50_000
#: On PostgreSQL, a search first looks for its page among this many rows of the listing (its
#: newest, or the next after the cursor), checked row by row: a plan that needs no
#: statistics, and a page at once for a word frequent among recent rows (see
#: :mod:`swarm_director.store.search_pages`).
PG_WINDOW_ROWS = 1_000
#: The largest window a PostgreSQL search tries when the first one showed hits, but too few.
PG_WINDOW_MOST_ROWS = 32_000
# A quoted phrase (an unclosed quote runs to the end), or a run of anything else but spaces.
_TERM = re.compile(r'"([^"]*)"?|([^\s"]+)')
# The indexes' tokens: letters and digits (not the underscore, which \w includes).
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed query: phrases of one or more words, all of which must match. Case is left
    to the engines, which fold queries and documents alike."""

    phrases: tuple[tuple[str, ...], ...]

    def fts5(self) -> str:
        """The FTS5 MATCH expression: each phrase a quoted string (words hold no quotes)."""
        return " ".join('"' + " ".join(words) + '"' for words in self.phrases)

    def tsquery(self) -> str:
        """The PostgreSQL ``to_tsquery`` text: quoted lexemes, ``<->`` inside a phrase."""
        return " & ".join(" <-> ".join(f"'{w}'" for w in words) for words in self.phrases)


def _invalid(problem: str) -> ValidationError:
    return ValidationError(f"invalid search query: {problem}", details={"fields": {"q": problem}})


def parse_query(text: str) -> SearchQuery:
    """``text`` as a :class:`SearchQuery`. A term that is not a quoted phrase but holds
    punctuation (``col:term``, ``e-mail``) is a phrase of its words, as it is in the index.

    Raises ValidationError (field ``q``) for text that is not a string, longer than
    MAX_SEARCH_CHARS, holding NUL, or with no word or more than MAX_SEARCH_WORDS words.
    """
    if not isinstance(text, str):
        raise _invalid("must be a string")
    if len(text) > MAX_SEARCH_CHARS:
        raise _invalid(f"at most {MAX_SEARCH_CHARS} characters, not {len(text)}")
    if "\x00" in text:
        raise _invalid("may not contain the NUL character")
    phrases = []
    for quoted, bare in _TERM.findall(text):
        words = tuple(_WORD.findall(quoted or bare))
        if words:
            phrases.append(words)
    count = sum(len(words) for words in phrases)
    if count == 0:
        raise _invalid("holds no word to search for (letters or digits)")
    if count > MAX_SEARCH_WORDS:
        raise _invalid(f"at most {MAX_SEARCH_WORDS} words, not {count}")
    # The same phrase twice narrows nothing; keep the first of each.
    return SearchQuery(tuple(dict.fromkeys(phrases)))


def sqlite_hits(source: FullTextSource, query: SearchQuery) -> Select[tuple[int]]:
    """SQLite: the rowids of ``source``'s FTS5 table that match ``query``."""
    fts = sa.table(source.fts_table, sa.column("rowid"))
    match = sa.literal_column(source.fts_table).bool_op("MATCH")(query.fts5())
    return sa.select(fts.c.rowid).where(match)


def sqlite_has_many_hits(connection: Connection, hits: Select[tuple[int]]) -> bool:
    """Whether ``hits`` (of :func:`sqlite_hits`) holds more than SQLITE_SORTED_HITS rowids:
    SQLite cannot tell a rare word from a common one but by counting (a few milliseconds)."""
    counted = sa.select(sa.func.count()).select_from(hits.limit(SQLITE_SORTED_HITS + 1).subquery())
    return (connection.execute(counted).scalar() or 0) > SQLITE_SORTED_HITS


def pg_match(
    source: FullTextSource, query: SearchQuery, relation: str | None = None
) -> ColumnElement[bool]:
    """PostgreSQL: the WHERE condition selecting the rows of ``source`` that match ``query``:
    the index's own expression ``@@`` the query, written with literals so that the planner
    recognises the GIN index. ``relation``: the condition on the columns of that subquery
    (computed row by row, no index)."""
    document: ColumnElement[str] = sa.literal_column(
        source.pg_document(qualify=True, relation=relation)
    )
    tsquery = sa.func.to_tsquery(sa.literal_column(f"'{PG_CONFIG}'"), query.tsquery())
    match: ColumnElement[bool] = document.bool_op("@@")(tsquery)
    return match


def pg_holds_words(
    source: FullTextSource, query: SearchQuery, relation: str
) -> ColumnElement[bool]:
    """PostgreSQL: a condition every row matching ``query`` meets, on the columns of the
    subquery ``relation``: the lower-cased text holds each word. Some twenty times cheaper per
    row than building the row's ``tsvector`` (``regexp_replace`` first), so a search that
    checks rows one by one tests this first (docs/benchmarks.md, "Reads under live ingest").

    It holds for every match: a token of the document is a run of the text's letters and
    digits, lower-cased by the same ``lower()`` as the text here, one character at a time."""
    text = sa.func.lower(sa.literal_column(source.pg_text(relation)))
    words = sorted({word for phrase in query.phrases for word in phrase})
    return sa.and_(*(sa.func.strpos(text, sa.func.lower(word)) > 0 for word in words))


#: What :func:`plain_plans` turns off, and to what.
_PLAIN_PLAN_SETTINGS = (("max_parallel_workers_per_gather", "0"), ("jit", "off"))


@contextmanager
def plain_plans(connection: Connection) -> Iterator[None]:
    """PostgreSQL: no parallel workers and no JIT compilation for the statements run inside.

    For a word outside the index statistics' most common elements the planner guesses
    thousands of hits per partition, and so a costly query: it fetched a handful of hits with
    parallel workers and compiled it with JIT first (``jit`` is on by default), many times the
    cost of the index scans themselves (docs/benchmarks.md, "Full-text search"). Each new word
    is a new statement (the words are literals), so no cached plan spares the cost. Inside a
    transaction the settings are ``SET LOCAL`` (gone at its end); on an autocommit connection
    they are set and reset.
    """
    autocommit = bool(getattr(connection.connection.driver_connection, "autocommit", False))
    scope = "SET" if autocommit else "SET LOCAL"
    # One round trip for all of them (statements without parameters may be joined): under
    # load each round trip is a wait for the server's turn on a core.
    connection.exec_driver_sql("; ".join(f"{scope} {n} = {v}" for n, v in _PLAIN_PLAN_SETTINGS))
    if not autocommit:
        yield
        return
    try:
        yield
    finally:
        connection.exec_driver_sql("; ".join(f"RESET {n}" for n, _v in _PLAIN_PLAN_SETTINGS))


def live_matching(
    source: FullTextSource, id_column: InstrumentedAttribute[int], text: str, dialect: str
) -> ColumnElement[bool]:
    """The search condition for a statement re-run as rows arrive (the live tail): no plan
    choice (:mod:`swarm_director.store.search_pages`) and nothing fetched up front, so rows
    stored later match too."""
    query = parse_query(text)
    if dialect == "sqlite":
        condition: ColumnElement[bool] = id_column.in_(sqlite_hits(source, query))
        return condition
    return pg_match(source, query)
