"""Backup files on disk: streamed gzip/encryption layers, checksums, durable writes."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from swarm_director.ops.age import AgeReader, AgeWriter
from swarm_director.ops.crypto import DecryptingReader, EncryptingWriter
from swarm_director.ops.errors import CorruptBackupError
from swarm_director.private_files import open_private

#: Called with (done, expected) units of one stage of work.
Progress = Callable[[int, int], None]
#: Called with (stage name, done, expected); the CLI shows one progress bar per stage.
Reporter = Callable[[str, int, int], None]


def stage(reporter: Reporter | None, name: str) -> Progress | None:
    """The :data:`Progress` callback of one named stage (None when nobody listens)."""
    if reporter is None:
        return None

    def progress(done: int, total: int) -> None:
        reporter(name, done, total)

    return progress


BLOCK = 1 << 20


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


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside ``path`` durable."""
    with contextlib.suppress(OSError):  # not supported on every platform/file system
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """Atomically give a fully written, fsynced temporary file its final name."""
    fsync_file(tmp)
    os.replace(tmp, final)
    fsync_dir(final.parent)


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


def encode(
    raw: Path,
    out: Path,
    *,
    compress: bool,
    key: bytes | None,
    recipients: Sequence[X25519PublicKey] = (),
    progress: Progress | None = None,
) -> tuple[str, int]:
    """Write ``raw`` to ``out`` through gzip and/or encryption; returns (sha256, bytes).

    With ``recipients`` the file is in the age format (the legacy ``key`` is then unused).
    Streams block by block, so memory use does not grow with the database.
    """
    total = raw.stat().st_size
    done = 0
    with open_private(out) as sink:
        hashing = _HashingWriter(sink)
        encrypting: AgeWriter | EncryptingWriter | None = None
        if recipients:
            encrypting = AgeWriter(hashing, recipients)  # type: ignore[arg-type]
        elif key is not None:
            encrypting = EncryptingWriter(hashing, key)  # type: ignore[arg-type]
        layer: IO[bytes] = encrypting if encrypting is not None else hashing  # type: ignore[assignment]
        gz = gzip.GzipFile(fileobj=layer, mode="wb", compresslevel=6, mtime=0) if compress else None
        target: IO[bytes] = gz if gz is not None else layer  # type: ignore[assignment]
        with raw.open("rb") as source:
            while block := source.read(BLOCK):
                target.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
        if gz is not None:
            gz.close()
        if encrypting is not None:
            encrypting.close()
    return hashing.digest.hexdigest(), hashing.size


def _decoded(
    f: IO[bytes],
    *,
    compressed: bool,
    key: bytes | None,
    identities: Sequence[X25519PrivateKey] | None,
) -> IO[bytes]:
    stream: IO[bytes] = f
    if identities is not None:
        stream = AgeReader(f, identities)  # type: ignore[assignment]
    elif key is not None:
        stream = DecryptingReader(f, key)  # type: ignore[assignment]
    if compressed:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    return stream


def decode(
    path: Path,
    out: Path,
    *,
    compressed: bool,
    key: bytes | None,
    identities: Sequence[X25519PrivateKey] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the plaintext of backup ``path`` to ``out``, fsynced; returns its size.

    ``identities`` open an age file; ``key`` a legacy ``SDBKENC1`` one; neither: plaintext.

    Damage the layers can see (a bad gzip stream, a failed authentication, a truncation)
    raises :class:`CorruptBackupError`. Streams block by block.
    """
    total = path.stat().st_size
    written = 0
    try:
        with path.open("rb") as f, open_private(out) as sink:
            stream = _decoded(f, compressed=compressed, key=key, identities=identities)
            while block := stream.read(BLOCK):
                sink.write(block)
                written += len(block)
                if progress:
                    progress(min(f.tell(), total), total)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise CorruptBackupError(f"backup file is damaged or truncated ({error})") from None
    fsync_file(out)
    return written
