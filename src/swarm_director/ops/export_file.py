"""Export files: written whole or not at all, as text (JSON lines, CSV) or Parquet.

The file is written under a hidden ``.part-`` name beside the target, fsynced and renamed into
place, so a file under the asked-for name is always complete and an export that fails (bad
data, a lost connection, Ctrl+C) leaves nothing behind. Like backups and archives, exports
are owner-only files: they hold what the database holds.

Parquet comes from pyarrow, an optional dependency (``pip install 'swarm-director[parquet]'``):
each field gets its Arrow type (64-bit integers, strings, microsecond UTC timestamps, and
Arrow's JSON type for documents, which Parquet readers see as JSON).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from swarm_director.errors import SwarmError
from swarm_director.ops.durable import publish
from swarm_director.private_files import open_private
from swarm_director.schemas.export import ExportField, FieldKind

#: Rows per Parquet row group (a batch of this many rows is held in memory at once).
ROW_GROUP_ROWS = 20_000
#: Bytes of CSV text Arrow parses at once (about 1,000 logs). Arrow's CSV reader holds a few
#: dozen blocks at a time, so this sets much of a Parquet export's peak memory: 1 MiB blocks
#: peaked 25 MB higher than these at 10 M logs, no faster (docs/benchmarks.md, "Export").
CSV_BLOCK_BYTES = 256 << 10
#: mallopt's parameter number of the mmap threshold (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
#: Called with the rows written so far.
RowsDone = Callable[[int], None]


class ExportError(SwarmError):
    """An export could not be written; nothing was left under its name."""

    code = "export_error"


def check_target(out: Path, *, overwrite: bool) -> None:
    """ExportError unless an export can be written to ``out``: its folder exists, and no file
    is there (or ``overwrite``)."""
    if out.is_dir():
        raise ExportError(f"{out} is a folder; name the file to write")
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent} does not exist; create the folder first")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; choose a new name or pass --force")


def pyarrow_modules() -> tuple[ModuleType, ModuleType]:
    """``pyarrow`` and ``pyarrow.parquet``; ExportError naming the extra when not installed."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise ExportError("Parquet needs pyarrow: pip install 'swarm-director[parquet]'") from None


def write_text(out: Path, chunks: Iterable[tuple[bytes, int]], done: RowsDone | None) -> int:
    """Write the ``(data, rows)`` chunks to ``out`` (see the module docstring); returns the
    bytes written."""
    written = rows = 0
    with _part(out) as sink:
        for data, count in chunks:
            sink.write(data)
            written += len(data)
            rows += count
            if done is not None:
                done(rows)
    return written


def write_parquet(
    out: Path,
    fields: Sequence[ExportField],
    csv_chunks: Iterable[tuple[bytes, int]],
    done: RowsDone | None,
) -> int:
    """Write the export's CSV text (``(data, rows)`` chunks, the header line first: every
    text quoted, a null an empty cell, timestamps ISO 8601 ending in ``Z``) to ``out`` as
    Parquet; returns the bytes written.

    Arrow's CSV reader parses the text (which the database writes) in C++ into typed
    columns, block by block: a Python value a field (a cursor's rows, built into arrays) cost
    a third more CPU on SQLite and two thirds more on PostgreSQL (docs/benchmarks.md, "Export")."""
    pa, pq = pyarrow_modules()
    csv = importlib.import_module("pyarrow.csv")
    _fix_mmap_threshold()
    types = {
        FieldKind.INTEGER: pa.int64(),
        FieldKind.TEXT: pa.string(),
        FieldKind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
        FieldKind.JSON: pa.string(),  # then Arrow's JSON type (below)
    }
    stored = {**types, FieldKind.JSON: pa.json_()}
    schema = pa.schema([pa.field(f.name, stored[f.kind]) for f in fields])
    # The C library's allocator gives freed blocks back; Arrow's default (mimalloc) kept them.
    pool = pa.system_memory_pool()
    reader = csv.open_csv(
        _ChunkReader(csv_chunks),
        read_options=csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
        parse_options=csv.ParseOptions(newlines_in_values=True),
        convert_options=csv.ConvertOptions(
            column_types={f.name: types[f.kind] for f in fields},
            include_columns=[f.name for f in fields],
            # Our CSV's rules: a null is an empty cell, every text is quoted ("" is a text).
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
        memory_pool=pool,
    )
    rows = 0
    pending: list[Any] = []
    pending_rows = 0
    with _part(out) as sink:
        writer = pq.ParquetWriter(sink, schema, memory_pool=pool)
        try:
            for batch in reader:
                columns = [
                    column.cast(schema.field(n).type) if f.kind is FieldKind.JSON else column
                    for n, (f, column) in enumerate(zip(fields, batch.columns, strict=True))
                ]
                pending.append(pa.RecordBatch.from_arrays(columns, schema=schema))
                pending_rows += batch.num_rows
                rows += batch.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(pending, schema))
                    pending, pending_rows = [], 0
                if done is not None:
                    done(rows)
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema))
        finally:
            reader.close()
            writer.close()
        size: int = sink.tell()
    return size


def _fix_mmap_threshold() -> None:
    """Keep glibc's malloc from moving its mmap threshold up (what setting the variable
    MALLOC_MMAP_THRESHOLD_ does): freed blocks of a few MB (text chunks, CSV blocks, column
    pages) raise it, later ones of that size then come from the heap, which does not shrink:
    45-60 MB more at the peak of a Parquet export of a million logs. 128 KiB is glibc's own
    start value; nothing happens on another C library."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):
        pass


class _ChunkReader(io.RawIOBase):
    """The ``(data, rows)`` chunks as a readable binary file (what Arrow's CSV reader reads),
    each read a view of a chunk: no copy."""

    def __init__(self, chunks: Iterable[tuple[bytes, int]]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._data = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> Any:  # a memoryview: Arrow takes any buffer
        while not self._data:
            data = next(self._chunks, None)
            if data is None:
                return b""
            self._data = memoryview(data[0])
        size = len(self._data) if size < 0 else size
        piece, self._data = self._data[:size], self._data[size:]
        return piece


@contextmanager
def _part(out: Path) -> Iterator[BinaryIO]:
    """The hidden part file of ``out``, open for writing: published under ``out`` when the
    block ends normally, removed when it raises."""
    part = out.with_name(f".part-{out.name}")
    try:
        with open_private(part) as sink:
            yield sink
        publish(part, out)
    finally:
        part.unlink(missing_ok=True)
