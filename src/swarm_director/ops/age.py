"""The age file format (age-encryption.org/v1) for X25519 recipients, streamed.

Backups and log archives are encrypted to public keys (``age1...`` recipients): the server that
writes them holds no secret, and the standard ``age`` tool opens them
(``age -d -i key.txt FILE``). Built on ``cryptography`` rather than a binding of the Rust or Go
implementation: the layers here are file objects that stream (gzip inside encryption, a
hashing writer outside), and the header is parsed under fixed bounds before anything is
allocated for it. Interoperability is tested against the real ``age`` binary.

Format (https://age-encryption.org/v1)::

    age-encryption.org/v1
    -> X25519 <base64 ephemeral share>
    <base64 file key wrapped with ChaCha20-Poly1305>
    --- <base64 HMAC-SHA256 of the header up to "---">
    nonce (16 bytes) | STREAM of ChaCha20-Poly1305 chunks of 64 KiB plaintext

One stanza per recipient; any one identity opens the file.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from swarm_director.ops.bech32 import decode as _bech32_decode
from swarm_director.ops.bech32 import encode as _bech32_encode
from swarm_director.ops.chunked import ChunkedReader, ChunkedWriter
from swarm_director.ops.errors import BackupKeyError, CorruptBackupError

MAGIC = b"age-encryption.org/v1\n"
SCHEME = "age-x25519-v1"
CHUNK = 64 * 1024
_TAG = 16
_X25519_LABEL = b"age-encryption.org/v1/X25519"
#: Bounds checked while the header is read, before any of it is kept: a real header with
#: dozens of recipients is a few KiB.
MAX_HEADER_BYTES = 64 * 1024
MAX_LINE_BYTES = 4 * 1024
MAX_STANZAS = 256
#: An identity file is a few lines; refuse to read anything large as one.
MAX_IDENTITY_FILE_BYTES = 64 * 1024

# -- keys ------------------------------------------------------------------------------------


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def recipient_of(identity: X25519PrivateKey) -> str:
    """The ``age1...`` recipient of ``identity``."""
    return _bech32_encode("age", _raw_public(identity.public_key()))


def new_identity() -> tuple[str, str]:
    """A fresh ``(identity, recipient)`` pair: ``AGE-SECRET-KEY-1...`` and ``age1...``."""
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return _bech32_encode("age-secret-key-", raw).upper(), recipient_of(key)


def parse_recipient(text: str) -> X25519PublicKey:
    """An ``age1...`` recipient; BackupKeyError names it when it is not one."""
    try:
        raw = _bech32_decode(text.strip(), "age")
        if len(raw) != 32:
            raise ValueError("length")
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise BackupKeyError(
            f"invalid age recipient {text.strip()[:80]!r}: expected age1... "
            "(make one with: swarm-director db backup-key)"
        ) from None


def parse_identity(text: str) -> X25519PrivateKey:
    """An ``AGE-SECRET-KEY-1...`` identity; the error never repeats the text."""
    try:
        raw = _bech32_decode(text.strip(), "age-secret-key-")
        if len(raw) != 32:
            raise ValueError("length")
        return X25519PrivateKey.from_private_bytes(raw)
    except ValueError:
        raise BackupKeyError("invalid age identity (expected AGE-SECRET-KEY-1...)") from None


def load_identities(path: Path) -> list[X25519PrivateKey]:
    """The identities of an age identity file (``#`` comments and blank lines skipped), as
    written by ``age-keygen`` or ``swarm-director db backup-key``. Errors name the file and
    the line number, never its content."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_IDENTITY_FILE_BYTES + 1)
    except OSError as error:
        raise BackupKeyError(f"cannot read identity file {path}: {error.strerror}") from None
    if len(data) > MAX_IDENTITY_FILE_BYTES:
        raise BackupKeyError(f"{path} is too large to be an age identity file")
    identities = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(parse_identity(line))
        except BackupKeyError:
            raise BackupKeyError(
                f"{path} line {number} is not an age X25519 identity (AGE-SECRET-KEY-1...)"
            ) from None
    if not identities:
        raise BackupKeyError(f"{path} holds no age identity")
    return identities


# -- header ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if "=" in text or "\n" in text:
        raise ValueError("padding")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _wrap(file_key: bytes, recipient: X25519PublicKey) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    share = _raw_public(ephemeral.public_key())
    shared = ephemeral.exchange(recipient)
    wrap_key = _hkdf(shared, share + _raw_public(recipient), _X25519_LABEL)
    body = ChaCha20Poly1305(wrap_key).encrypt(b"\x00" * 12, file_key, None)
    return f"-> X25519 {_b64(share)}\n{_b64(body)}\n".encode("ascii")


def _unwrap(share: bytes, body: bytes, identity: X25519PrivateKey) -> bytes | None:
    try:
        shared = identity.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:  # a low-order point: the all-zero shared secret
        return None
    wrap_key = _hkdf(shared, share + _raw_public(identity.public_key()), _X25519_LABEL)
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(b"\x00" * 12, body, None)
    except InvalidTag:
        return None


def _header_mac(file_key: bytes, header: bytes) -> bytes:
    return hmac.digest(_hkdf(file_key, b"", b"header"), header, "sha256")


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class AgeWriter(ChunkedWriter):
    """A write-only file object that encrypts into ``sink`` to ``recipients`` (call
    :meth:`close` to write the last chunk; ``sink`` stays open)."""

    def __init__(self, sink: IO[bytes], recipients: Sequence[X25519PublicKey]) -> None:
        if not recipients:
            raise BackupKeyError("encrypting needs at least one age recipient")
        file_key = os.urandom(16)
        header = MAGIC + b"".join(_wrap(file_key, r) for r in recipients) + b"---"
        mac = _header_mac(file_key, header)
        nonce = os.urandom(16)
        sink.write(header + b" " + _b64(mac).encode("ascii") + b"\n" + nonce)
        super().__init__(sink, CHUNK)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))

    def _emit(self, plaintext: bytes, *, final: bool) -> None:
        self._sink.write(self._aead.encrypt(_nonce(self._index, final), plaintext, None))
        self._index += 1


