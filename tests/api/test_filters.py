"""Each listing's filters are one object (schemas/filters.py) that flows from the client, the
API's query and the console to the store: every field of a filter model, with no code of its
own, arrives in the store as the filter the store reads. A new field is therefore one edit to
the model, plus its condition in the store, which the store refuses to go without."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, get_type_hints

import httpx
import pytest
from flask import Flask

from swarm_director import create_app
from swarm_director.api import streams
from swarm_director.client import Client
from swarm_director.client.errors import NotFoundError as ClientNotFound
from swarm_director.errors import NotFoundError
from swarm_director.schemas import filters as filter_module
from swarm_director.schemas.filters import (
    CLIENT_ARGS,
    AgentFilter,
    ConversationFilter,
    EmailFilter,
    FilterModel,
    HistoryFilter,
    LogFilter,
    MessageFilter,
    TaskEmailFilter,
    TaskFilter,
    TaskLogFilter,
)
from swarm_director.store import agents, conversations, emails, history, logs, tasks
from swarm_director.store.filtering import FilterRules
from swarm_director.web.context import database
from tests.api.conftest import AppFactory

TASK, CONVERSATION = 1, 1


@dataclass(frozen=True)
class Listing:
    """One listing: its filter, the store function that receives it, the client call, the
    console page (if it has filters) and the API route."""

    model: type[FilterModel]
    store: tuple[Any, str]
    call: Callable[[Client, dict[str, str]], Any]
    console: str | None
    route: str
    #: Filled in from the URL's path: the store gets ``wide.of(filter, **path)``.
    path: dict[str, int] | None = None
    wide: type[FilterModel] = LogFilter


def _follow(client: Client, task_id: int | None, given: dict[str, str]) -> Any:
    return next(iter(client.follow_logs(task_id, **given)))  # type: ignore[arg-type]


LISTINGS = [
    Listing(LogFilter, (logs, "list_logs"), lambda c, f: c.list_logs(**f), "/ui/logs", "/logs"),
    Listing(
        TaskLogFilter,
        (logs, "list_logs"),
        lambda c, f: c.list_task_logs(TASK, **f),  # type: ignore[arg-type]
        f"/ui/tasks/{TASK}",
        "/tasks/{task_id}/logs",
        path={"task_id": TASK},
    ),
    Listing(
        LogFilter,
        (streams, "LogFollower"),
        lambda c, f: _follow(c, int(f["task_id"]), {k: v for k, v in f.items() if k != "task_id"}),
        None,
        "/logs/stream",
    ),
    Listing(
        TaskLogFilter,
        (streams, "LogFollower"),
        lambda c, f: _follow(c, TASK, f),
        None,
        "/tasks/{task_id}/logs/stream",
        path={"task_id": TASK},
    ),
    Listing(
        TaskFilter, (tasks, "list_tasks"), lambda c, f: c.list_tasks(**f), "/ui/tasks", "/tasks"
    ),
    Listing(AgentFilter, (agents, "list_agents"), lambda c, f: c.list_agents(**f), None, "/agents"),
    Listing(EmailFilter, (emails, "list_emails"), lambda c, f: c.list_emails(**f), None, "/emails"),
    Listing(
        TaskEmailFilter,
        (emails, "list_emails"),
        lambda c, f: c.list_task_emails(TASK, **f),
        None,
        "/tasks/{task_id}/emails",
        path={"task_id": TASK},
        wide=EmailFilter,
    ),
    Listing(
        ConversationFilter,
        (conversations, "list_conversations"),
        lambda c, f: c.list_conversations(**f),  # type: ignore[arg-type]
        "/ui/conversations",
        "/conversations",
    ),
    Listing(
        MessageFilter,
        (conversations, "list_messages"),
        lambda c, f: c.list_messages(CONVERSATION, **f),
        None,
        "/conversations/{conversation_id}/messages",
    ),
    Listing(
        HistoryFilter,
        (history, "list_history"),
        lambda c, f: c.list_history(**f),
        "/ui/activity",
        "/history",
    ),
]


def _sample(field: dict[str, Any], defs: dict[str, Any]) -> str:
    """A valid query-string value for a filter, from its JSON schema (so a new field needs
    nothing here)."""
    schema = next(s for s in field.get("anyOf", [field]) if s.get("type") != "null")
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if "enum" in schema:
        return str(schema["enum"][-1])
    if schema.get("format") == "date-time":
        return "2026-01-02T03:04:05+00:00"
    if schema.get("type") == "integer":
        return "1"
    if schema.get("type") == "boolean":
        return "true"
    assert schema.get("type") == "string", field
    return "abc"


def samples(model: type[FilterModel]) -> dict[str, str]:
    """Every filter of ``model`` set, as query-string text."""
    schema = model.model_json_schema()
    return {
        name: _sample(schema["properties"][name], schema.get("$defs", {}))
        for name in model.filter_names()
    }


class Spy:
    """Stands in for a store function (or the live tail's follower): keeps the filter object
    it was handed and answers 404, so nothing else runs."""

    def __init__(self) -> None:
        self.received: list[FilterModel] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        found = [a for a in (*args, *kwargs.values()) if isinstance(a, FilterModel)]
        assert len(found) == 1, (args, kwargs)
        self.received.append(found[0])
        raise NotFoundError("stopped by the test")


@pytest.fixture
def app(make_app: AppFactory) -> Iterator[Flask]:
    app = make_app()
    with database(app).transaction() as s:
        assert tasks.create_task(s, {"type": "analysis", "title": "t"}).id == TASK
        assert conversations.create_conversation(s, {"title": "c"}).id == CONVERSATION
    yield app


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda listing: listing.route)
def test_every_filter_flows_from_client_and_console_to_the_store(
    app: Flask, listing: Listing, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = samples(listing.model)
    expected = listing.model.model_validate(given)
    wanted = listing.wide.of(expected, **listing.path) if listing.path else expected
    assert set(wanted.given()) >= set(listing.model.filter_names())  # every one is set
    spy = Spy()
    monkeypatch.setattr(*listing.store, spy)

    transport = httpx.WSGITransport(app=app)
    with (
        Client("http://api.test", transport=transport) as client,
        pytest.raises(ClientNotFound) as stopped,
    ):
        listing.call(client, given)
    assert "stopped by the test" in str(stopped.value)
    assert [r.given() for r in spy.received] == [wanted.given()]

    if listing.console is not None:
        response = app.test_client().get(listing.console, query_string=given)
        assert response.status_code == 404, response.get_data(as_text=True)
        assert [r.given() for r in spy.received[1:]] == [wanted.given()]


def test_every_filter_is_a_query_parameter_of_its_route() -> None:
    api = create_app({"DATABASE_URL": "sqlite://", "SWARM_API_TOKEN": None, "TESTING": True})
    try:
        document = api.test_client().get("/api/openapi.json").get_json()
    finally:
        database(api).dispose()
    for listing in LISTINGS:
        operation = document["paths"][f"/api{listing.route}"]["get"]
        query = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        names = set(listing.model.filter_names())
        assert names <= query, (listing.route, names - query)
        assert not (set(listing.path or {}) & query), listing.route  # the path names those


def test_every_filter_model_is_listed_here_and_typed_for_the_client() -> None:
    defined = {
        value
        for value in vars(filter_module).values()
        if isinstance(value, type) and issubclass(value, FilterModel) and value is not FilterModel
    }
    assert defined == {listing.model for listing in LISTINGS}
    assert set(CLIENT_ARGS) == defined
    for model, args in CLIENT_ARGS.items():
        assert set(get_type_hints(args)) == set(model.filter_names()), model


def test_the_store_refuses_a_filter_it_has_no_condition_for() -> None:
    class Wider(LogFilter):
        message_prefix: str | None = None

    declared = logs.LOG_FILTERS.rules
    with pytest.raises(TypeError, match="Wider: no store rule for message_prefix"):
        FilterRules(Wider, **declared)
    with pytest.raises(TypeError, match="LogFilter has no filter colour"):
        FilterRules(LogFilter, **declared, colour=logs.AgentLog.message)
    for rules in (
        tasks.TASK_FILTERS,
        conversations.CONVERSATION_FILTERS,
        history.HISTORY_FILTERS,
        agents.AGENT_FILTERS,
        emails.EMAIL_FILTERS,
    ):
        assert set(rules.rules) == set(rules.model.filter_names())
