"""Processes the reliability tests start and stop: workers, a real server, a TCP proxy
(the server and the helpers it shares with other suites are in :mod:`tests.serving`).

Worker processes come from a multiprocessing *forkserver* that has imported the store once, so
starting one costs a fork instead of the seconds a fresh interpreter needs on a loaded machine.
Every wait here is bounded by a deadline.
"""

from __future__ import annotations

import multiprocessing
import selectors
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from multiprocessing.context import ForkServerContext
from pathlib import Path

from tests.serving import (
    ServeProcess,
    children_of,
    free_port,
    request,
    serve_env,
    wait_for_port,
)

_context: ForkServerContext | None = None


def worker_context() -> ForkServerContext:
    """A forkserver context whose server has imported the store and the worker code."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["tests.reliability.workers"])
    return _context


#: Settings the tests pass explicitly; never inherited from the developer's environment.
_SERVER_SETTINGS = frozenset({"DATABASE_URL", "SWARM_API_TOKEN", "SWARM_MAX_REQUEST_BYTES"})


class Server(ServeProcess):
    """``swarm-director serve`` (:class:`tests.serving.ServeProcess`) that also tracks its
    workers: :meth:`start` waits until every worker has booted, :meth:`wait_serving` until a
    respawned one serves again."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        super().__init__(
            database_url,
            log_path.parent,
            env=serve_env(env, drop=_SERVER_SETTINGS),
            workers=workers,
            extra_args=extra_args,
            name=log_path.stem,
        )

    def start(self, deadline_s: float = 90.0) -> Server:
        started = time.monotonic()
        process = self.launch()
        try:
            wait_for_port(self.port, deadline_s, process)
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
        assert self.process is not None
        return children_of(self.process.pid)

    def wait_workers(self, deadline_s: float = 60.0) -> list[int]:
        """Until all workers run and answer /api/health (a respawned one takes seconds)."""
        assert self.process is not None
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

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        return super().stop(sig, timeout)


def _booted(log_path: Path, pid: int) -> bool:
    # gunicorn writes "Booting worker with pid: N" before the worker loads the app; the app is
    # loaded when the worker's module imports finish, which we see as a listening worker. The
    # log line is the cheap signal; requests before the app loads simply wait in the backlog.
    return f"Booting worker with pid: {pid}" in log_path.read_text(errors="replace")


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
