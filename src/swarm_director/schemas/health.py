"""Response bodies of liveness, readiness and the admin statistics."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    status: str = Field(description="Always `ok` when the process answers.")
    version: str


class ReplicaOut(BaseModel):
    """One read replica as this server process last measured it."""

    url: str = Field(description="The replica's URL, password masked.")
    state: str = Field(
        description="`ok` (serves reads), `lagging` (further behind than "
        "SWARM_REPLICA_MAX_LAG_S), `unreachable`, `promoted` (no longer a standby) or "
        "`unknown` (not measured yet); every state but `ok` sends its reads to the primary."
    )
    lag_s: float | None = Field(
        description="At most this many seconds behind the primary (exact to "
        "SWARM_REPLICA_CHECK_S); null when unknown."
    )
    lag_bytes: int | None = Field(description="WAL bytes written by the primary, not replayed.")
    replay_paused: bool = Field(description="Replay is paused on the replica.")
    error: str | None = Field(description="Why it could not be measured.")


class ReadyOut(BaseModel):
    status: str = Field(description="`ready`.")
    dialect: str
    revision: str | None = Field(description="The database's schema revision (= head).")
    replicas: list[ReplicaOut] = Field(
        default_factory=list,
        description="Each read replica (SWARM_REPLICA_URLS) and its lag; a lagging or "
        "unreachable one does not make the service unready (the primary serves its reads).",
    )


class TableStats(BaseModel):
    name: str
    rows: int = Field(description="Rows: the engine's estimate (see rows_estimated).")
    rows_estimated: bool = Field(
        description="Always true here: rows come from planner statistics, not a count "
        "(`swarm-director db stats --exact` counts)."
    )
    bytes: int | None = Field(
        description="Bytes of the table and its indexes; null on SQLite, where measuring "
        "reads every page (`db stats --exact`)."
    )
    indexes: dict[str, int] = Field(description="Bytes per index.")


class StatsOut(BaseModel):
    dialect: str
    revision: str | None = Field(description="The database's schema revision.")
    head: str | None = Field(description="The newest revision this version knows.")
    size_bytes: int = Field(description="Bytes used by the database.")
    wal_bytes: int | None = Field(description="SQLite write-ahead log size (null elsewhere).")
    free_bytes: int | None = Field(description="SQLite free-list size (null elsewhere).")
    tables: list[TableStats]
    last_maintenance: dict[str, str | None] = Field(
        description="When backup, optimize, cleanup and check last succeeded (ISO 8601)."
    )
    analyzed: bool = Field(description="Whether planner statistics exist.")
    old_logs: int = Field(description="Log rows older than 30 days, counted up to a cap.")
    old_logs_capped: bool = Field(description="True: there are at least `old_logs`.")
    suggestions: list[str] = Field(description="What an operator should consider running.")
    slow_statements: list[dict[str, Any]] = Field(
        description="Slowest statement shapes recorded by every server process of this "
        "database (count, mean, worst ms, sources)."
    )
