"""What one free-form JSON value may cost: counted on its text, enforced on every store path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from swarm_director.config import Settings
from swarm_director.errors import ValidationError
from swarm_director.models import AgentLog
from swarm_director.schemas.json_limits import (
    DEFAULT_LIMITS,
    JSONLimits,
    applied,
    count_values,
    values_over,
    where_count_passes,
)
from swarm_director.store import agents, conversations, logs
from tests.store.conftest import new_task

json_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab,[]{}:" \\\n\u00e9'), max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=30,
)


def values_in(value: Any) -> int:
    """Ground truth: the values of a parsed document, itself included, keys not."""
    if isinstance(value, dict):
        return 1 + sum(values_in(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(values_in(v) for v in value)
    return 1


@settings(max_examples=300, deadline=None)
@given(json_documents, st.sampled_from([None, 0, 2]))
def test_values_are_counted_on_the_text_as_a_parser_counts_them(
    document: Any, indent: int | None
) -> None:
    text = json.dumps(document, indent=indent, ensure_ascii=False).encode()
    assert count_values(text) == values_in(document)
    for limit in (0, 1, 5, 50):
        over = values_over(text, limit)
        assert (over is not None) == (values_in(document) > limit), (text, limit)
        assert over is None or limit < over <= values_in(document)


def test_a_text_of_many_strings_is_counted_alike() -> None:
    # Past a thousand strings the count runs on a copy with the strings emptied.
    document = {"rows": [{"k,[": "a,[{", "n": [1, "]}", {}]} for _ in range(2000)]}
    text = json.dumps(document).encode()
    assert text.count(b'"') > 2000
    assert count_values(text) == values_in(document)
    assert values_over(text, values_in(document)) is None
    assert values_over(text, values_in(document) - 1) == values_in(document)


def test_where_the_count_passes_names_the_growing_field() -> None:
    text = json.dumps({"message": "m", "metadata": {"a": [{}] * 100}}).encode()
    assert where_count_passes(text, 50) == ("metadata", "a")
    batch = json.dumps([{"metadata": {"k": list(range(100))}}]).encode()
    assert where_count_passes(batch, 50) == (0, "metadata", "k")
    assert where_count_passes(b"[" + b"1," * 99 + b"1]", 50) == ()


def test_the_defaults_are_the_settings_defaults() -> None:
    fields = Settings.model_fields
    defaults = JSONLimits(fields["max_json_bytes"].default, fields["max_json_items"].default)
    assert defaults == DEFAULT_LIMITS


def _log(metadata: dict[str, Any]) -> dict[str, Any]:
    return {"agent_type": "a", "message": "m", "metadata": metadata}


TOO_MANY = {"a": [0] * DEFAULT_LIMITS.max_items}  # the list itself is one more value
TOO_LARGE = {"a": "x" * DEFAULT_LIMITS.max_bytes}
AT_THE_LIMITS = {"a": [0] * (DEFAULT_LIMITS.max_items - 1)}


def _stored_logs(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AgentLog)) or 0)


@pytest.mark.parametrize(
    ("document", "setting"),
    [(TOO_MANY, "SWARM_MAX_JSON_ITEMS"), (TOO_LARGE, "SWARM_MAX_JSON_BYTES")],
)
def test_every_store_path_refuses_a_document_over_a_limit(
    session: Session, document: dict[str, Any], setting: str
) -> None:
    """Agents calling the store in-process are bounded too, by the settings' defaults."""
    task = new_task(session)
    calls = [
        ("metadata", lambda: logs.add_log(session, task.id, _log(document))),
        ("[1].metadata", lambda: logs.add_logs(session, task.id, [_log({}), _log(document)])),
        (
            "config",
            lambda: agents.create_agent(
                session, {"name": "n", "agent_type": "worker", "config": document}
            ),
        ),
        (
            "metadata",
            lambda: conversations.create_conversation(
                session, {"title": "t", "metadata": document}
            ),
        ),
    ]
    for field, call in calls:
        with pytest.raises(ValidationError) as info:
            call()
        assert setting in info.value.details["fields"][field], field
        assert field in info.value.message and setting in info.value.message
    assert _stored_logs(session) == 0


def test_a_document_at_the_limits_is_stored(session: Session) -> None:
    task = new_task(session)
    logs.add_log(session, task.id, _log(AT_THE_LIMITS))
    logs.add_logs(session, task.id, [_log(AT_THE_LIMITS)])
    assert _stored_logs(session) == 2


def test_a_caller_may_apply_its_own_limits(session: Session) -> None:
    task = new_task(session)
    with applied(JSONLimits(max_bytes=100, max_items=5)), pytest.raises(ValidationError):
        logs.add_logs(session, task.id, [_log({"a": [1, 2, 3, 4, 5]})])
    assert logs.add_logs(session, task.id, [_log({"a": [1, 2, 3, 4, 5]})]) == 1
