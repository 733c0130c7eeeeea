"""Slots of long responses (log streams, exports): each holds a server thread for minutes,
so a process serves a bounded number at once, and one caller cannot take them all."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from flask import request

from swarm_director.web.auth import Principal


@dataclass
class Slots:
    """The open long responses of one kind (log streams, exports) in this process, in all and
    per owner (see :func:`owner_of`)."""

    total: int
    per_owner: int
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


def owner_of(principal: Principal | None) -> tuple[str, str]:
    """Whose slots a request's stream or export counts against, and how an error names
    them: the API key (the bootstrap token is one key), else the address (console sessions,
    no auth)."""
    if principal is not None and not principal.console:
        return f"key:{principal.key_id or principal.name}", f"API key {principal.name!r}"
    address = request.remote_addr or "unknown"
    return f"address:{address}", f"address {address}"
