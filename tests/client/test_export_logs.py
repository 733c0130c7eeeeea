"""``Client.export_logs`` / ``AsyncClient.export_logs`` against a real server: the file holds
exactly what ``GET /api/export/logs`` sends, a broken connection is resumed without loss or
repetition, and an export that fails leaves no file behind."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarm_director.client import (
    AsyncClient,
    Client,
    NotFoundError,
    RetryPolicy,
    ServerUnreachableError,
    ValidationError,
)
from tests.client.servers import TOKEN, ServeProcess

ROWS = 300
FAST = RetryPolicy(attempts=5, backoff=0.01, max_backoff=0.05)


@pytest.fixture(scope="module")
def task_id(server: ServeProcess) -> int:
    """A task with ROWS logs; some messages hold quotes and line breaks (a CSV row of them
    spans lines)."""
    with Client(server.url, TOKEN, timeout=15) as client:
        task = client.create_task({"type": "analysis", "title": "export"})
        records = [
            {
                "agent_type": "exporter",
                "message": f'row {i} says "hi"\nand goes on' if i % 7 == 0 else f"row {i}",
                "log_level": "warning" if i % 3 == 0 else "info",
                "metadata": {"i": i},
            }
            for i in range(ROWS)
        ]
        for start in range(0, ROWS, 100):
            client.add_logs(task.id, records[start : start + 100])
        return task.id


def _served(server: ServeProcess, **params: Any) -> bytes:
    """The body the server sends for these parameters, read in one piece (once the slot of
    an export cut just before is free: one export per key at a time)."""
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(
            f"{server.url}/api/export/logs",
            params=params,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        if response.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status_code == 200, response.text
    return response.content


def _ids(body: bytes) -> list[int]:
    return [json.loads(line)["id"] for line in body.splitlines()]


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class _Cut(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, after: int) -> None:
        self.stream, self.after = stream, after

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.stream:
            if sent + len(chunk) > self.after:
                yield chunk[: self.after - sent]
                raise httpx.ReadError("connection reset mid-body")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self.stream.close()


class _AsyncCut(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, after: int) -> None:
        self.stream, self.after = stream, after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self.stream:
            if sent + len(chunk) > self.after:
                yield chunk[: self.after - sent]
                raise httpx.ReadError("connection reset mid-body")
            sent += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


def _cut_response(response: httpx.Response, stream: Any) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=stream,
        extensions=response.extensions,
    )


class CuttingTransport(httpx.HTTPTransport):
    """The real connection, but every export body breaks after ``after`` bytes."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.exports = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != "/api/export/logs" or response.status_code != 200:
            return response
        self.exports += 1
        assert isinstance(response.stream, httpx.SyncByteStream)
        return _cut_response(response, _Cut(response.stream, self.after))


