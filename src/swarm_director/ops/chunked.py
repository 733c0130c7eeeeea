"""File objects over a stream of sealed chunks: the part both encrypted formats share (the
legacy ``SDBKENC1`` one in :mod:`.crypto` and age in :mod:`.age`). A subclass seals or opens
one chunk; these classes do the buffering, so memory use is one chunk whatever the file size.
"""

from __future__ import annotations

from typing import IO


class ChunkedWriter:
    """A write-only file object that hands ``chunk_size`` bytes at a time to :meth:`_emit`,
    and the rest (the only chunk that may be short) to it on :meth:`close`. ``sink`` stays
    open."""

    def __init__(self, sink: IO[bytes], chunk_size: int) -> None:
        self._sink = sink
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self._closed = False

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        # At least one byte stays back: only the whole stream's last chunk may be short, and
        # it is empty only when the stream is.
        while len(self._buffer) > self._chunk_size:
            self._emit(bytes(self._buffer[: self._chunk_size]), final=False)
            del self._buffer[: self._chunk_size]
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        if not self._closed:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True
            self._sink.flush()

    def _emit(self, plaintext: bytes, *, final: bool) -> None:
        """Seal chunk number ``self._index`` into the sink and count it."""
        raise NotImplementedError


class ChunkedReader:
    """A read-only file object over the chunks :meth:`_next_chunk` opens one by one (it sets
    ``self._done`` with the last one)."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._index = 0
        self._plain = b""
        self._offset = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size < 0 or len(out) < size:
            if self._offset >= len(self._plain):
                if self._done:
                    break
                self._plain = self._next_chunk()
                self._offset = 0
                continue
            take = len(self._plain) - self._offset if size < 0 else size - len(out)
            out += self._plain[self._offset : self._offset + take]
            self._offset += take
        return bytes(out)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._source.close()

    def _next_chunk(self) -> bytes:
        """The plaintext of the next chunk (raising on damage)."""
        raise NotImplementedError
