"""Read-your-writes for one client: the highest commit position its writes were answered
with, sent back on every later request (see :mod:`swarm_director.schemas.consistency`).

A server with read replicas serves a read that carries it only from a replica that has
replayed that position (else from the primary), so a client always reads what it wrote. The
position is per client object: two clients (or two processes) do not see each other's.
"""

from __future__ import annotations

import threading

import httpx

from swarm_director.schemas.consistency import POSITION_HEADER, format_position, parse_position


class PositionTracker:
    """The highest position seen so far; safe to share between threads and tasks."""

    def __init__(self) -> None:
        self._position: int | None = None
        self._lock = threading.Lock()

    @property
    def position(self) -> int | None:
        """The highest position seen (None: no write answered with one yet)."""
        return self._position

    def observe(self, response: httpx.Response) -> None:
        """Keep the response's position when it is higher than the one kept."""
        raw = response.headers.get(POSITION_HEADER)
        if raw is None:
            return
        try:
            position = parse_position(raw)
        except ValueError:  # not ours to judge: a proxy's header, say
            return
        with self._lock:
            if self._position is None or position > self._position:
                self._position = position

    def headers(self, headers: dict[str, str] | None = None) -> dict[str, str] | None:
        """``headers`` with the position added (unchanged when there is none yet)."""
        position = self._position
        if position is None:
            return headers
        return {**(headers or {}), POSITION_HEADER: format_position(position)}
