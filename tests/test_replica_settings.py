"""The replica settings and the commit position, without any server: parsing, masking,
refusals, and the client keeping the highest position it was answered with."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from swarm_director import create_app
from swarm_director.client import AsyncClient, Client
from swarm_director.client.consistency import PositionTracker
from swarm_director.config import describe, make_settings
from swarm_director.errors import ConfigError
from swarm_director.schemas.consistency import POSITION_HEADER, format_position, parse_position


def test_replica_urls_are_split_and_shown_masked() -> None:
    settings = make_settings(
        {
            "SWARM_REPLICA_URLS": "postgresql://u:secret@r1/db, postgresql://u:hidden@r2/db",
        }
    )
    assert settings.replica_urls == ["postgresql://u:secret@r1/db", "postgresql://u:hidden@r2/db"]
    (row,) = [r for r in describe(settings) if r.env_name == "SWARM_REPLICA_URLS"]
    assert row.value == ["postgresql://u:***@r1/db", "postgresql://u:***@r2/db"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("sqlite:///x.db", "is not a PostgreSQL URL"),
        ("not a url at all", "cannot be read"),
    ],
)
def test_a_replica_url_that_is_not_postgresql_is_refused(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="SWARM_REPLICA_URLS") as raised:
        make_settings({"SWARM_REPLICA_URLS": value})
    assert problem in str(raised.value)


def test_replicas_of_a_sqlite_database_are_refused(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="needs a PostgreSQL DATABASE_URL"):
        create_app({"DATABASE_URL": "sqlite://", "SWARM_REPLICA_URLS": "postgresql://u@r/db"})


@pytest.mark.parametrize("text", ["0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/1A"])
def test_positions_read_back_as_written(text: str) -> None:
    assert format_position(parse_position(text)) == text


@pytest.mark.parametrize("text", ["", "16", "16/", "x/1", "1/2/3", "123456789/0", " 1 / 2 "])
def test_a_malformed_position_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=POSITION_HEADER):
        parse_position(text)


def test_the_client_keeps_the_highest_position() -> None:
    tracker = PositionTracker()
    assert tracker.headers({"A": "b"}) == {"A": "b"}

    def answer(position: str | None) -> httpx.Response:
        headers = {POSITION_HEADER: position} if position else {}
        return httpx.Response(200, headers=headers)

    for seen in ["0/10", "1/0", "0/FF", None, "garbage"]:
        tracker.observe(answer(seen))
    assert tracker.headers() == {POSITION_HEADER: "1/0"}


def _server(seen: list[str | None]) -> httpx.MockTransport:
    """Answers writes with a growing position and records the position each request sent."""
    count = iter(range(1, 100))

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(POSITION_HEADER))
        if request.method == "POST":
            position = format_position(next(count) << 32 | 0x10)
            body = {"task_id": 1, "inserted": 1}
            return httpx.Response(201, json=body, headers={POSITION_HEADER: position})
        return httpx.Response(200, json={"status": "ok", "version": "1"})

    return httpx.MockTransport(handle)


RECORD = [{"agent_type": "a", "message": "m"}]


def test_the_client_sends_its_newest_position_back() -> None:
    seen: list[str | None] = []
    with Client("http://x", transport=_server(seen)) as client:
        client.health()
        client.add_logs(1, RECORD)
        client.health()
        client.add_logs(1, RECORD)
        client.health()
    assert seen == [None, None, "1/10", "1/10", "2/10"]


async def _async_round(seen: list[str | None]) -> None:
    async with AsyncClient("http://x", transport=_server(seen)) as client:
        await client.health()
        await client.add_logs(1, RECORD)
        await client.health()


def test_the_async_client_sends_its_newest_position_back() -> None:
    seen: list[str | None] = []
    asyncio.run(_async_round(seen))
    assert seen == [None, None, "1/10"]
