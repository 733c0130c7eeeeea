"""What free-form JSON may cost, measured on its encoded text before anything is built.

A row's ``metadata`` and an agent's ``config`` are stored and shown as sent, so their size is
the client's choice. Parsed, CPython spends 60 to 100 bytes per JSON value whatever its text
(``[{}, {}, ...]``: 3 bytes each), so 15 MB of it took a worker from 118 to 898 MiB. Two
bounds keep what a request or a row costs in proportion:

* per free-form value (:class:`JSONLimits`): its compact JSON bytes and how many values it
  holds, checked by the schemas (:data:`~swarm_director.schemas.common.JSONObject`) and by
  bulk ingest on the text it encodes anyway, so every path is bounded: the API and agents
  calling the store in-process;
* per request body: how many JSON values it holds, counted by the API's request guard on the
  raw bytes (:func:`count_values`), so a hostile body is refused before ``json.loads`` builds
  a single object.

The limits are settings (``SWARM_MAX_JSON_BYTES``, ``SWARM_MAX_JSON_ITEMS``,
``SWARM_MAX_REQUEST_VALUES``). A server applies its own around each request
(:func:`applied`); other callers of the store get the settings' defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

from pydantic_core import PydanticCustomError

#: A JSON string with its escapes (unrolled: one pass, no backtracking per character).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]')
_SPACE = b" \t\r\n"


@dataclass(frozen=True)
class JSONLimits:
    """Bounds on one free-form JSON value (a ``metadata`` or ``config`` object)."""

    max_bytes: int
    """Its compact JSON text (UTF-8) may be this long."""
    max_items: int
    """It may hold this many values (nested ones included, the object itself and keys not)."""

    def check_text(self, text: bytes) -> None:
        """Raises a pydantic error naming the limit when the encoded value ``text`` passes one."""
        self.check_bytes(len(text))
        # A value takes at least two bytes of text (``0,``), so a short text holds few.
        if len(text) > 2 * self.max_items:
            self.check_items(count_values(text) - 1)

    def check_bytes(self, size: int) -> None:
        """Raises a pydantic error naming the limit when ``size`` bytes of JSON are too many."""
        if size > self.max_bytes:
            raise PydanticCustomError(
                "json_too_large",
                "is {size} bytes as JSON; the limit is {limit} bytes (SWARM_MAX_JSON_BYTES)",
                {"size": size, "limit": self.max_bytes},
            )

    def check_items(self, items: int) -> None:
        """Raises a pydantic error naming the limit when ``items`` values are too many."""
        if items > self.max_items:
            raise PydanticCustomError(
                "json_too_many_values",
                "holds {items} JSON values; the limit is {limit} (SWARM_MAX_JSON_ITEMS)",
                {"items": items, "limit": self.max_items},
            )


#: The defaults of SWARM_MAX_JSON_BYTES and SWARM_MAX_JSON_ITEMS: what applies outside a
#: server's request. Written out rather than read from ``config.Settings``: the schemas ship
#: in the client-only distribution, which has no settings (a test compares the two).
DEFAULT_LIMITS = JSONLimits(max_bytes=64 * 1024, max_items=10_000)
_CURRENT: ContextVar[JSONLimits] = ContextVar("json_limits", default=DEFAULT_LIMITS)


def current() -> JSONLimits:
    """The limits that apply here: the server's within a request, else the defaults."""
    return _CURRENT.get()


def set_current(limits: JSONLimits) -> Token[JSONLimits]:
    """Validate with ``limits`` from now on in this context; :func:`reset_current` with the
    token returned ends it (a server does so around each request)."""
    return _CURRENT.set(limits)


def reset_current(token: Token[JSONLimits]) -> None:
    """Back to the limits that applied before :func:`set_current` returned ``token``."""
    _CURRENT.reset(token)


@contextmanager
def applied(limits: JSONLimits) -> Iterator[None]:
    """Validate with ``limits`` inside the block (e.g. an agent with its own settings)."""
    token = set_current(limits)
    try:
        yield
    finally:
        reset_current(token)


def count_values(text: bytes) -> int:
    """How many JSON values the JSON text ``text`` holds: every string, number, true, false,
    null, array and object, the outermost included; object keys are not values.

    Counted on the bytes without parsing (C-speed scans, at most two copies of the text): a
    container of n values has n - 1 commas, so values = commas + non-empty containers + 1.
    Text that is not JSON gets some number; the parser refuses it afterwards.
    """
    commas, openers = _structure(text)
    if not openers:
        return 1 if text.strip(_SPACE) else 0
    tight = _STRING.sub(b'""', text).translate(None, _SPACE)
    empty = tight.count(b"[]") + tight.count(b"{}")
    return commas + openers - empty + 1


def values_over(text: bytes, limit: int) -> int | None:
    """None when the JSON text ``text`` holds at most ``limit`` values (as counted by
    :func:`count_values`), else a number above ``limit`` it holds at least.

    Cheaper than counting: commas and brackets alone decide but for texts near the limit, and
    a text of few strings (the shape of a flood of tiny values) is not copied at all.
    """
    if len(text) <= limit:  # every value takes at least one byte
        return None
    commas, openers = _structure(text)
    if commas + 1 > limit:  # each comma separates two values
        return commas + 1
    if commas + openers + 1 <= limit:  # at most one value per comma and per container
        return None
    found = count_values(text)
    return found if found > limit else None


#: Up to this many strings, structure is counted on the text itself (no copy), minus what the
#: strings hold; with more, on a copy with every string emptied (strings make it shorter).
_FEW_STRINGS = 1000


def _structure(text: bytes) -> tuple[int, int]:
    """(commas, opening brackets) outside the strings of ``text``."""
    if text.count(b'"') > 2 * _FEW_STRINGS:
        bare = _STRING.sub(b'""', text)
        return bare.count(b","), bare.count(b"[") + bare.count(b"{")
    commas = text.count(b",")
    openers = text.count(b"[") + text.count(b"{")
    for match in _STRING.finditer(text):
        start, end = match.span()
        commas -= text.count(b",", start, end)
        openers -= text.count(b"[", start, end) + text.count(b"{", start, end)
    return commas, openers


def where_count_passes(text: bytes, limit: int) -> tuple[int | str, ...]:
    """The path (keys and indexes) of the container being read when the JSON text ``text``
    passes ``limit`` values, for an error message; ``()`` for the top level.

    A tokenizer in Python: it reads about ``2 * limit`` tokens, so call it only to explain a
    refusal, never on a body that will be accepted.
    """
    path: list[int | str] = []
    count = 0
    key = b'""'
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first == 0x22:  # "
            key = token
        elif first == 0x3A:  # ":" after a key
            if path:
                path[-1] = key[1:-1].decode("utf-8", "replace")
        elif first == 0x2C:  # ","
            count += 1
            if path and isinstance(path[-1], int):
                path[-1] += 1
        elif first in (0x5B, 0x7B):  # "[" or "{"
            count += 1
            if count > limit:
                break
            path.append(0 if first == 0x5B else "")
        elif path:  # "]" or "}"
            path.pop()
        if count > limit:
            break
    # The last entry is the place in the container being read: the container is the one before.
    return tuple(path[:-1]) if count > limit else ()
