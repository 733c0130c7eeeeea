"""Who is acting: the actor and request id that history rows name.

The front door sets them once per unit of work — the API per request (the key's name), the CLI
per command (``cli:<user>@<host>``), a maintenance job for its run (``system:<job>``) — and
every change the store makes meanwhile is attributed to them. Code that calls the store
directly without saying who it is gets ``local:<user>@<host>``.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import cache

#: How long an actor's name may be (the history column's width).
MAX_ACTOR = 200


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes the changes of the current unit of work, and the request it serves."""

    name: str
    request_id: str | None = None


_CURRENT: ContextVar[Actor | None] = ContextVar("swarm_director_actor", default=None)


@cache
def _user_at_host() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def cli_actor() -> str:
    """``cli:<user>@<host>``: the actor of a command-line change."""
    return f"cli:{_user_at_host()}"


def system_actor(job: str) -> str:
    """``system:<job>``: the actor of a change no person asked for (lease expiry, retention)."""
    return f"system:{job}"


def current_actor() -> Actor:
    """The actor set by :func:`acting_as`, else ``local:<user>@<host>``."""
    return _CURRENT.get() or Actor(f"local:{_user_at_host()}")


def begin_acting(name: str, request_id: str | None = None) -> Token[Actor | None]:
    """Like :func:`acting_as` for a front door whose start and end are separate callbacks
    (a web request); hand the token to :func:`end_acting`."""
    return _CURRENT.set(Actor(name[:MAX_ACTOR], request_id))


def end_acting(token: Token[Actor | None]) -> None:
    """Undo the :func:`begin_acting` that gave ``token``."""
    _CURRENT.reset(token)


@contextmanager
def acting_as(name: str, request_id: str | None = None) -> Iterator[Actor]:
    """Attribute the store's changes inside the block to ``name`` (and ``request_id``)."""
    actor = Actor(name[:MAX_ACTOR], request_id)
    token = _CURRENT.set(actor)
    try:
        yield actor
    finally:
        _CURRENT.reset(token)
