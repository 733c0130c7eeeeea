"""How commands show progress and sizes to people."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import click

from swarm_director.cli.common import is_interactive
from swarm_director.ops.progress import Reporter


def human_bytes(n: float) -> str:
    """``n`` bytes as ``512 B``, ``1.5 KiB``, ``3.2 MiB`` or ``1.1 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def rows_text(rows: int, estimated: bool) -> str:
    """``1,234 rows``, or ``~1,000,000 rows (estimate)`` for an engine's estimate."""
    return f"~{rows:,} rows (estimate)" if estimated else f"{rows:,} rows"


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Reporter | None]:
    """A reporter drawing one click progress bar per stage, for stages that last longer than
    a second; None (no output at all) when not on a terminal or when ``enabled`` is False."""
    if not enabled or not is_interactive():
        yield None
        return
    with ExitStack() as stack:
        state: dict[str, Any] = {"stage": None, "bar": None, "done": 0, "since": 0.0}

        def report(stage: str, done: int, total: int) -> None:
            if state["stage"] != stage:
                if state["bar"] is not None:
                    state["bar"].render_finish()
                state.update(stage=stage, bar=None, done=0, since=time.monotonic())
            if state["bar"] is None:
                if time.monotonic() - state["since"] < 1.0 or done >= total:
                    return  # quick stages stay quiet
                state["bar"] = stack.enter_context(
                    click.progressbar(length=max(total, 1), label=f"{stage:>9}")
                )
            state["bar"].update(max(0, done - state["done"]))
            state["done"] = done

        yield report
