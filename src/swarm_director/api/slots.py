"""Slots of long responses (log streams, exports): each holds a server thread for minutes,
so a process serves a bounded number at once, and one caller cannot take them all."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from flask import Response, request

from swarm_director.web.auth import Principal
from swarm_director.web.errors import error_response


@dataclass(frozen=True)
class SlotKind:
    """How the refusals of one kind of long response read: ``noun`` names its settings
    (``SWARM_<NOUN>_MAX_CLIENTS``, ``..._PER_KEY``) and ``details`` keys (``max_<noun>s``,
    ``max_<noun>s_per_key``); ``held`` is what an owner holds, ``advice`` what it should
    do at its limit; ``Retry-After`` is ``retry_full_s`` when the process is full, else
    ``retry_own_s``."""

    noun: str
    held: str
    advice: str
    retry_full_s: int
    retry_own_s: int


@dataclass
class Slots:
    """The open long responses of one kind (log streams, exports) in this process, in all and
    per owner (see :func:`owner_of`)."""

    total: int
    per_owner: int
    kind: SlotKind
    open: int = 0
    by_owner: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, owner: str) -> str | None:
        """Take a slot for ``owner``: None when taken, else the limit that is reached
        (``owner`` or ``process``)."""
        with self.lock:
            if self.by_owner[owner] >= self.per_owner:
                return "owner"
            if self.open >= self.total:
                return "process"
            self.open += 1
            self.by_owner[owner] += 1
            return None

    def give_back(self, owner: str) -> None:
        with self.lock:
            self.open -= 1
            self.by_owner[owner] -= 1
            if self.by_owner[owner] <= 0:
                del self.by_owner[owner]

    def refusal(self, full: str, who: str) -> Response:
        """The answer when :meth:`take` says ``full``: 429 when ``who`` (see
        :func:`owner_of`) holds its limit, else 503; both with ``Retry-After``."""
        kind = self.kind
        setting = f"SWARM_{kind.noun.upper()}_MAX"
        if full == "owner":
            status, code, retry_after = 429, "too_many_requests", kind.retry_own_s
            message = (
                f"The {who} already has {self.per_owner} {kind.held} on this server process, "
                f"its limit ({setting}_PER_KEY); {kind.advice}."
            )
            details = {f"max_{kind.noun}s_per_key": self.per_owner}
        else:
            status, code, retry_after = 503, "unavailable", kind.retry_full_s
            message = (
                f"Too many {kind.held} on this server process ({setting}_CLIENTS="
                f"{self.total}); try again shortly."
            )
            details = {f"max_{kind.noun}s": self.total}
        response = error_response(status, code, message, details)
        response.headers["Retry-After"] = str(retry_after)
        return response


def owner_of(principal: Principal | None) -> tuple[str, str]:
    """Whose slots a request's stream or export counts against, and how an error names
    them: the API key (the bootstrap token is one key), else the address (console sessions,
    no auth)."""
    if principal is not None and not principal.console:
        return f"key:{principal.key_id or principal.name}", f"API key {principal.name!r}"
    address = request.remote_addr or "unknown"
    return f"address:{address}", f"address {address}"
