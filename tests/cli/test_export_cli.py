"""``swarm-director export``: what it writes reads back, and bad input of every kind is one
clear line that writes nothing (no file, no half-written part)."""

from __future__ import annotations

import json
import sys
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from swarm_director.cli.export_cmd import default_jobs
from swarm_director.cli.main import cli
from swarm_director.db import Database, make_engine
from swarm_director.schemas.export import ExportFormat, ExportKind
from swarm_director.store import export, export_parallel, logs
from tests.dbtools import fresh_database
from tests.export_reading import read_back
from tests.store.conftest import new_task


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def url(dialect: str, tmp_path: Path) -> Iterator[str]:
    """A database at head holding a task with 30 logs (levels in turn)."""
    with fresh_database(dialect, tmp_path) as fresh:
        text = fresh.render_as_string(hide_password=False)
        assert run("db", "init", "--database-url", text)[0] == 0
        db = Database(make_engine(text))
        with db.transaction() as session:
            task = new_task(session, title="exported")
            rows = [
                {"agent_type": "w", "message": f"m{n}", "log_level": ["info", "error"][n % 2]}
                for n in range(30)
            ]
            logs.add_logs(session, task.id, rows)
        db.dispose()
        yield text


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_an_export_says_what_it_wrote_and_reads_back(url: str, out_dir: Path, dialect: str) -> None:
    out = out_dir / "errors.csv"
    code, text = run(
        "export", "logs", "--filter", "level=error", "--since", "1d", "-o", str(out),
        "--database-url", url,
    )  # fmt: skip
    assert code == 0, text
    assert text.startswith(f"exported 15 logs to {out} (csv, ")
    rows = read_back(out, "csv", export.export_fields(ExportKind.LOGS))
    assert [r["message"] for r in rows] == [f"m{n}" for n in range(1, 30, 2)]
    assert {r["log_level"] for r in rows} == {"error"}

    code, text = run(
        "export", "tasks", "--format", "parquet", "-o", str(out_dir / "t.pq"), "--json",
        "--database-url", url,
    )  # fmt: skip
    assert code == 0, text
    assert json.loads(text) | {"seconds": 0} == {
        "kind": "tasks",
        "format": "parquet",
        "rows": 1,
        "bytes": (out_dir / "t.pq").stat().st_size,
        "file": str(out_dir / "t.pq"),
        "jobs": default_jobs(dialect),
        "seconds": 0,
    }
    assert (
        read_back(out_dir / "t.pq", "parquet", export.export_fields(ExportKind.TASKS))[0]["title"]
        == "exported"
    )


def _only_one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["--format", "xlsx"], 2, "'xlsx' is not one of 'jsonl', 'csv', 'parquet'"),
        (["--since", "yesterday"], 2, "'yesterday' is neither a duration"),
        (["--until", "2026-13-45"], 2, "neither a duration (7d, 12h) nor an ISO 8601"),
        (["--filter", "colour=red"], 2, "no filter 'colour'; they have level, agent_type"),
        (["--filter", "level"], 2, "'level' is not NAME=VALUE"),
        (["--filter", "level=info", "-f", "level=error"], 2, "level is given twice"),
        (["--filter", "level=loud"], 1, "Error: invalid filter at level: Input should be"),
        (["--filter", "task_id=-3"], 1, "Error: invalid filter at task_id:"),
        (["--filter", "q=!!!"], 1, "holds no word to search for"),
        (["--cursor", "0"], 2, "0 is not in the range x>=1"),
        (["--jobs", "0"], 2, "0 is not in the range 1<=x<=16"),
        (["--cursor", "999999"], 1, "invalid cursor: no log has the id 999999 (deleted since?)"),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(
    url: str, out_dir: Path, args: list[str], status: int, says: str
) -> None:
    out = out_dir / "logs.jsonl"
    code, text = run("export", "logs", "-o", str(out), *args, "--database-url", url)
    assert code == status, text
    assert says in text
    if status == 1:
        assert _only_one_line(text).startswith("Error: ")
    assert list(out_dir.iterdir()) == []


