"""Reading Server-Sent Events (the wire format of the live log tail), incrementally.

Fed line by line (without the line break), :class:`EventParser` returns an :class:`Event`
when a blank line ends one; comments (``:`` lines, the server's heartbeats) return a
heartbeat marker so a follower can tell a quiet stream from a dead one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Event:
    """One event: its type (``message`` unless named), data lines joined by newlines, id."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    heartbeat: bool = False


@dataclass
class EventParser:
    """The SSE line protocol (WHATWG HTML, "event stream interpretation")."""

    last_id: str | None = None
    _event: str = "message"
    _data: list[str] = field(default_factory=list)
    _has_fields: bool = False

    def feed(self, line: str) -> Event | None:
        """Take one line; returns the event it completes, a heartbeat, or None."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return Event(event="heartbeat", heartbeat=True, id=self.last_id)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        self._has_fields = True
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or "message"
        elif name == "id" and "\x00" not in value:
            self.last_id = value
        return None

    def _dispatch(self) -> Event | None:
        if not self._has_fields:
            return None
        event = Event(self._event, "\n".join(self._data), self.last_id)
        self._event, self._data, self._has_fields = "message", [], False
        return event
