"""History rows as the API returns them, and the filters of history listings."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from swarm_director.schemas.common import OutputModel, PageOut, StoredJSON

HistoryEntity = Literal[
    "agent", "task", "draft", "email", "conversation", "participant", "message", "api_key"
]


class HistoryOut(OutputModel):
    """One recorded change: `changes` maps each field to `[before, after]`."""

    id: int
    entity: str
    entity_id: int
    action: str = Field(
        description="create, update, delete, or a queue step: claim, complete, retry, fail, expire."
    )
    changes: StoredJSON
    actor: str = Field(
        description="An API key's name, `bootstrap`, `cli:<user>@<host>` or `system:<job>`."
    )
    request_id: str | None
    at: AwareDatetime


class HistoryPage(PageOut[HistoryOut]):
    """A page of history rows."""
