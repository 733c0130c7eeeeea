"""Typed errors and the retry rules, against scripted answers (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from swarm_director.client import (
    AsyncClient,
    Client,
    ClientError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RetryPolicy,
    ServerUnreachableError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)

FAST = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.02)
TASK = {
    "id": 1,
    "type": "analysis",
    "user_id": None,
    "status": "pending",
    "title": "t",
    "description": None,
    "priority": "medium",
    "assigned_agent_id": None,
    "parent_task_id": None,
    "conversation_id": None,
    "completed_at": None,
    "created_at": "2026-12-01T00:00:00Z",
    "updated_at": "2026-12-01T00:00:00Z",
}


def _error(status: int, code: str, details: dict[str, object] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "details": details or {}}}
    return httpx.Response(status, json=body)


def _scripted(
    answers: list[httpx.Response | Exception], seen: list[httpx.Request]
) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle


def _client(answers: list[httpx.Response | Exception], seen: list[httpx.Request]) -> Client:
    transport = httpx.MockTransport(_scripted(answers, seen))
    return Client("http://api.test", "tok", retry=FAST, transport=transport)


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (401, "unauthorized", UnauthorizedError),
        (403, "forbidden", ForbiddenError),
        (404, "not_found", NotFoundError),
        (409, "conflict", ConflictError),
        (422, "validation_error", ValidationError),
        (503, "unavailable", UnavailableError),
        (413, "payload_too_large", ClientError),
    ],
)
def test_error_responses_become_typed_errors(
    status: int, code: str, error_type: type[ClientError]
) -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [_error(status, code, {"fields": {"x": "bad"}})]
    with _client(answers * 4, seen) as client, pytest.raises(error_type) as raised:
        client.create_task({"type": "analysis", "title": "t"})
    error = raised.value
    assert (error.status, error.code, error.message) == (status, code, f"{code} happened")
    assert error.details == {"fields": {"x": "bad"}}
    assert len(seen) == 1  # a POST is not repeated, not even after a 503
    assert seen[0].headers["Authorization"] == "Bearer tok"


def test_validation_error_names_fields() -> None:
    seen: list[httpx.Request] = []
    answer = _error(422, "validation_error", {"fields": {"title": "Field required"}})
    with _client([answer], seen) as client, pytest.raises(ValidationError) as raised:
        client.create_task({"type": "analysis"})
    assert raised.value.fields == {"title": "Field required"}


def test_a_non_json_error_page_still_gives_a_typed_error() -> None:
    seen: list[httpx.Request] = []
    page = httpx.Response(502, text="<html>Bad Gateway</html>\n")
    with _client([page], seen) as client, pytest.raises(UnavailableError) as raised:
        client.create_task({"type": "analysis", "title": "t"})
    assert raised.value.code == "http_502" and "Bad Gateway" in raised.value.message


def test_idempotent_reads_are_retried_on_503_and_lost_connections() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        _error(503, "unavailable"),
        httpx.ReadError("connection reset"),
        httpx.Response(504),
        httpx.Response(200, json=TASK),
    ]
    with _client(answers, seen) as client:
        assert client.get_task(1).title == "t"
    assert len(seen) == 4


def test_retries_give_up_after_the_policy_s_attempts() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [_error(503, "unavailable")] * 4
    with _client(answers, seen) as client, pytest.raises(UnavailableError):
        client.get_task(1)
    assert len(seen) == FAST.attempts


def test_retry_after_is_honoured() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.Response(200, json=TASK),
    ]
    started = time.monotonic()
    with _client(answers, seen) as client:
        client.get_task(1)
    assert time.monotonic() - started >= 1.0
    assert len(seen) == 2


def test_a_retry_after_beyond_the_limit_is_not_waited_for() -> None:
    seen: list[httpx.Request] = []
    answer = httpx.Response(503, headers={"Retry-After": "3600"})
    with _client([answer], seen) as client, pytest.raises(UnavailableError):
        client.get_task(1)
    assert len(seen) == 1


def test_writes_are_not_retried_after_a_lost_connection_but_are_when_nothing_was_sent() -> None:
    seen: list[httpx.Request] = []
    lost: list[httpx.Response | Exception] = [httpx.ReadError("reset")]
    with _client(lost, seen) as client, pytest.raises(ServerUnreachableError):
        client.create_task({"type": "analysis", "title": "t"})
    assert len(seen) == 1  # the server may have stored it: not repeated
    seen.clear()
    answers: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.Response(201, json=TASK),
    ]
    with _client(answers, seen) as client:
        assert client.create_task({"type": "analysis", "title": "t"}).id == 1
    assert len(seen) == 2  # connection refused: nothing was sent, safe to repeat


def test_batch_ingest_is_retried_with_the_same_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.ReadError("reset after the commit"),
        _error(503, "unavailable"),
        httpx.Response(201, json={"task_id": 1, "inserted": 2}),
    ]
    with _client(answers, seen) as client:
        result = client.add_logs(1, [{"agent_type": "a", "message": "m"}] * 2)
    assert result.inserted == 2
    keys = {request.headers["Idempotency-Key"] for request in seen}
    assert len(seen) == 3 and len(keys) == 1 and len(keys.pop()) >= 16
    assert len({request.content for request in seen}) == 1


def test_the_async_client_retries_alike() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.ReadError("reset"),
        httpx.Response(201, json={"task_id": 1, "inserted": 1}),
    ]
    handler = _scripted(answers, seen)

    async def main() -> int:
        transport = httpx.MockTransport(handler)
        async with AsyncClient("http://api.test", retry=FAST, transport=transport) as client:
            return (await client.add_logs(1, [{"agent_type": "a", "message": "m"}])).inserted

    assert asyncio.run(main()) == 1
    assert (
        len(seen) == 2 and seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]
    )


def test_query_parameters_include_q_and_drop_unset_filters() -> None:
    seen: list[httpx.Request] = []
    page = httpx.Response(200, json={"items": [], "next_cursor": None})
    with _client([page, page], seen) as client:
        client.list_logs(task_id=3, level="warning", q='"disk full" retry')
        client.list_tasks()
    assert dict(seen[0].url.params) == {
        "task_id": "3",
        "level": "warning",
        "q": '"disk full" retry',
    }
    assert dict(seen[1].url.params) == {}


def test_async_client_has_the_same_methods_as_the_client() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert public(AsyncClient) == public(Client)
    assert {"create_task", "iter_logs", "follow_logs", "add_logs", "diff_drafts"} <= public(Client)


def test_importing_the_client_loads_no_database_or_web_framework() -> None:
    code = (
        "import sys, swarm_director.client\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'flask', 'werkzeug', 'psycopg', 'gunicorn', 'alembic', 'flask_openapi3'})\n"
        "ours = sorted(m for m in sys.modules if m.startswith('swarm_director.') and not "
        "m.startswith(('swarm_director.client', 'swarm_director.schemas',"
        " 'swarm_director.enums', 'swarm_director.log_batching')))\n"
        "print(bad, ours)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"