class AsyncCuttingTransport(httpx.AsyncHTTPTransport):
    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.exports = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path != "/api/export/logs" or response.status_code != 200:
            return response
        self.exports += 1
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return _cut_response(response, _AsyncCut(response.stream, self.after))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_file_holds_what_the_server_exports(
    server: ServeProcess, client: Client, task_id: int, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"logs.{fmt}"
    result = client.export_logs(out, format=fmt, task_id=task_id)  # type: ignore[arg-type]
    served = _served(server, task_id=task_id, format=fmt)
    assert out.read_bytes() == served
    assert _left_in(tmp_path) == [out.name]  # no part file left
    assert out.stat().st_mode & 0o777 == 0o600
    assert (result.rows, result.bytes, result.path) == (ROWS, len(served), out)
    last = _ids(_served(server, task_id=task_id))[-1]
    assert result.cursor == last


def test_filters_and_cursor_narrow_the_export(
    server: ServeProcess, client: Client, task_id: int, tmp_path: Path
) -> None:
    everything = _ids(_served(server, task_id=task_id, level="warning"))
    out = tmp_path / "warnings.jsonl"
    first = client.export_logs(out, task_id=task_id, level="warning")
    assert _ids(out.read_bytes()) == everything
    assert all(json.loads(line)["log_level"] == "warning" for line in out.read_bytes().splitlines())
    # An incremental export: only what comes after the cursor.
    cursor = everything[40]
    later = client.export_logs(out, task_id=task_id, level="warning", cursor=cursor)
    assert _ids(out.read_bytes()) == everything[41:]
    assert later.rows == len(everything) - 41 and later.cursor == first.cursor
    last = _ids(_served(server, task_id=task_id))[-1]
    empty = client.export_logs(out, task_id=task_id, cursor=last)
    assert (empty.rows, empty.cursor, out.read_bytes()) == (0, last, b"")


def test_a_file_object_receives_the_rows(
    server: ServeProcess, client: Client, task_id: int
) -> None:
    sink = io.BytesIO()
    result = client.export_logs(sink, format="csv", task_id=task_id)
    assert sink.getvalue() == _served(server, task_id=task_id, format="csv")
    assert result.path is None and result.rows == ROWS


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_body_cut_again_and_again_is_resumed_without_loss_or_repeat(
    server: ServeProcess, task_id: int, tmp_path: Path, fmt: str
) -> None:
    transport = CuttingTransport(after=5000)
    out = tmp_path / f"resumed.{fmt}"
    with Client(server.url, TOKEN, timeout=15, retry=FAST, transport=transport) as client:
        result = client.export_logs(out, format=fmt, task_id=task_id)  # type: ignore[arg-type]
    assert out.read_bytes() == _served(server, task_id=task_id, format=fmt)  # one CSV header
    assert result.rows == ROWS
    assert transport.exports > 5  # it was cut (and resumed) many times


def test_a_failure_mid_stream_leaves_no_file(
    server: ServeProcess, task_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "broken.jsonl"
    transport = CuttingTransport(after=5000)
    no_retry = RetryPolicy(attempts=1)
    with Client(server.url, TOKEN, timeout=15, retry=no_retry, transport=transport) as client:
        with pytest.raises(ServerUnreachableError, match="ReadError"):
            client.export_logs(out, task_id=task_id)
        assert _left_in(tmp_path) == []
        _served(server, task_id=task_id)  # the cut export's slot is free again
        out.write_bytes(b"an earlier export\n")  # a file already there stays as it was
        with pytest.raises(ServerUnreachableError):
            client.export_logs(out, task_id=task_id)
    assert out.read_bytes() == b"an earlier export\n"
    assert _left_in(tmp_path) == [out.name]
    assert transport.exports == 2


def test_bad_input_is_refused_and_writes_nothing(
    client: Client, task_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "logs.jsonl"
    with pytest.raises(ValidationError) as bad_level:
        client.export_logs(out, level="loud")
    assert "level" in bad_level.value.fields
    with pytest.raises(NotFoundError):
        client.export_logs(out, task_id=10**9)
    with pytest.raises(TypeError, match="colour"):
        client.export_logs(out, colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="parquet"):
        client.export_logs(out, format="parquet")  # type: ignore[arg-type]
    with pytest.raises(IsADirectoryError):
        client.export_logs(tmp_path)
    with pytest.raises(FileNotFoundError):
        client.export_logs(tmp_path / "missing" / "logs.jsonl")
    assert _left_in(tmp_path) == []


def test_async_export_resumes_and_fails_like_the_blocking_one(
    server: ServeProcess, task_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "async.csv"

    async def main() -> None:
        transport = AsyncCuttingTransport(after=5000)
        async with AsyncClient(server.url, TOKEN, retry=FAST, transport=transport) as client:
            result = await client.export_logs(out, format="csv", task_id=task_id)
        assert result.rows == ROWS and transport.exports > 5
        assert out.read_bytes() == _served(server, task_id=task_id, format="csv")
        out.unlink()
        no_retry = RetryPolicy(attempts=1)
        transport = AsyncCuttingTransport(after=5000)
        async with AsyncClient(server.url, TOKEN, retry=no_retry, transport=transport) as client:
            with pytest.raises(ServerUnreachableError):
                await client.export_logs(out, task_id=task_id)
            with pytest.raises(ValidationError):
                await client.export_logs(out, since="yesterday")

    asyncio.run(main())
    assert _left_in(tmp_path) == []
