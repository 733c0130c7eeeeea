"""Streamed, authenticated encryption of backup files (AES-256-GCM in chunks).

Format (all integers big-endian)::

    header  = b"SDBKENC1" | salt (16 bytes) | chunk size (4) | key check (16)
    chunk_i = length of ciphertext (4) | AES-GCM(key, nonce_i, plaintext_i, aad=header)

The file key and the key check come from ``SWARM_BACKUP_KEY`` through HKDF-SHA256 with the
file's random salt, so no two files share a key and a wrong key is told apart from damage.
``nonce_i`` is the chunk's index (11 bytes) followed by a flag byte that is 1 only on the last
chunk (the STREAM construction): reordered, dropped, duplicated or truncated chunks all fail
authentication, and a file cut at a chunk boundary is caught because its last chunk is not
marked final. Memory use is one chunk, whatever the database size.

Backups are now written in the age format (:mod:`.age`); this one stays so that backups
written with ``SWARM_BACKUP_KEY`` still verify and restore, and for servers that keep using it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import struct
from typing import IO, TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from swarm_director.ops.errors import BackupKeyError, CorruptBackupError

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

#: The setting that holds the key, for messages.
KEY_SETTING = "SWARM_BACKUP_KEY"
MAGIC = b"SDBKENC1"
SCHEME = "aes-256-gcm-stream-v1"
CHUNK_SIZE = 1 << 20
#: The largest chunk a header may announce. Each chunk is read whole, so a crafted header
#: announcing 4 GiB chunks would otherwise make a reader allocate that much.
MAX_CHUNK_SIZE = 16 << 20
_TAG = 16
_HEADER = struct.Struct(">8s16sI16s")
_LENGTH = struct.Struct(">I")


def new_key() -> str:
    """A fresh random key, in the form ``SWARM_BACKUP_KEY`` expects."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_key(text: str) -> bytes:
    """Decode a base64 key; anything but exactly 32 bytes is refused."""
    try:
        padded = text + "=" * (-len(text) % 4)
        key = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise BackupKeyError(
            f"{KEY_SETTING} must be 32 random bytes in base64 "
            "(make one with: swarm-director db backup-key)"
        )
    return key


def _derive(key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    material = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=salt, info=b"swarm-director backup v1"
    ).derive(key)
    return material[:32], material[32:48]


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


# -- chunked file objects: these do the buffering, a subclass seals or opens one chunk ----


class _ChunkedWriter:
    """A write-only file object that hands ``chunk_size`` bytes at a time to :meth:`_emit`,
    and the rest (the only chunk that may be short) to it on :meth:`close`. ``sink`` stays
    open."""

    def __init__(self, sink: SupportsWrite[bytes], chunk_size: int) -> None:
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

    def close(self) -> None:
        if not self._closed:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True

    def _emit(self, plaintext: bytes, *, final: bool) -> None:
        """Seal chunk number ``self._index`` into the sink and count it."""
        raise NotImplementedError


class _ChunkedReader:
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


class EncryptingWriter(_ChunkedWriter):
    """A write-only file object that encrypts into ``sink`` (call :meth:`close` to finish)."""

    def __init__(
        self, sink: SupportsWrite[bytes], key: bytes, chunk_size: int = CHUNK_SIZE
    ) -> None:
        salt = secrets.token_bytes(16)
        file_key, check = _derive(key, salt)
        super().__init__(sink, chunk_size)
        self._aead = AESGCM(file_key)
        self._header = _HEADER.pack(MAGIC, salt, chunk_size, check)
        sink.write(self._header)

    def _emit(self, plaintext: bytes, *, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index, final), plaintext, self._header)
        self._sink.write(_LENGTH.pack(len(sealed)))
        self._sink.write(sealed)
        self._index += 1


class DecryptingReader(_ChunkedReader):
    """A read-only file object giving the plaintext of an encrypted ``source``.

    Raises :class:`BackupKeyError` for a wrong key and :class:`CorruptBackupError` for any
    damage, truncation or reordering, at the latest when the end is reached.
    """

    def __init__(self, source: IO[bytes], key: bytes) -> None:
        header = source.read(_HEADER.size)
        if len(header) != _HEADER.size or not header.startswith(MAGIC):
            raise CorruptBackupError("not an encrypted backup (bad header)")
        _magic, salt, chunk_size, check = _HEADER.unpack(header)
        if not 0 < chunk_size <= MAX_CHUNK_SIZE:
            raise CorruptBackupError(
                f"encrypted backup refused: its header announces {chunk_size}-byte chunks "
                f"(at most {MAX_CHUNK_SIZE} are accepted)"
            )
        file_key, expected = _derive(key, salt)
        if not hmac.compare_digest(check, expected):
            raise BackupKeyError(f"wrong backup key: {KEY_SETTING} is not the key of this file")
        super().__init__(source)
        self._aead = AESGCM(file_key)
        self._header = header
        self._max_sealed = chunk_size + _TAG
        self._pending = self._read_sealed()

    def _read_sealed(self) -> bytes | None:
        raw = self._source.read(_LENGTH.size)
        if not raw:
            return None
        if len(raw) != _LENGTH.size:
            raise CorruptBackupError("encrypted backup is truncated")
        (length,) = _LENGTH.unpack(raw)
        if not _TAG <= length <= self._max_sealed:
            raise CorruptBackupError("encrypted backup is damaged (bad chunk length)")
        sealed = self._source.read(length)
        if len(sealed) != length:
            raise CorruptBackupError("encrypted backup is truncated")
        return sealed

    def _next_chunk(self) -> bytes:
        sealed = self._pending
        if sealed is None:
            raise CorruptBackupError("encrypted backup is truncated (no final chunk)")
        following = self._read_sealed()
        final = following is None
        try:
            plain = self._aead.decrypt(_nonce(self._index, final), sealed, self._header)
        except InvalidTag:
            if final:
                raise CorruptBackupError(
                    "encrypted backup is truncated or damaged (last chunk fails authentication)"
                ) from None
            raise CorruptBackupError(
                f"encrypted backup is damaged (chunk {self._index} fails authentication)"
            ) from None
        self._index += 1
        self._pending = following
        self._done = final
        return plain
