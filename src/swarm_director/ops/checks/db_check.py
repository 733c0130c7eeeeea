"""``db check``: engine integrity and the domain rules, each problem named.

Engine level: SQLite ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``; on
PostgreSQL (whose storage checks itself) an orphan query for every foreign key of the models,
which also catches rows written while triggers were disabled, and the monthly partitions of
``agent_logs`` (a default partition and the current month's). Domain level: hierarchy cycles,
draft version gaps and duplicates, email ``sent_at`` against status, counters against the rows
they count, and enum values outside their set. The rules are in :mod:`.storage_rules` and
:mod:`.domain_rules`; this module runs each in its own read transaction and caps the problems
listed per rule.

A rule that cannot even run (a malformed file, a missing table) is itself a problem, so a
damaged database never passes by accident.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.base import utcnow
from swarm_director.models import MaintenanceOperation, MaintenanceStatus
from swarm_director.ops.audit import write_event
from swarm_director.ops.checks import domain_rules, storage_rules
from swarm_director.ops.checks.findings import DEFAULT_LIMIT_PER_RULE, CheckReport, Problem
from swarm_director.ops.dbinfo import reader
from swarm_director.redact import first_line

#: Every rule's name and what a finding means (the runbook explains the fixes).
RULES: dict[str, str] = {
    "schema": "a model table is missing from the database",
    "integrity": "SQLite's integrity_check found damage in the file",
    "foreign_key": "a row points at a parent row that does not exist",
    "enum_value": "a status/type column holds a value outside its set",
    "agent_cycle": "following agents.parent_id comes back to the same agent",
    "task_cycle": "following tasks.parent_task_id comes back to the same task",
    "draft_version_duplicate": "two drafts of a task have the same version",
    "draft_version_gap": "a task's draft versions are not 1, 2, ..., n",
    "email_sent_at": "an email's sent_at disagrees with its status",
    "counter": "a stored counter differs from the rows it counts",
    "search_index": "a full-text index is missing, invalid, or does not hold exactly its rows",
}


def run_check(engine: Engine, *, limit_per_rule: int = DEFAULT_LIMIT_PER_RULE) -> CheckReport:
    """Run every rule against ``engine``'s database; the report lists what was found."""
    started = time.perf_counter()
    report = _Collector(engine.dialect.name, limit_per_rule)
    read = reader(engine)
    present = _run(report, "schema", read, storage_rules.missing_tables)
    if engine.dialect.name == "sqlite":
        _run(report, "integrity", read, storage_rules.sqlite_integrity)
        _run(report, "foreign_key", read, storage_rules.sqlite_foreign_keys)
    else:
        _run(report, "foreign_key", read, storage_rules.orphans)
        _run(report, "partitions", read, storage_rules.partitions)
    if present is not None:
        checks: list[tuple[str, set[str], Callable[[Connection], Iterable[Problem]]]] = [
            ("enum_value", set(), domain_rules.enum_values),
            ("search_index", set(), storage_rules.search_indexes),
            ("agent_cycle", {"agents"}, domain_rules.agent_cycles),
            ("task_cycle", {"tasks"}, domain_rules.task_cycles),
            ("draft_version_duplicate", {"drafts"}, domain_rules.draft_duplicates),
            ("draft_version_gap", {"drafts"}, domain_rules.draft_gaps),
            ("email_sent_at", {"email_messages"}, domain_rules.email_sent_at),
            (
                "rollup_drift",
                {
                    "agent_logs",
                    "log_volume_hours",
                    "error_group_hours",
                    "tasks",
                    "history",
                    "task_count_hours",
                },
                domain_rules.rollup_drift,
            ),
            (
                "counter",
                {"agents", "conversations", "messages", "conversation_participants"},
                domain_rules.counters,
            ),
        ]
        for rule, needs, check in checks:
            if needs <= present:
                _run(report, rule, read, check)
    result = report.result
    result.seconds = time.perf_counter() - started
    return result


class _Collector:
    def __init__(self, dialect: str, limit: int) -> None:
        self.result = CheckReport(dialect=dialect)
        self.limit = limit

    def add(self, rule: str, problems: Iterable[Problem]) -> None:
        listed = 0
        for problem in problems:
            if listed < self.limit:
                self.result.problems.append(problem)
                listed += 1
            else:
                self.result.omitted[rule] = self.result.omitted.get(rule, 0) + 1


def _run(
    report: _Collector,
    rule: str,
    engine: Engine,
    check: Callable[[Connection], Any],
) -> Any:
    """Run one rule in its own read transaction; a rule that fails to run is a problem.

    The transaction is one snapshot (PostgreSQL: ``REPEATABLE READ``; SQLite's is one
    already), so a rule that compares two reads (rows against a rollup, a counter against the
    rows it counts) never takes a writer committing between them for drift."""
    report.result.rules.append(rule)
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    try:
        with engine.connect().execution_options(**options) as conn:
            outcome = check(conn)
            if rule == "schema":
                missing, present = outcome
                report.add(rule, missing)
                return present
            report.add(rule, outcome)
    except sa.exc.DBAPIError as error:
        message = first_line(error)
        report.add(rule, [Problem(rule, None, None, f"rule could not run: {message}")])
    return None


def check_database(engine: Engine, *, limit_per_rule: int = DEFAULT_LIMIT_PER_RULE) -> CheckReport:
    """:func:`run_check`, recorded in the audit trail (``failed`` when anything was found)."""
    started = utcnow()
    report = run_check(engine, limit_per_rule=limit_per_rule)
    by_rule: dict[str, int] = {}
    for problem in report.problems:
        by_rule[problem.rule] = by_rule.get(problem.rule, 0) + 1
    for rule, extra in report.omitted.items():
        by_rule[rule] = by_rule.get(rule, 0) + extra
    details: dict[str, Any] = {"problems": report.problem_count, "by_rule": by_rule}
    if not report.ok:
        details["error"] = f"{report.problem_count} problem(s) found"
    status = MaintenanceStatus.OK if report.ok else MaintenanceStatus.FAILED
    write_event(engine, MaintenanceOperation.CHECK, status, started, details)
    return report
