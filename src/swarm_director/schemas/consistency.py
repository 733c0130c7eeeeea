"""Read-your-writes across replicas: the commit position a write's response carries and a
later read sends back, in PostgreSQL's LSN notation (``16/B374D848``).

The server and the client share these: the server writes the header on every successful
write (when it has replicas), the client keeps the highest one it saw and sends it on every
request; a read that carries it is served only by a server that has replayed it.
"""

from __future__ import annotations

import re

#: Response header of a write, and request header of a later read.
POSITION_HEADER = "X-Swarm-LSN"
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def parse_position(text: str) -> int:
    """The position written as ``HIGH/LOW`` (hex, as PostgreSQL prints an LSN) as a number.
    Raises ValueError for anything else."""
    match = _LSN.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{POSITION_HEADER} must be a commit position like 16/B374D848 (from an "
            "earlier write's response)"
        )
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_position(position: int) -> str:
    """A position as PostgreSQL prints an LSN."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
