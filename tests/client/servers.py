"""``swarm-director serve`` for the client tests (:class:`tests.serving.ServeProcess` with the
client tests' token and short stream intervals): started on a fixed port, so a test can kill
one and bring it back where its clients expect it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tests.serving import ServeProcess as _ServeProcess
from tests.serving import serve_env

TOKEN = "client-test-token"
#: Short intervals so streams notice rows and send heartbeats quickly in tests.
SERVER_ENV = {
    "SWARM_API_TOKEN": TOKEN,
    "SWARM_STREAM_POLL_S": "0.1",
    "SWARM_STREAM_HEARTBEAT_S": "0.5",
    "SWARM_STREAM_MAX_CLIENTS": "6",
}
_SETTINGS = frozenset({"DATABASE_URL", *SERVER_ENV, "SWARM_MAX_REQUEST_BYTES", "SWARM_ENV"})


class ServeProcess(_ServeProcess):
    """One ``serve`` for a client test; :meth:`start` again after :meth:`kill`."""

    def __init__(
        self,
        database_url: str,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        threads: int = 16,
    ) -> None:
        super().__init__(
            database_url,
            log_dir,
            env=serve_env({**SERVER_ENV, **(env or {})}, drop=_SETTINGS),
            workers=workers,
            threads=threads,
        )
