"""Files made durable: data fsynced before a rename gives them their final name, and the
rename fsynced in its folder, so that a crash leaves the old file or the whole new one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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
