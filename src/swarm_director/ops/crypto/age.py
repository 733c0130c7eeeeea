"""age files (age-encryption.org/v1, X25519 recipients) through ``pyrage``, streamed.

Backups and log archives are encrypted to public keys (``age1...`` recipients): the server that
writes them holds no secret, and the standard ``age`` tool opens them
(``age -d -i key.txt FILE``). The format itself is the Rust ``age`` crate's, bound by
``pyrage``; files written by the earlier hand-written implementation are the same format and
open unchanged. This module adds what backups need around the binding:

- keys parsed with errors that name the setting and never repeat a secret;
- pyrage pulls plaintext from a reader and pushes its output into a writer, so
  :func:`encrypt` takes an iterator of chunks and :func:`decrypt` a writer: nothing holds
  more than a chunk, whatever the file size;
- the header is bounded before the crate parses it: its parser slows down faster than
  linearly with the number of stanzas (20 000 stanzas, a 400 KB file, took minutes of CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pyrage
from pyrage import x25519

from swarm_director.ops.errors import BackupKeyError, CorruptBackupError

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    #: Where plaintext or ciphertext goes: anything with ``write``.
    Sink = SupportsWrite[bytes]

MAGIC = b"age-encryption.org/v1\n"
SCHEME = "age-x25519-v1"
Recipient = x25519.Recipient
Identity = x25519.Identity
#: Refused before the crate parses anything: a real header with dozens of recipients is a
#: few KiB (one stanza is about 110 bytes).
MAX_HEADER_BYTES = 64 * 1024
MAX_STANZAS = 256
#: An identity file is a few lines; refuse to read anything large as one.
MAX_IDENTITY_FILE_BYTES = 64 * 1024
RECIPIENTS_SETTING = "SWARM_BACKUP_RECIPIENTS"
IDENTITY_SETTING = "SWARM_BACKUP_IDENTITY"
# pyrage reports "no identity matches" only through its message.
_NO_MATCH = "No matching keys found"


# -- keys ------------------------------------------------------------------------------------


def new_identity() -> tuple[str, str]:
    """A fresh ``(identity, recipient)`` pair: ``AGE-SECRET-KEY-1...`` and ``age1...``."""
    identity = Identity.generate()
    return str(identity), str(identity.to_public())


def parse_recipient(text: str, setting: str = RECIPIENTS_SETTING) -> Recipient:
    """An ``age1...`` recipient; BackupKeyError names it and ``setting`` when it is not one."""
    try:
        return Recipient.from_str(text.strip())
    except pyrage.RecipientError as error:
        raise BackupKeyError(
            f"{setting}: {text.strip()[:80]!r} is not a valid age recipient ({error}); "
            "expected age1... (make one with: swarm-director db backup-key)"
        ) from None


def load_identities(path: Path, setting: str = IDENTITY_SETTING) -> list[Identity]:
    """The identities of an age identity file (``#`` comments and blank lines skipped), as
    written by ``age-keygen`` or ``swarm-director db backup-key``. Errors name ``setting``,
    the file and the line number, never its content."""
    where = f"{setting} ({path})"
    try:
        with path.open("rb") as f:
            data = f.read(MAX_IDENTITY_FILE_BYTES + 1)
    except OSError as error:
        raise BackupKeyError(f"{where}: cannot read the identity file: {error.strerror}") from None
    if len(data) > MAX_IDENTITY_FILE_BYTES:
        raise BackupKeyError(f"{where} is too large to be an age identity file")
    identities = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(Identity.from_str(line))
        except pyrage.IdentityError:
            raise BackupKeyError(
                f"{where} line {number} is not an age X25519 identity (AGE-SECRET-KEY-1...)"
            ) from None
    if not identities:
        raise BackupKeyError(f"{where} holds no age identity")
    return identities


# -- streams ---------------------------------------------------------------------------------


class _Pull:
    """A ``read(n)`` file object over an iterator of chunks, for pyrage to pull from.

    pyrage turns an exception raised in ``read`` into its own error with only the message;
    the original is kept in :attr:`error` so the caller can raise it unchanged.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            while not self._pending:
                self._pending = memoryview(next(self._chunks))
        except StopIteration:
            return b""
        except BaseException as error:
            self.error = error
            raise
        size = len(self._pending) if size < 0 else size
        taken, self._pending = self._pending[:size], self._pending[size:]
        return bytes(taken)


class _Push:
    """A ``write`` file object in front of ``sink`` that keeps what ``sink`` raised: pyrage
    flushes its last buffer when it is dropped and then ignores a failure."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self.error: BaseException | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        try:
            self._sink.write(bytes(data))
        except BaseException as error:
            self.error = error
            raise
        return len(data)

    def flush(self) -> None:
        pass


def encrypt(chunks: Iterable[bytes], sink: Sink, recipients: Sequence[Recipient]) -> None:
    """Write the age encryption of the concatenated ``chunks`` to ``sink`` (left open).

    An exception raised by the iterator or by ``sink`` propagates as it was; the output is
    then incomplete and must be discarded.
    """
    if not recipients:
        raise BackupKeyError("encrypting needs at least one age recipient")
    source, target = _Pull(chunks), _Push(sink)
    try:
        pyrage.encrypt_io(source, target, list(recipients))  # type: ignore[arg-type]
    except (pyrage.EncryptError, OSError):
        for error in (source.error, target.error):
            if error is not None:
                raise error from None
        raise
    if target.error is not None:
        raise target.error


class _Counted:
    """``read(n)`` over ``source`` that first gives back ``head`` and reports bytes read."""

    def __init__(self, head: bytes, source: IO[bytes], progress: Callable[[int], None]) -> None:
        self._head = head
        self._source = source
        self._progress = progress
        self._done = self._reported = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
        else:
            data = self._source.read(size)
        self._done += len(data)
        # pyrage reads 8 KiB at a time: report once a MiB, and at the end.
        if not data or self._done - self._reported >= 1 << 20:
            self._reported = self._done
            self._progress(self._done)
        return data


def _check_header(head: bytes) -> None:
    if not head.startswith(MAGIC):
        raise CorruptBackupError("not an age file (bad header)")
    end = head.find(b"\n---")
    if end < 0:
        if len(head) < MAX_HEADER_BYTES:
            raise CorruptBackupError("age header is damaged or truncated (no MAC line)")
        raise CorruptBackupError(f"age header refused: longer than {MAX_HEADER_BYTES} bytes")
    # Stanza bodies are base64, which has no "-": each "\n-> " starts a stanza.
    if head.count(b"\n-> ", 0, end) > MAX_STANZAS:
        raise CorruptBackupError(f"age header refused: more than {MAX_STANZAS} stanzas")


def decrypt(
    source: IO[bytes],
    sink: Sink,
    identities: Sequence[Identity],
    progress: Callable[[int], None] = lambda done: None,
) -> None:
    """Write the plaintext of the age file ``source`` to ``sink``, chunk by chunk.

    Raises :class:`BackupKeyError` when no identity opens the file and
    :class:`CorruptBackupError` for any damage or truncation (``sink`` has then received
    part of the plaintext: discard it). ``progress`` gets the number of bytes read so far.
    An exception raised by ``sink`` propagates as it was.
    """
    head = source.read(MAX_HEADER_BYTES)
    _check_header(head)
    target = _Push(sink)
    try:
        pyrage.decrypt_io(_Counted(head, source, progress), target, list(identities))  # type: ignore[arg-type]
    except (pyrage.DecryptError, OSError) as error:
        if target.error is not None:
            raise target.error from None
        if str(error) == _NO_MATCH:
            raise BackupKeyError(
                f"no identity opens this file: {IDENTITY_SETTING} (or --identity) holds none "
                "of the keys it was encrypted to"
            ) from None
        raise CorruptBackupError(f"age file is damaged or truncated ({error})") from None
    if target.error is not None:
        raise target.error
