"""AsyncClient against a real server: a representative subset (the surface is shared)."""

from __future__ import annotations

import asyncio

import pytest

from swarm_director.client import AsyncClient, ConflictError, NotFoundError
from tests.client.servers import TOKEN, ServeProcess


def test_async_round_trip(server: ServeProcess) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, TOKEN) as client:
            assert (await client.health()).status == "ok"
            task = await client.create_task({"type": "analysis", "title": "async"})
            await client.add_logs(
                task.id, [{"agent_type": "a", "message": f"m{i}"} for i in range(5)]
            )
            assert (await client.get_task(task.id)).title == "async"
            messages = [
                r.message async for r in client.iter_task_logs(task.id, order="asc", limit=2)
            ]
            assert messages == [f"m{i}" for i in range(5)]
            page = await client.list_logs(task_id=task.id, limit=3)
            assert len(page.items) == 3 and page.next_cursor is not None
            updated = await client.update_task(task.id, {"status": "in_progress"})
            assert updated.status == "in_progress"
            with pytest.raises(ConflictError):
                await client.update_task(task.id, {"status": "pending"})
            # Concurrent calls share the client's pool.
            got = await asyncio.gather(*(client.get_task(task.id) for _ in range(10)))
            assert {t.id for t in got} == {task.id}
            follow = client.follow_logs(task.id, idle_timeout=10)
            first = asyncio.ensure_future(follow.__anext__())
            await asyncio.sleep(1.0)
            await client.add_log(task.id, {"agent_type": "a", "message": "live"})
            assert (await asyncio.wait_for(first, 20)).message == "live"
            await follow.aclose()
            await client.delete_task(task.id)
            with pytest.raises(NotFoundError):
                await client.get_task(task.id)

    asyncio.run(main())
