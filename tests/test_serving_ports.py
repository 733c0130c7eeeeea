"""The tests' servers listen on ports no outgoing connection can be given, so a server that a
test stops and starts again finds its port free (a restart once failed in CI with "Address
already in use": a client retrying against the stopped server can be handed that very port)."""

from __future__ import annotations

import socket

from tests.serving import ephemeral_ports, free_port


def test_free_ports_are_outside_the_ephemeral_range_and_free() -> None:
    ephemeral = ephemeral_ports()
    for _ in range(50):
        port = free_port()
        assert port not in ephemeral
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # nothing holds it
