"""Every administrative action leaves a maintenance_events row, failed ones with the reason."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.errors import ConflictError
from swarm_director.models import Agent, AgentType, MaintenanceEvent, MaintenanceOperation
from swarm_director.ops import audit
from tests.ops.factory import count


def _events(db: Database) -> list[MaintenanceEvent]:
    with db.read() as s:
        events = list(s.scalars(sa.select(MaintenanceEvent).order_by(MaintenanceEvent.id)))
        s.expunge_all()
        return events


def test_successful_action_records_ok_with_details(db: Database) -> None:
    with audit.record(db.engine, MaintenanceOperation.BACKUP) as details:
        details["path"] = "/backups/x.sqlite"
        details["rows"] = {"agents": 3}
    [event] = _events(db)
    assert event.operation == MaintenanceOperation.BACKUP
    assert event.status == "ok"
    assert event.details == {"path": "/backups/x.sqlite", "rows": {"agents": 3}}
    assert event.finished_at is not None and event.finished_at >= event.started_at
    assert audit.last_successful(db.engine, MaintenanceOperation.BACKUP) == event.started_at


def test_failed_action_is_recorded_even_though_its_work_rolled_back(db: Database) -> None:
    with (
        pytest.raises(ConflictError, match="disk full"),
        audit.record(db.engine, MaintenanceOperation.RESTORE) as details,
        db.transaction() as s,
    ):
        details["file"] = "b.sqlite"
        s.add(Agent(name="half-done", agent_type=AgentType.WORKER))
        s.flush()
        raise ConflictError("disk full")
    assert count(db.engine, Agent) == 0
    [event] = _events(db)
    assert event.status == "failed"
    assert event.details == {"file": "b.sqlite", "error": "disk full"}
    assert audit.last_successful(db.engine, MaintenanceOperation.RESTORE) is None


def test_missing_audit_table_does_not_mask_the_outcome(db: Database) -> None:
    MaintenanceEvent.__table__.drop(db.engine)
    try:
        with audit.record(db.engine, MaintenanceOperation.CHECK) as details:
            details["problems"] = 0
        assert audit.last_successful(db.engine, MaintenanceOperation.CHECK) is None
    finally:
        MaintenanceEvent.__table__.create(db.engine)