def test_the_format_comes_from_the_suffix_or_must_be_given(url: str, out_dir: Path) -> None:
    code, text = run("export", "history", "-o", str(out_dir / "h.txt"), "--database-url", url)
    assert code == 2 and "give --format: h.txt does not end in .jsonl, .csv, .parquet" in text
    assert list(out_dir.iterdir()) == []
    code, text = run("export", "history", "-o", str(out_dir / "h.jsonl"), "--database-url", url)
    assert code == 0 and "exported 1 history to" in text  # the task's creation


def test_an_existing_file_is_kept_unless_forced(url: str, out_dir: Path) -> None:
    out = out_dir / "logs.jsonl"
    out.write_text("precious\n")
    code, text = run("export", "logs", "-o", str(out), "--database-url", url)
    assert code == 1 and _only_one_line(text) == (
        f"Error: {out} already exists; choose a new name or pass --force"
    )
    assert out.read_text() == "precious\n"
    code, text = run("export", "logs", "-o", str(out), "--force", "--database-url", url)
    assert code == 0, text
    assert len(out.read_text().splitlines()) == 30
    assert sorted(p.name for p in out_dir.iterdir()) == ["logs.jsonl"]


def test_a_missing_folder_is_named(url: str, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "logs.csv"
    code, text = run("export", "logs", "-o", str(out), "--database-url", url)
    assert code == 1
    assert _only_one_line(text) == f"Error: {out.parent} does not exist; create the folder first"


def test_parquet_without_pyarrow_names_the_extra(
    url: str, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    code, text = run("export", "logs", "-o", str(out_dir / "l.parquet"), "--database-url", url)
    assert code == 1
    assert _only_one_line(text) == (
        "Error: Parquet needs pyarrow: pip install 'swarm-director[parquet]'"
    )
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_a_failure_while_writing_leaves_no_file(
    url: str, out_dir: Path, monkeypatch: pytest.MonkeyPatch, fmt: ExportFormat
) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 10)

    def failing(chunks: Generator[Any]) -> Iterator[Any]:
        # The read fails after two chunks were written (a connection lost, say).
        with closing(chunks):
            yield next(chunks)
            yield next(chunks)
            raise OSError(28, "No space left on device")

    text_chunks = export.text_chunks
    monkeypatch.setattr(export, "text_chunks", lambda *a: failing(text_chunks(*a)))
    out = out_dir / f"logs.{fmt}"
    code, text = run("export", "logs", "-o", str(out), "--jobs", "1", "--database-url", url)
    assert code == 1 and _only_one_line(text) == "Error: No space left on device"
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_worker_processes_write_the_same_file(url: str, out_dir: Path, fmt: ExportFormat) -> None:
    files = {}
    for jobs in (1, 2):
        files[jobs] = out_dir / f"logs-{jobs}.{fmt}"
        code, text = run(
            "export", "logs", "-o", str(files[jobs]), "--jobs", str(jobs), "--json",
            "--database-url", url,
        )  # fmt: skip
        assert code == 0, text
        assert json.loads(text)["jobs"] == jobs and json.loads(text)["rows"] == 30
    if fmt is ExportFormat.PARQUET:  # the same rows (Parquet's bytes hold the writer's name)
        fields = export.export_fields(ExportKind.LOGS)
        assert read_back(files[2], "parquet", fields) == read_back(files[1], "parquet", fields)
    else:
        assert files[2].read_bytes() == files[1].read_bytes()


def test_a_failing_worker_leaves_no_file(
    url: str, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_parallel, "_lines", broken)
    out = out_dir / "logs.csv"
    code, text = run("export", "logs", "-o", str(out), "--jobs", "2", "--database-url", url)
    assert code == 1 and _only_one_line(text) == (
        "Error: an export worker failed: OSError: [Errno 28] No space left on device"
    )
    assert list(out_dir.iterdir()) == []
