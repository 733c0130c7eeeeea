"""The temporary files of a backup in progress, and the removal of those a killed run left.

A backup writes its data under hidden ``.part-<token>.raw`` / ``.part-<token>.out`` names and
removes them when it ends, successfully or not; only a process killed outright (SIGKILL, power
loss) leaves them behind, and they can be as large as the database. While it writes, a backup
holds an exclusive ``flock`` on ``.part-<token>.lock``; the kernel releases it when the process
dies, however it dies. A part whose lock can be taken therefore belongs to no live backup and
is removed by the next backup in the same folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from swarm_director.ops.backup.manifest import PART_PREFIX

_DATA_PART = re.compile(rf"^{re.escape(PART_PREFIX)}([0-9a-f]{{12}})\.(raw|out)$")


def _lock_path(directory: Path, token: str) -> Path:
    return directory / f"{PART_PREFIX}{token}.lock"


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def claimed(directory: Path) -> Iterator[str]:
    """A new token whose ``.part-<token>.*`` files are this process's while the block runs."""
    token = uuid.uuid4().hex[:12]
    lock = _lock_path(directory, token)
    fd = _try_lock(lock)
    assert fd is not None, "a fresh token cannot be locked already"
    try:
        yield token
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def remove_orphans(directory: Path) -> list[Path]:
    """Delete the data parts in ``directory`` that no running backup holds; returns them."""
    if not directory.is_dir():
        return []
    tokens: dict[str, list[Path]] = {}
    for path in directory.iterdir():
        match = _DATA_PART.match(path.name)
        if match is not None:
            tokens.setdefault(match.group(1), []).append(path)
    removed: list[Path] = []
    for token, files in sorted(tokens.items()):
        lock = _lock_path(directory, token)
        fd = _try_lock(lock)
        if fd is None:
            continue  # a live backup is writing these
        try:
            for path in files:
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue  # its backup ended (and tidied up) after the folder was listed
                removed.append(path)
        finally:
            lock.unlink(missing_ok=True)
            os.close(fd)
    return removed
