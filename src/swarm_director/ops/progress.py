"""The progress callbacks of long steps (a backup, a restore, a cleanup): the CLI shows one
progress bar per named stage."""

from __future__ import annotations

from collections.abc import Callable

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