def _line(source: IO[bytes], budget: int) -> bytes:
    # readline(n) never buffers more than n bytes: a header without newlines costs nothing.
    limit = min(MAX_LINE_BYTES, budget)
    line = source.readline(limit + 1)
    if len(line) > limit or (line and not line.endswith(b"\n")):
        if len(line) > limit:
            raise CorruptBackupError(
                f"age header refused: a line longer than {limit} bytes "
                f"(header limit {MAX_HEADER_BYTES} bytes)"
            )
        raise CorruptBackupError("age header is truncated")
    if not line:
        raise CorruptBackupError("age header is truncated")
    return line


def read_header(source: IO[bytes], identities: Sequence[X25519PrivateKey]) -> tuple[bytes, bytes]:
    """Parse and authenticate the header; returns ``(file key, payload nonce)``.

    Refuses, before reading further, a header over :data:`MAX_HEADER_BYTES`, a line over
    :data:`MAX_LINE_BYTES` or more than :data:`MAX_STANZAS` stanzas.
    """
    header = bytearray()
    first = _line(source, MAX_HEADER_BYTES)
    if first != MAGIC:
        raise CorruptBackupError("not an age file (bad header)")
    header += first
    stanzas: list[tuple[list[str], bytes]] = []
    while True:
        line = _line(source, MAX_HEADER_BYTES - len(header))
        if line.startswith(b"---"):
            break
        if not line.startswith(b"-> "):
            raise CorruptBackupError("age header is damaged (expected a stanza)")
        if len(stanzas) >= MAX_STANZAS:
            raise CorruptBackupError(f"age header refused: more than {MAX_STANZAS} stanzas")
        header += line
        args = line[3:-1].decode("ascii", "replace").split(" ")
        body = bytearray()
        while True:  # body lines: 64 columns, the last one shorter (maybe empty)
            body_line = _line(source, MAX_HEADER_BYTES - len(header))
            header += body_line
            text = body_line[:-1]
            if len(text) > 64:
                raise CorruptBackupError("age header is damaged (stanza line over 64 columns)")
            body += text
            if len(text) < 64:
                break
        try:
            stanzas.append((args, _unb64(body.decode("ascii"))))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise CorruptBackupError("age header is damaged (bad base64)") from None
    if not line.startswith(b"--- "):
        raise CorruptBackupError("age header is damaged (bad MAC line)")
    header += b"---"
    try:
        mac = _unb64(line[4:-1].decode("ascii"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CorruptBackupError("age header is damaged (bad MAC)") from None
    file_key = _file_key(stanzas, identities)
    if not hmac.compare_digest(mac, _header_mac(file_key, bytes(header))):
        raise CorruptBackupError("age header is damaged (MAC mismatch)")
    nonce = source.read(16)
    if len(nonce) != 16:
        raise CorruptBackupError("age file is truncated (no payload)")
    return file_key, nonce


def _file_key(
    stanzas: list[tuple[list[str], bytes]], identities: Sequence[X25519PrivateKey]
) -> bytes:
    for args, body in stanzas:
        if args[0] != "X25519":
            continue
        if len(args) != 2 or len(body) != 32:
            raise CorruptBackupError("age header is damaged (bad X25519 stanza)")
        try:
            share = _unb64(args[1])
        except (ValueError, binascii.Error):
            raise CorruptBackupError("age header is damaged (bad X25519 share)") from None
        if len(share) != 32:
            raise CorruptBackupError("age header is damaged (bad X25519 share)")
        for identity in identities:
            key = _unwrap(share, body, identity)
            if key is not None and len(key) == 16:
                return key
    raise BackupKeyError(
        "no identity opens this file: SWARM_BACKUP_IDENTITY (or --identity) holds none of "
        "the keys it was encrypted to"
    )


class AgeReader(ChunkedReader):
    """A read-only file object giving the plaintext of an age file.

    Raises :class:`BackupKeyError` when no identity matches and :class:`CorruptBackupError`
    for any damage, truncation or reordering, at the latest when the end is reached.
    """

    def __init__(self, source: IO[bytes], identities: Sequence[X25519PrivateKey]) -> None:
        file_key, nonce = read_header(source, identities)
        super().__init__(source)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._pending = source.read(CHUNK + _TAG)

    def _next_chunk(self) -> bytes:
        sealed = self._pending
        following = self._source.read(CHUNK + _TAG) if len(sealed) == CHUNK + _TAG else b""
        final = not following
        if len(sealed) < _TAG or (not final and len(sealed) != CHUNK + _TAG):
            raise CorruptBackupError("age file is truncated")
        try:
            plain = self._aead.decrypt(_nonce(self._index, final), sealed, None)
        except InvalidTag:
            where = "last chunk" if final else f"chunk {self._index}"
            raise CorruptBackupError(
                f"age file is truncated or damaged ({where} fails authentication)"
            ) from None
        if final and not plain and self._index > 0:
            raise CorruptBackupError("age file is damaged (empty last chunk)")
        self._index += 1
        self._pending = following
        self._done = final
        return plain
