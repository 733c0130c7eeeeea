"""Files and folders only their owner may read: the database, backups, archives.

Everything this package writes to disk holds the swarm's data, so folders it creates are
``0700`` and files it creates ``0600``, set when each is created. Setting a process-wide
``umask`` instead was rejected: it belongs to the host application, and would change the mode
of every file the rest of the process creates. A folder that already exists keeps its mode:
the user chose it, and the files in it are private anyway (an open folder shows their names
and sizes, not their contents).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` as a folder, creating it and any missing parents with mode ``0700``.

    Like ``path.mkdir(parents=True, exist_ok=True)`` (which gives parents the default mode),
    but private; folders that exist are left as they are. Returns ``path``.
    """
    missing: list[Path] = []
    current = path
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another process made it in between
    if not path.is_dir():
        raise FileExistsError(errno.EEXIST, "exists and is not a folder", str(path))
    return path


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode ``0600`` unless it exists; True if this call made it.

    A missing folder raises :class:`FileNotFoundError`.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for binary writing from empty, with mode ``0600``.

    Meant for files this package names itself (temporary parts, staged copies): one that
    exists is truncated and made private.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # O_CREAT leaves an existing file's mode as it was
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, created or truncated with mode ``0600``."""
    with open_private(path) as f:
        f.write(text.encode("utf-8"))
