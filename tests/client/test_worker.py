"""The queue through the client against a real server: claim/heartbeat/complete/fail, and the
worker helper that heartbeats while the block works and completes or fails at its end."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from swarm_director.client import AsyncClient, Client, ConflictError
from tests.client.servers import TOKEN, ServeProcess


def _agent(client: Client, name: str) -> int:
    return client.create_agent({"name": f"{name}-{time.monotonic_ns()}", "agent_type": "worker"}).id


def test_claim_heartbeat_complete_and_a_stale_completion(client: Client) -> None:
    agent = _agent(client, "w")
    task = client.create_task({"type": "analysis", "title": "sum", "priority": "critical"})
    (claim,) = client.claim_tasks(agent, lease_s=30).claims
    assert claim.task.id == task.id
    beat = client.heartbeat(task.id, claim.lease_token, lease_s=120)
    assert beat.lease_expires_at > claim.lease_expires_at
    done = client.complete_task(task.id, claim.lease_token, {"sum": 42})
    assert (done.status, done.result) == ("completed", {"sum": 42})
    with pytest.raises(ConflictError):
        client.complete_task(task.id, claim.lease_token, {"sum": 0})
    history = client.list_task_history(task.id).items
    assert [h.action for h in history] == ["create", "claim", "complete"]
    assert {h.actor for h in history} == {"bootstrap"}


def test_the_worker_block_heartbeats_and_completes(client: Client) -> None:
    agent = _agent(client, "w")
    task = client.create_task({"type": "analysis", "title": "slow", "priority": "critical"})
    with client.work(agent, lease_s=0.6, wait_s=1) as job:
        assert job is not None and job.task.id == task.id
        time.sleep(1.5)  # longer than the lease: only the heartbeats keep it
        job.result = {"ok": True}
    assert job.outcome == "completed"
    stored = client.get_task(task.id)
    assert (stored.status, stored.result, stored.attempts) == ("completed", {"ok": True}, 1)


def test_an_exception_in_the_block_fails_the_task_with_its_message(client: Client) -> None:
    agent = _agent(client, "w")
    task = client.create_task(
        {"type": "analysis", "title": "bad", "priority": "critical", "max_attempts": 1}
    )
    with client.work(agent, wait_s=1) as job:
        raise RuntimeError("the model timed out\nsecond line")
    assert job is not None and job.outcome == "failed"
    stored = client.get_task(task.id)
    assert stored.status == "failed"
    assert stored.last_error == "RuntimeError: the model timed out"


def test_no_ready_task_yields_none_after_the_wait(client: Client) -> None:
    agent = _agent(client, "idle")
    started = time.monotonic()
    with client.work(agent, types=["document_review"], wait_s=0.3) as job:
        assert job is None
    assert time.monotonic() - started >= 0.3


def test_the_async_worker(server: ServeProcess) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, TOKEN) as client:
            agent = (await client.create_agent(
                {"name": f"async-{time.monotonic_ns()}", "agent_type": "worker"}
            )).id  # fmt: skip
            task = await client.create_task(
                {"type": "analysis", "title": "async", "priority": "critical"}
            )
            async with client.work(agent, lease_s=0.6, wait_s=1) as job:
                assert job is not None and job.task.id == task.id
                await asyncio.sleep(1.2)
                job.result = {"async": True}
            assert job.outcome == "completed"
            assert (await client.get_task(task.id)).result == {"async": True}

    asyncio.run(main())


def test_a_waiting_claim_through_the_client_gets_a_new_task(
    client: Client, server: ServeProcess
) -> None:
    agent = _agent(client, "waiter")
    got: list[float] = []

    def wait() -> None:
        with Client(server.url, TOKEN, timeout=2) as other:
            claims = other.claim_tasks(agent, types=["communication"], wait_s=5).claims
            got.append(time.monotonic())
            assert len(claims) == 1

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(2.5)  # past the client's 2 s read timeout
    client.create_task({"type": "communication", "title": "ping"})
    created = time.monotonic()
    waiter.join(10)
    assert got and got[0] - created < 1.0  # wait_s stretched the read timeout


def test_requeue_through_the_client(client: Client) -> None:
    agent = _agent(client, "r")
    task = client.create_task({"type": "analysis", "title": "stuck", "priority": "critical"})
    (claim,) = client.claim_tasks(agent, lease_s=0.2).claims
    assert claim.task.id == task.id
    time.sleep(0.3)
    again = client.requeue_task(task.id)
    assert (again.status, again.assigned_agent_id) == ("pending", None)
    with pytest.raises(ConflictError):
        client.requeue_task(task.id)
    assert client.list_task_history(task.id).items[-1].action == "requeue"
