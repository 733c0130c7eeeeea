"""A one-request-per-connection HTTP proxy that can swallow responses.

``drop(n)`` makes it forward the next ``n`` matching requests to the server, wait for the
server's complete answer (so the server has committed), and then close the client's connection
without sending a byte of it: the client sees a lost response for a request that succeeded.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

from tests.serving import free_port


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


class LossyProxy:
    def __init__(self, upstream_port: int, match: bytes) -> None:
        self.upstream_port = upstream_port
        self.match = match
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dropped = 0
        self._to_drop = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def drop(self, count: int) -> None:
        with self._lock:
            self._to_drop = count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if not request:
                return
            with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as up:
                up.sendall(request)
                response = b""
                while chunk := up.recv(65536):
                    response += chunk
            with self._lock:
                drop = self._to_drop > 0 and request.startswith(self.match)
                if drop:
                    self._to_drop -= 1
                    self.dropped += 1
            if not drop:
                with suppress(OSError):
                    conn.sendall(response)
