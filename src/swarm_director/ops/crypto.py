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
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import struct
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from swarm_director.ops.chunked import ChunkedReader, ChunkedWriter
from swarm_director.ops.errors import BackupKeyError, CorruptBackupError

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


class EncryptingWriter(ChunkedWriter):
    """A write-only file object that encrypts into ``sink`` (call :meth:`close` to finish)."""

    def __init__(self, sink: IO[bytes], key: bytes, chunk_size: int = CHUNK_SIZE) -> None:
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


class DecryptingReader(ChunkedReader):
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
