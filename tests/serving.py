"""``swarm-director serve`` in a subprocess, for the tests that need the real server.

One helper starts it on a free loopback port, waits until it answers (or says why it did not),
and stops it: the API, client, console and reliability tests all use :class:`ServeProcess`
(the reliability suite's ``procs.Server`` adds worker tracking on top). Every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

#: The console script, run with this interpreter.
SWARM_DIRECTOR = [sys.executable, "-c", "from swarm_director.cli.main import cli; cli()"]
ROOT = Path(__file__).resolve().parents[1]


#: Where the ports the tests' servers listen on are chosen: below the ephemeral range.
PORTS_FROM = 20_000


def ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (Linux's setting; else its default)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32_768, 61_000)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the ephemeral
    range: a server the test stops and starts again must find its port free. A port the
    kernel hands out (``bind`` to port 0) can meanwhile be taken by any outgoing
    connection, even by a client connecting to that very port while its server is down (a
    TCP self-connect): a restart then failed with "Address already in use"."""
    low = ephemeral_ports().start
    candidates = list(range(PORTS_FROM, low)) if low > PORTS_FROM + 1000 else list(range(1024, low))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")


def wait_for_port(
    port: int, deadline_s: float, process: subprocess.Popen[Any] | None = None
) -> None:
    """Until something accepts connections on ``port``; fails on timeout or process exit."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    """Pids of the live child processes of ``pid`` (from /proc)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces; split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """One HTTP request to 127.0.0.1:``port``; returns (status, parsed JSON or None)."""
    sent = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None
    finally:
        conn.close()


def serve_env(
    overrides: Mapping[str, str] | None = None,
    *,
    drop: Collection[str] = (),
    drop_prefix: str | None = None,
) -> dict[str, str]:
    """The environment of a server: this process's, without ``drop`` (names the test sets
    itself, never inherited from the developer's shell) and names starting with
    ``drop_prefix``, with this checkout's ``src`` and the repository on PYTHONPATH (so a
    suite run from another checkout than the installed one serves its own code) and
    ``overrides`` on top."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not (drop_prefix is not None and k.startswith(drop_prefix))
    }
    path = os.pathsep.join((str(ROOT / "src"), str(ROOT)))
    return {**inherited, "PYTHONPATH": path, **(overrides or {})}


class ServeProcess:
    """``swarm-director serve`` on 127.0.0.1:``port``, run in ``log_dir`` with its output in a
    log file there (one per start); :meth:`start` again after :meth:`kill` or :meth:`stop`
    brings it back on the same port. Usable as a context manager (start, then stop)."""

    def __init__(
        self,
        database_url: str | None,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        threads: int | None = None,
        extra_args: tuple[str, ...] = (),
        name: str = "serve",
    ) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.workers, self.threads = workers, threads
        self.extra_args = extra_args
        self.env = dict(env) if env is not None else serve_env()
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        """The log file of the latest start."""
        return self.log_dir / f"{self.name}-{self.port}-{self.starts}.log"

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it."""
        self.starts += 1
        args = ["serve", "--port", str(self.port), "--workers", str(self.workers)]
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        if self.database_url is not None:
            args += ["--database-url", self.database_url]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*SWARM_DIRECTOR, *args, *self.extra_args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_dir,
            )
        return self.process

    def start(self, deadline_s: float = 90.0) -> ServeProcess:
        """Launch, then wait until ``/api/health`` answers 200; RuntimeError with the server's
        output when it exits or the deadline passes first."""
        process = self.launch()
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                if request(self.port, "GET", "/api/health", timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server did not start: {self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        """What the latest start wrote to stdout and stderr."""
        path = self.log_path
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
        """Stop gracefully; returns the exit status (kills after ``timeout``: -9)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
