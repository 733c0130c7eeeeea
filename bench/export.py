"""Log export at scale: rows per second beside the raw driver reading the same rows, in the
same run, and each export's peak memory.

    .venv/bin/python bench/export.py [--rows 10000000] [--dialect sqlite|postgresql|both]
                                     [--months 6] [--formats jsonl,csv,parquet] [--http]
                                     [--jobs 1,N] [--rounds 3]

For each dialect, on a fresh database migrated to head (PostgreSQL: partitioned by month),
filled with ``--rows`` logs by ``bench/scale.py``'s raw fill, then:

1. The baseline: the raw driver reading every log, all columns, in the export's order
   (timestamp, id): PostgreSQL ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` written to a file
   10,000 lines a write and fsynced, as the export's file is (psycopg, no SQLAlchemy);
   SQLite a ``sqlite3`` cursor fetching the rows (nothing written). Neither formats
   timestamps or documents as the export does.
2. ``swarm-director export logs`` in each format (``export_to_file``, what the command runs),
   written to a file: rows/s and the ratio to (1). Target: >= 0.8. Once for each ``--jobs``
   (default: 1, then the command's default, one worker process a core up to 4).
3. With ``--http``: ``GET /api/export/logs`` (JSON lines) from ``swarm-director serve``, read
   to the end by a client in this process: rows/s and the ratio to (1).

Each export and each baseline runs in a child process of its own, so that its peak resident
memory (``VmHWM``) is its own: target < 200 MB, whatever the number of rows. Rounds interleave
the baseline and the exports; each figure is its best round. On SQLite, which runs inside the
process, each figure's CPU time is printed too, and the ratio of CPU times: the work itself,
which a loaded machine does not inflate as it does wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm_director.cli.export_cmd import default_jobs
from swarm_director.db import Database, make_engine
from swarm_director.schemas.export import ExportFormat, ExportKind

COLUMNS = (
    "id, task_id, agent_type, message, timestamp, log_level, agent_id, session_id, metadata, "
    "created_at"
)
ORDERED = f"SELECT {COLUMNS} FROM agent_logs ORDER BY timestamp, id"


def _peak_mb() -> float:
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report the
    # parent's peak (the fill's) when that is higher.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the children: one measurement each, printed as one JSON line ---------------------------


def child_baseline(url: str, out: Path) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    rows = 0
    started, cpu = time.perf_counter(), time.process_time()
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        conn = sqlite3.connect(str(parsed.database))
        cursor = conn.execute(ORDERED)
        while batch := cursor.fetchmany(10_000):
            rows += len(batch)
        conn.close()
    else:
        import psycopg

        plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        with (
            psycopg.connect(plain) as conn,
            conn.cursor() as cur,
            cur.copy(f"COPY ({ORDERED}) TO STDOUT (FORMAT csv)") as copy,
            out.open("wb") as sink,
        ):
            # Lines gathered and written 10,000 at a time, as the export does: a write a
            # line would slow the baseline with work the export does not do.
            buffer = bytearray()
            for line in copy:
                buffer += line
                rows += 1
                if rows % 10_000 == 0:
                    sink.write(buffer)
                    buffer.clear()
            sink.write(buffer)
            sink.flush()
            os.fsync(sink.fileno())  # as the export's file is, before it is renamed
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"rows": rows, "seconds": seconds, "cpu": cpu, "peak_mb": _peak_mb()}


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def child_export(url: str, out: Path, fmt: str, jobs: int) -> dict[str, Any]:
    from swarm_director.cli.export_cmd import export_to_file

    db = Database(make_engine(url))
    started, cpu = time.perf_counter(), time.process_time() + _children_cpu()
    result = export_to_file(db, ExportKind.LOGS, ExportFormat(fmt), out, overwrite=True, jobs=jobs)
    # the workers' CPU time too: the work of the export, wherever it ran
    seconds, cpu = time.perf_counter() - started, time.process_time() + _children_cpu() - cpu
    assert result.jobs == jobs, result
    db.dispose()
    figure = {
        "rows": result.rows,
        "seconds": seconds,
        "cpu": cpu,
        "bytes": result.bytes,
        "peak_mb": _peak_mb(),
    }
    if jobs > 1:  # the largest worker's peak (with the pages it shares with this process)
        figure["workers_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return figure


def child_http(port: int) -> dict[str, Any]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", "/api/export/logs?format=jsonl")
    response = conn.getresponse()
    assert response.status == 200, response.read()[:500]
    rows = size = 0
    while block := response.read(1 << 20):
        rows += block.count(b"\n")
        size += len(block)
    conn.close()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "bytes": size, "peak_mb": _peak_mb()}


def _in_child(*args: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the parent ------------------------------------------------------------------------------


def _line(
    name: str, figure: dict[str, Any], baseline: dict[str, Any] | None, cpu: bool = False
) -> str:
    rate = figure["rows"] / figure["seconds"]
    text = f"    {name:<28} {figure['rows']:>11,} rows in {figure['seconds']:7.2f} s = "
    text += f"{rate:>10,.0f} rows/s, peak RSS {figure['peak_mb']:6.1f} MB"
    if "workers_peak_mb" in figure:
        text += f" (each worker {figure['workers_peak_mb']:.1f} MB)"
    if "bytes" in figure:
        text += f", {figure['bytes'] / 2**20:,.0f} MiB"
    if baseline is not None:
        text += f"  -> ratio {rate / (baseline['rows'] / baseline['seconds']):.2f}"
    if cpu and "cpu" in figure:
        # SQLite runs in the process: its CPU time is the work, whatever the machine's load
        text += f"; CPU {figure['cpu']:.2f} s"
        if baseline is not None:
            text += f" -> CPU ratio {baseline['cpu'] / figure['cpu']:.2f}"
    return text


def run(dialect: str, args: argparse.Namespace, work: Path) -> None:
    # Here, not at the top: a child imports only what the command it measures imports, so
    # that its peak RSS is the command's (bench.scale alone loads the backups' crypto).
    from bench.api import SWARM_DIRECTOR, free_port, new_tasks, server
    from bench.scale import TASKS, Target, fill

    print(f"== {dialect}: {args.rows:,} logs over {args.months} months")
    target = Target(dialect, work)
    try:
        task_ids = new_tasks(target.database, TASKS)
        seconds, _first = fill(target, args.rows, args.months, task_ids)
        print(f"    filled in {seconds:.0f} s; load average {os.getloadavg()[0]:.1f}")
        url = target.url.render_as_string(hide_password=False)
        target.database.dispose()
        # Rounds interleave the baseline and every export; each figure is its best round, so
        # that a burst of load on the shared machine does not decide a ratio.
        runs: dict[str, list[dict[str, Any]]] = {}
        port = free_port()
        command = [*SWARM_DIRECTOR, "serve", "--database-url", url, "--port", str(port)]
        env = {k: v for k, v in os.environ.items() if k != "SWARM_API_TOKEN"}
        with server(command, port, env) if args.http else contextlib.nullcontext():
            for _round in range(args.rounds):
                runs.setdefault("baseline", []).append(
                    _in_child("baseline", url, str(work / "baseline.csv"))
                )
                for fmt in args.formats.split(","):
                    for jobs in args.jobs.split(","):
                        out = work / f"export.{fmt}"
                        figure = _in_child("export", url, str(out), fmt, jobs)
                        runs.setdefault(f"{fmt} -j {jobs}", []).append(figure)
                        out.unlink()
                if args.http:
                    runs.setdefault("http", []).append(_in_child("http", str(port)))
        best = {name: min(found, key=lambda r: r["seconds"]) for name, found in runs.items()}
        peaks = {name: max(r["peak_mb"] for r in found) for name, found in runs.items()}
        baseline = best["baseline"] | {"peak_mb": peaks["baseline"]}
        name = "raw COPY TO (csv) to a file" if dialect == "postgresql" else "raw sqlite3 cursor"
        print(f"    best of {args.rounds} rounds each, interleaved; peak RSS: the highest round")
        cpu = dialect == "sqlite"
        print(_line(name, baseline, None, cpu))
        for key, figure in best.items():
            if key == "baseline":
                continue
            assert figure["rows"] == baseline["rows"], (figure, baseline)
            label = "GET /api/export/logs (jsonl)" if key == "http" else f"export --format {key}"
            print(_line(label, figure | {"peak_mb": peaks[key]}, baseline, cpu))
        print(f"    load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        target.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        what, *rest = argv[1:]
        if what == "baseline":
            result = child_baseline(rest[0], Path(rest[1]))
        elif what == "export":
            result = child_export(rest[0], Path(rest[1]), rest[2], int(rest[3]))
        else:
            result = child_http(int(rest[0]))
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--formats", default="jsonl,csv,parquet")
    parser.add_argument("--http", action="store_true", help="add GET /api/export/logs (3)")
    parser.add_argument(
        "--jobs",
        default=f"1,{default_jobs('sqlite')}",
        help="worker processes of each export, a list (default: 1, and one a core up to 4)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    work = Path(tempfile.mkdtemp(prefix="sd-bench-export-"))
    try:
        for dialect in dialects:
            run(dialect, args, work)
    finally:
        for path in sorted(work.glob("**/*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
