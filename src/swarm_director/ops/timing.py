"""Statement timings: a cheap, bounded record of the slowest statement shapes.

:meth:`StatementTimings.install` hooks an engine's dialect (``do_execute`` and friends, which
time the DBAPI call itself). Each statement is reduced to
its *shape* (bound parameters are already placeholders; expanded ``IN (...)`` lists and any
literals are folded) and only per-shape counters are kept: count, total and worst time. The
record holds at most ``capacity`` shapes, dropping the fastest when full, so memory is fixed
and the slow outliers stay. The overhead is one event dispatch, two ``perf_counter`` calls and
a dict update per statement (``bench/ops.py`` measures it).

A process that passes ``directory`` writes its snapshot there (``statements-<pid>.json``,
atomically, at most every ``flush_every_s``) so that ``db stats`` in another process can list
the service's slowest statements.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

_IN_LIST = re.compile(
    r"\(\s*(?:(?:\?|%\(\w+\)s|:\w+|\$\d+)(?:::\w+)?\s*,\s*)+"
    r"(?:\?|%\(\w+\)s|:\w+|\$\d+)(?:::\w+)?\s*\)"
)
_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w$.])-?\d+(?:\.\d+)?\b")
_SPACE = re.compile(r"\s+")
_VALUES_ROWS = re.compile(r"(VALUES\s*\([^()]*\))(?:\s*,\s*\([^()]*\))+", re.IGNORECASE)


def shape_of(statement: str) -> str:
    """The statement with literals and expanded lists folded: one shape per query."""
    text = _STRING.sub("?", statement)
    text = _NUMBER.sub("?", text)
    text = _IN_LIST.sub("(...)", text)
    text = _VALUES_ROWS.sub(r"\1, ...", text)
    return _SPACE.sub(" ", text).strip()


@dataclass
class ShapeStats:
    """Timings of one statement shape."""

    shape: str
    count: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    last_seen: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "count": self.count,
            "total_ms": round(self.total_s * 1000, 3),
            "mean_ms": round(self.total_s / self.count * 1000, 3) if self.count else 0.0,
            "max_ms": round(self.max_s * 1000, 3),
            "last_seen": self.last_seen,
        }


class StatementTimings:
    """The bounded per-shape record; thread-safe."""

    def __init__(
        self,
        capacity: int = 100,
        directory: Path | None = None,
        flush_every_s: float = 30.0,
    ) -> None:
        self.capacity = capacity
        self.directory = directory
        self.flush_every_s = flush_every_s
        self._stats: dict[str, ShapeStats] = {}
        self._shapes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def record(self, statement: str, seconds: float) -> None:
        """Count one execution of ``statement`` that took ``seconds``."""
        shape = self._shapes.get(statement)
        if shape is None:
            shape = shape_of(statement)
            if len(self._shapes) > 4096:
                self._shapes.clear()
            self._shapes[statement] = shape
        with self._lock:
            stats = self._stats.get(shape)
            if stats is None:
                if len(self._stats) >= self.capacity:
                    fastest = min(self._stats.values(), key=lambda s: s.max_s)
                    if fastest.max_s >= seconds:
                        return
                    del self._stats[fastest.shape]
                stats = self._stats[shape] = ShapeStats(shape)
            stats.count += 1
            stats.total_s += seconds
            stats.last_seen = time.time()
            if seconds > stats.max_s:
                stats.max_s = seconds
        if self.directory is not None and time.monotonic() - self._last_flush > self.flush_every_s:
            self.flush()

    def slowest(self, limit: int = 10) -> list[ShapeStats]:
        """The shapes with the worst single execution, worst first."""
        with self._lock:
            ordered = sorted(self._stats.values(), key=lambda s: s.max_s, reverse=True)
        return ordered[:limit]

    def flush(self) -> None:
        """Write the snapshot file (atomically) if a directory was given."""
        self._last_flush = time.monotonic()
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.directory / f"statements-{os.getpid()}.json"
            part = target.with_suffix(".part")
            data = {
                "pid": os.getpid(),
                "written": time.time(),
                "shapes": [s.as_dict() for s in self.slowest(self.capacity)],
            }
            part.write_text(json.dumps(data), encoding="utf-8")
            os.replace(part, target)
        except OSError:
            pass  # statistics must never break the service

    def install(self, engine: Engine) -> None:
        """Time every statement ``engine`` runs (idempotent).

        Uses the dialect's ``do_execute*`` hooks, which run the DBAPI call themselves: one
        event per statement, about half the cost of the before/after cursor-execute pair.
        """
        dialect = engine.dialect
        if dialect in _INSTALLED:
            return
        _INSTALLED[dialect] = self
        clock = time.perf_counter
        record = self.record

        def do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
            began = clock()
            cursor.execute(statement, parameters)
            record(statement, clock() - began)
            return True

        def do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
            began = clock()
            cursor.execute(statement)
            record(statement, clock() - began)
            return True

        def do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
            began = clock()
            cursor.executemany(statement, parameters)
            record(statement, clock() - began)
            return True

        event.listen(engine, "do_execute", do_execute)
        event.listen(engine, "do_execute_no_params", do_execute_no_params)
        event.listen(engine, "do_executemany", do_executemany)


_INSTALLED: weakref.WeakKeyDictionary[Any, StatementTimings] = weakref.WeakKeyDictionary()


def load_snapshots(directory: Path, max_age_s: float = 7 * 86400) -> list[dict[str, Any]]:
    """Merge the snapshot files in ``directory`` (recent ones only) into one list of shapes."""
    merged: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return []
    now = time.time()
    for path in directory.glob("statements-*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if now - float(data.get("written", 0)) > max_age_s:
            continue
        for shape in data.get("shapes", []):
            _merge(merged, shape)
    return sorted(merged.values(), key=lambda s: s["max_ms"], reverse=True)


def _merge(merged: dict[str, dict[str, Any]], shape: dict[str, Any]) -> None:
    key = shape["shape"]
    if key not in merged:
        merged[key] = dict(shape)
        return
    into = merged[key]
    into["count"] += shape["count"]
    into["total_ms"] = round(into["total_ms"] + shape["total_ms"], 3)
    into["max_ms"] = max(into["max_ms"], shape["max_ms"])
    into["mean_ms"] = round(into["total_ms"] / into["count"], 3) if into["count"] else 0.0
    into["last_seen"] = max(into["last_seen"], shape["last_seen"])


def default_directory(data_dir: Path) -> Path:
    """Where services write their statement snapshots and ``db stats`` reads them."""
    return data_dir / "statement-timings"
