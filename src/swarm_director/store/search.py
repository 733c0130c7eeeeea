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
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from swarm_director.errors import ValidationError
from swarm_director.models.fulltext import PG_CONFIG, FullTextSource
from swarm_director.schemas.common import MAX_SEARCH_CHARS

#: Most words one query may hold (each is one more index lookup).
MAX_SEARCH_WORDS = 32
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


def matching(
    source: FullTextSource,
    id_column: InstrumentedAttribute[int],
    text: str,
    dialect: str,
) -> ColumnElement[bool]:
    """The WHERE condition selecting the rows of ``source`` that match ``text`` (see
    :func:`parse_query`, whose ValidationError it raises), for a statement on ``dialect``.

    SQLite: ``id IN (rowids the FTS5 table matches)``. PostgreSQL: the index's own expression
    ``@@`` the query, written with literals so that the planner recognises the GIN index.
    """
    query = parse_query(text)
    if dialect == "sqlite":
        fts = sa.table(source.fts_table, sa.column("rowid"))
        match = sa.literal_column(source.fts_table).bool_op("MATCH")(query.fts5())
        condition: ColumnElement[bool] = id_column.in_(sa.select(fts.c.rowid).where(match))
        return condition
    document: ColumnElement[str] = sa.literal_column(source.pg_document(qualify=True))
    tsquery = sa.func.to_tsquery(sa.literal_column(f"'{PG_CONFIG}'"), query.tsquery())
    return document.bool_op("@@")(tsquery)
