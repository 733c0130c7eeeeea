"""Processes the reliability tests start and stop: workers, a real server, a TCP proxy.

Worker processes come from a multiprocessing *forkserver* that has imported the store once, so
starting one costs a fork instead of the seconds a fresh interpreter needs on a loaded machine.
Every wait here is bounded by a deadline.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

#: The console script, run with this interpreter.
SWARM_DIRECTOR = [sys.executable, "-c", "from swarm_director.cli.main import cli; cli()"]
ROOT = Path(__file__).resolve().parents[2]

_context: ForkServerContext | None = None


def worker_context() -> ForkServerContext:
    """A forkserver context whose server has imported the store and the worker code."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["tests.reliability.workers"])
    return _context


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, deadline_s: float, process: subprocess.Popen[str] | None) -> None:
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


#: Settings the tests pass explicitly; never inherited from the developer's environment.
_SERVER_SETTINGS = frozenset({"DATABASE_URL", "SWARM_API_TOKEN", "SWARM_MAX_REQUEST_BYTES"})


class Server:
    """``swarm-director serve`` in a subprocess on a free loopback port."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.workers = workers
        self.log_path = log_path
        inherited = {k: v for k, v in os.environ.items() if k not in _SERVER_SETTINGS}
        full_env = {**inherited, "PYTHONPATH": str(ROOT), **(env or {})}
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                *SWARM_DIRECTOR,
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--database-url",
                database_url,
                *extra_args,
            ],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=log_path.parent,
        )

    def start(self, deadline_s: float = 90.0) -> Server:
        started = time.monotonic()
        try:
            wait_for_port(self.port, deadline_s, self.process)
            self.wait_workers(deadline_s)
            # Requests wait in the backlog until a worker has loaded the app: the first answer
            # tells how long a worker takes to boot on this machine right now.
            request(self.port, "GET", "/api/health", timeout=deadline_s)
        except Exception:
            self.stop()
            raise RuntimeError(f"server did not start: {self.output()}") from None
        self.boot_s: float = time.monotonic() - started
        self._first_seen = {pid: time.monotonic() - self.boot_s for pid in self.worker_pids()}
        return self

    def wait_serving(self, deadline_s: float = 120.0) -> list[int]:
        """Until every worker is up and has been alive for a boot time (so it has loaded the
        app and serves requests); returns their pids."""
        deadline = time.monotonic() + deadline_s
        while True:
            pids = self.wait_workers(deadline_s)
            now = time.monotonic()
            for pid in pids:
                self._first_seen.setdefault(pid, now)
            youngest = min(now - self._first_seen[pid] for pid in pids)
            if youngest >= self.boot_s:
                return pids
            if now > deadline:
                raise TimeoutError(f"workers {pids} not serving after {deadline_s} s")
            time.sleep(min(0.2, self.boot_s - youngest))

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid)

    def wait_workers(self, deadline_s: float = 60.0) -> list[int]:
        """Until all workers run and answer /api/health (a respawned one takes seconds)."""
        deadline = time.monotonic() + deadline_s
        while True:
            pids = self.worker_pids()
            if len(pids) >= self.workers and all(_booted(self.log_path, p) for p in pids):
                return pids
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers did not come up: {pids}")
            time.sleep(0.05)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for pid in self.worker_pids():
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def _booted(log_path: Path, pid: int) -> bool:
    # gunicorn writes "Booting worker with pid: N" before the worker loads the app; the app is
    # loaded when the worker's module imports finish, which we see as a listening worker. The
    # log line is the cheap signal; requests before the app loads simply wait in the backlog.
    return f"Booting worker with pid: {pid}" in log_path.read_text(errors="replace")


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


class TcpProxy:
    """A loopback TCP proxy to ``target`` that the test can take down and bring back.

    ``down()`` closes the listening socket and cuts every open connection (the database looks
    gone: connection refused); ``up()`` listens again on the same port.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def down(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.2):
                    source = key.fileobj
                    assert isinstance(source, socket.socket)
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (a, b):
                with suppress(OSError):
                    sock.close()


@contextmanager
def proxy_to(target: tuple[str, int]) -> Iterator[TcpProxy]:
    """A running :class:`TcpProxy`, taken down at the end."""
    proxy = TcpProxy(target)
    proxy.up()
    try:
        yield proxy
    finally:
        proxy.down()
