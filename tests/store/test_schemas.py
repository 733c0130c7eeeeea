"""The pydantic bodies enforce the documented field rules and map ``metadata`` both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError as PydanticValidationError

from swarm_director.db import Database
from swarm_director.models import AgentLog, Conversation
from swarm_director.schemas import (
    AgentCreate,
    AgentOut,
    AgentUpdate,
    ConversationOut,
    DraftUpdate,
    EmailCreate,
    LogCreate,
    LogOut,
    MessageOut,
    TaskCreate,
    TaskPage,
    TaskUpdate,
    fields_from_pydantic,
)
from tests.store.conftest import new_agent, new_task


def errors_of(model: type, data: dict[str, object]) -> dict[str, str]:
    with pytest.raises(PydanticValidationError) as info:
        model.model_validate(data)  # type: ignore[attr-defined]
    return fields_from_pydantic(info.value)


def test_create_requires_fields_and_forbids_unknown_ones() -> None:
    fields = errors_of(TaskCreate, {"title": "x", "colour": "red"})
    assert set(fields) == {"type", "colour"}
    assert "Extra inputs" in fields["colour"]


@pytest.mark.parametrize(
    ("title", "ok"), [("t" * 200, True), ("t" * 201, False), ("   ", False), ("", False)]
)
def test_title_is_required_and_at_most_200(title: str, ok: bool) -> None:
    data = {"type": "analysis", "title": title}
    if ok:
        assert TaskCreate.model_validate(data).title == title
    else:
        assert "title" in errors_of(TaskCreate, data)


def test_names_are_bounded_and_stripped() -> None:
    assert AgentCreate(name="  director ", agent_type="supervisor").name == "director"  # type: ignore[arg-type]
    assert "name" in errors_of(AgentCreate, {"name": "n" * 101, "agent_type": "worker"})


def test_enums_reject_unknown_values() -> None:
    fields = errors_of(AgentCreate, {"name": "a", "agent_type": "wizard"})
    assert "agent_type" in fields and "supervisor" in fields["agent_type"]


@pytest.mark.parametrize("bad", [0, -3, True, 2**63, "x"])
def test_ids_are_positive_integers(bad: object) -> None:
    assert "parent_id" in errors_of(
        AgentCreate, {"name": "a", "agent_type": "worker", "parent_id": bad}
    )


@pytest.mark.parametrize(
    "address",
    ["ops@example.com", "first.last+tag@mail.example.co.uk", "x_y-z@sub-domain.example.org"],
)
def test_valid_email_addresses_pass(address: str) -> None:
    email = EmailCreate(recipient=address, subject="s", body="b", cc=[address])
    assert email.recipient == address


@pytest.mark.parametrize(
    "address",
    [
        "plainaddress",
        "no-domain@",
        "@no-local.com",
        "two@@signs.com",
        "space in@example.com",
        "dot.@example.com",
        "x@localhost",
        "x@-bad.com",
        "x@example.c",
        "a" * 65 + "@example.com",
        "x@" + "a" * 250 + ".com",
        "x@example.com\n",
    ],
)
def test_invalid_email_addresses_are_refused(address: str) -> None:
    fields = errors_of(
        EmailCreate, {"recipient": "ok@example.com", "subject": "s", "body": "b", "bcc": [address]}
    )
    assert list(fields) == ["bcc[0]"]


def test_email_cannot_be_created_as_sent() -> None:
    data = {"recipient": "a@example.com", "subject": "s", "body": "b", "status": "sent"}
    assert "status" in errors_of(EmailCreate, data)


def test_patch_keeps_only_sent_fields_and_refuses_null_for_required_columns() -> None:
    update = AgentUpdate.model_validate({"status": "busy", "parent_id": None})
    assert update.model_dump(exclude_unset=True) == {"status": "busy", "parent_id": None}
    assert errors_of(AgentUpdate, {"name": None}) == {"name": "may not be null"}
    assert "type" in errors_of(TaskUpdate, {"type": "analysis"})  # immutable, not in the body


def test_patch_schema_documents_non_null_type() -> None:
    name = AgentUpdate.model_json_schema()["properties"]["name"]
    assert name["type"] == "string" and "anyOf" not in name


def test_draft_update_cannot_carry_content() -> None:
    assert "content" in errors_of(DraftUpdate, {"content": "rewritten"})


def test_json_documents_must_be_objects_of_finite_json_values() -> None:
    base = {"agent_type": "worker", "message": "m"}
    assert "metadata" in errors_of(LogCreate, {**base, "metadata": [1, 2]})
    fields = errors_of(LogCreate, {**base, "metadata": {"x": float("nan")}})
    assert next(iter(fields)).startswith("metadata.x")
    assert "metadata.when" in next(
        iter(errors_of(LogCreate, {**base, "metadata": {"when": datetime.now(UTC)}}))
    )


def test_client_timestamps_are_normalised_to_utc() -> None:
    paris = timezone(timedelta(hours=2))
    log = LogCreate(agent_type="w", message="m", timestamp=datetime(2026, 5, 1, 12, tzinfo=paris))
    assert log.timestamp == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert log.timestamp is not None and log.timestamp.utcoffset() == timedelta(0)
    naive = LogCreate(agent_type="w", message="m", timestamp=datetime(2026, 5, 1, 12))
    assert naive.timestamp == datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_out_models_read_orm_rows_and_expose_metadata(db: Database) -> None:
    with db.transaction() as s:
        agent = new_agent(s, capabilities=["write"], config={"model": "x"})
        task = new_task(s)
        log = AgentLog(task_id=task.id, agent_type="w", message="m", meta={"k": 1})
        conversation = Conversation(title="c", meta={"topic": "q3"})
        s.add_all([log, conversation])
        s.flush()
        agent_json = AgentOut.model_validate(agent).model_dump(by_alias=True, mode="json")
        log_json = LogOut.model_validate(log).model_dump(by_alias=True, mode="json")
        conv_json = ConversationOut.model_validate(conversation).model_dump(
            by_alias=True, mode="json"
        )
    assert agent_json["capabilities"] == ["write"] and agent_json["config"] == {"model": "x"}
    assert agent_json["created_at"].endswith("Z") or agent_json["created_at"].endswith("+00:00")
    assert log_json["metadata"] == {"k": 1} and "meta" not in log_json
    assert conv_json["metadata"] == {"topic": "q3"}
    assert set(LogOut.model_json_schema(mode="serialization")["properties"]) >= {"metadata"}
    assert "meta" not in MessageOut.model_json_schema(mode="serialization")["properties"]


def test_pages_serialise_items_and_cursor() -> None:
    page = TaskPage(items=[], next_cursor=None)
    assert page.model_dump(mode="json") == {"items": [], "next_cursor": None}
