"""``swarm-director serve`` subprocesses for the client tests: started on a fixed port, so a
test can kill one and bring it back where its clients expect it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from tests.reliability.procs import ROOT, SWARM_DIRECTOR, children_of, free_port, request

TOKEN = "client-test-token"
#: Short intervals so streams notice rows and send heartbeats quickly in tests.
SERVER_ENV = {
    "SWARM_API_TOKEN": TOKEN,
    "SWARM_STREAM_POLL_S": "0.1",
    "SWARM_STREAM_HEARTBEAT_S": "0.5",
    "SWARM_STREAM_MAX_CLIENTS": "6",
}
_SETTINGS = frozenset({"DATABASE_URL", *SERVER_ENV, "SWARM_MAX_REQUEST_BYTES", "SWARM_ENV"})


class ServeProcess:
    """One ``serve`` on 127.0.0.1:``port``; :meth:`start` again after :meth:`kill`."""

    def __init__(
        self,
        database_url: str,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        threads: int = 16,
    ) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.workers, self.threads = workers, threads
        inherited = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
        self.env = {**inherited, "PYTHONPATH": str(ROOT), **SERVER_ENV, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, deadline_s: float = 90.0) -> ServeProcess:
        self.starts += 1
        log = (self.log_dir / f"serve-{self.port}-{self.starts}.log").open("wb")
        args = ["serve", "--port", str(self.port), "--workers", str(self.workers)]
        args += ["--threads", str(self.threads), "--database-url", self.database_url]
        self.process = subprocess.Popen(
            [*SWARM_DIRECTOR, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.log_dir,
        )
        log.close()
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                if request(self.port, "GET", "/api/health", timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        path = self.log_dir / f"serve-{self.port}-{self.starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the master and its workers: no graceful anything."""
        if self.process is None or self.process.poll() is not None:
            return
        for pid in children_of(self.process.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Stop gracefully; returns the exit status (kills after ``timeout``)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9
