"""Backup and archive files on disk: streamed gzip/encryption layers and checksums.

Durable writes (:mod:`~swarm_director.ops.durable`) and the progress callbacks of long steps
(:mod:`~swarm_director.ops.progress`) live apart, without the encryption libraries, for
the commands that need only them (an export).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from swarm_director.ops.crypto import age
from swarm_director.ops.crypto.sdbkenc1 import DecryptingReader, EncryptingWriter
from swarm_director.ops.durable import fsync_file
from swarm_director.ops.errors import CorruptBackupError
from swarm_director.ops.progress import Progress
from swarm_director.private_files import open_private

if TYPE_CHECKING:
    from swarm_director.ops.crypto.age import Sink

BLOCK = 1 << 20
#: zlib's window bits for a gzip wrapper (header and CRC) around the deflate stream.
_GZIP = 16 + zlib.MAX_WBITS


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    """The file's SHA-256 in hex, read in blocks."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return digest.hexdigest()


class _HashingWriter:
    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sink.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.sink.flush()


def gzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The gzip stream of the concatenated ``chunks``, chunk by chunk (level 6, no name, no
    time stamp: the same input gives the same bytes)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, _GZIP)
    for chunk in chunks:
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()


def write_layers(
    sink: Sink,
    chunks: Iterable[bytes],
    *,
    key: bytes | None = None,
    recipients: Sequence[age.Recipient] = (),
) -> None:
    """Write ``chunks`` to ``sink``: age-encrypted to ``recipients`` when there are any, else
    in the legacy ``SDBKENC1`` format with ``key`` when given, else as they are."""
    if recipients:
        age.encrypt(chunks, sink, recipients)
    elif key is not None:
        writer = EncryptingWriter(sink, key)
        for chunk in chunks:
            writer.write(chunk)
        writer.close()
    else:
        for chunk in chunks:
            sink.write(chunk)


def _blocks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    total = path.stat().st_size
    done = 0
    with path.open("rb") as source:
        while block := source.read(BLOCK):
            yield block
            done += len(block)
            if progress:
                progress(done, total)


def encode(
    raw: Path,
    out: Path,
    *,
    compress: bool,
    key: bytes | None,
    recipients: Sequence[age.Recipient] = (),
    progress: Progress | None = None,
) -> tuple[str, int]:
    """Write ``raw`` to ``out`` through gzip and/or encryption; returns (sha256, bytes).

    With ``recipients`` the file is in the age format (the legacy ``key`` is then unused).
    Streams block by block, so memory use does not grow with the database.
    """
    blocks = _blocks(raw, progress)
    with open_private(out) as sink:
        hashing = _HashingWriter(sink)
        write_layers(
            hashing,
            gzip_chunks(blocks) if compress else blocks,
            key=key,
            recipients=recipients,
        )
        hashing.flush()
    return hashing.digest.hexdigest(), hashing.size


class _Gunzip:
    """A ``write`` file object that decompresses gzip members into ``sink``, at most
    :data:`BLOCK` bytes of output at a time (a gzip stream of zeros inflates a thousandfold)."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._inflate = zlib.decompressobj(_GZIP)
        self._fed = False

    def write(self, data: bytes) -> int:
        pending, more = bytes(data), False
        while pending or more:
            if self._inflate.eof:  # a further member: gzip allows them one after another
                self._inflate, self._fed = zlib.decompressobj(_GZIP), False
            out = self._inflate.decompress(pending, BLOCK)
            self._fed = self._fed or bool(pending)
            if out:
                self._sink.write(out)
            done = self._inflate.eof
            pending = self._inflate.unused_data if done else self._inflate.unconsumed_tail
            more = not done and len(out) == BLOCK  # output may be waiting inside zlib
        return len(data)

    def close(self) -> None:
        """Raise EOFError when the stream ended inside a member."""
        if self._fed and not self._inflate.eof:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")


def decode(
    path: Path,
    out: Path,
    *,
    compressed: bool,
    key: bytes | None,
    identities: Sequence[age.Identity] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the plaintext of backup ``path`` to ``out``, fsynced; returns its size.

    ``identities`` open an age file; ``key`` a legacy ``SDBKENC1`` one; neither: plaintext.

    Damage the layers can see (a bad gzip stream, a failed authentication, a truncation)
    raises :class:`CorruptBackupError`. Streams block by block.
    """
    total = path.stat().st_size

    def read_so_far(done: int) -> None:
        if progress:
            progress(min(done, total), total)

    try:
        with path.open("rb") as f, open_private(out) as sink:
            target: _Gunzip | IO[bytes] = _Gunzip(sink) if compressed else sink
            if identities is not None:
                age.decrypt(f, target, identities, read_so_far)
            else:
                stream: IO[bytes] = f
                if key is not None:
                    stream = DecryptingReader(f, key)  # type: ignore[assignment]
                while block := stream.read(BLOCK):
                    target.write(block)
                    read_so_far(f.tell())
            if isinstance(target, _Gunzip):
                target.close()
            written = sink.tell()
    except (EOFError, zlib.error) as error:
        raise CorruptBackupError(f"backup file is damaged or truncated ({error})") from None
    fsync_file(out)
    return written
