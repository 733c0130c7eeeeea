"""A batch whose response is lost after the server committed it is retried and stored once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swarm_director.client import Client, RetryPolicy, ServerUnreachableError
from tests.client.lossy_proxy import LossyProxy
from tests.client.servers import TOKEN, ServeProcess


@pytest.fixture
def proxy(server: ServeProcess) -> Iterator[LossyProxy]:
    """Drops answers to POSTs under /api/tasks (batch ingest and task creation)."""
    lossy = LossyProxy(server.port, match=b"POST /api/tasks")
    yield lossy
    lossy.close()


def test_a_batch_whose_response_was_lost_is_stored_once(proxy: LossyProxy, client: Client) -> None:
    task = client.create_task({"type": "analysis", "title": "lost response"})
    rows = [{"agent_type": "agent", "message": f"row {i}"} for i in range(250)]
    proxy.drop(2)  # the first two answers never reach the client
    with Client(proxy.url, TOKEN, retry=RetryPolicy(attempts=5, backoff=0.05)) as via_proxy:
        result = via_proxy.add_logs(task.id, rows)
    assert proxy.dropped == 2
    assert result.inserted == 250  # the replayed answer of the first, committed, attempt
    stored = list(client.iter_task_logs(task.id, order="asc", limit=1000))
    assert [r.message for r in stored] == [f"row {i}" for i in range(250)]


def test_a_create_whose_response_was_lost_is_not_repeated(
    proxy: LossyProxy, client: Client
) -> None:
    user = "lost-create-user"
    proxy.drop(1)
    policy = RetryPolicy(attempts=5, backoff=0.05)
    with (
        Client(proxy.url, TOKEN, retry=policy) as via_proxy,
        pytest.raises(ServerUnreachableError),
    ):
        via_proxy.create_task({"type": "analysis", "title": "once", "user_id": user})
    assert len(client.list_tasks(user_id=user).items) == 1  # stored, and only once
