"""Security review, as tests that fail when a reviewed property stops holding.

* No SQL is built from strings: every f-string, ``%``-format, ``.format`` or ``+`` in ``src/``
  whose text holds SQL is listed below with the reason it is safe (an identifier quoted by
  the dialect's identifier preparer, an integer formatted with ``:d``, a name the code itself
  generated, or not SQL at all). A new one fails the test until it is reviewed and listed; a
  listed one that disappears fails it too, so the list stays true.
* Secrets never reach output or logs: the API token (right and wrong ones), the password in a
  database URL and the backup key, across the CLI, a real server with its access log, the
  audit trail, backup manifests and the logging handler's error reports.
* With a token set, every route but ``/api/health`` — admin, every mutating endpoint, the
  OpenAPI document, routes not in it — refuses a request without it, with a wrong one, or
  with the token in the query string.
* ``serve`` binds to loopback by default (checked on the listening socket itself).
* The docs explain running behind a TLS-terminating reverse proxy.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from sqlalchemy.engine import URL

from swarm_director import create_app
from swarm_director.cli.main import cli
from swarm_director.cli.serve import serve_cmd
from swarm_director.db import make_engine
from swarm_director.ops.crypto.sdbkenc1 import new_key
from swarm_director.web.context import database
from tests.reliability.conftest import Scale, url_text
from tests.reliability.procs import Server
from tests.serving import ROOT, free_port, request

SRC = ROOT / "src" / "swarm_director"
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|VACUUM|TRUNCATE|ANALYZE|BEGIN|"
    r"SET|WHERE|FROM|GRANT|COPY|REINDEX|CHECKPOINT|EXPLAIN|ATTACH)\b"
)

#: Every string-built text in src/ that contains SQL words, as (file, source line), with the
#: reason it is safe. Reviewed one by one.
REVIEWED: dict[tuple[str, str], str] = {
    (
        "db/ddl.py",
        '*(f"DROP FUNCTION IF EXISTS {name}()" for name in pg_functions),',
    ): "trigger DDL: the names are the models' trigger and function constants (db/ddl.dropped_triggers' callers), never input",
    (
        "db/ddl.py",
        '*(f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in pg_triggers),',
    ): "trigger DDL: the names are the models' trigger and function constants (db/ddl.dropped_triggers' callers), never input",
    (
        "db/ddl.py",
        'return [f"DROP TRIGGER IF EXISTS {name}" for name in sqlite_triggers]',
    ): "trigger DDL: the names are the models' trigger and function constants (db/ddl.dropped_triggers' callers), never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE OR REPLACE FUNCTION {attempt}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # noqa: S608',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE OR REPLACE FUNCTION {task}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[0][0]} AFTER INSERT OR DELETE ON task_attempts "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[1][0]} AFTER UPDATE ON task_attempts FOR EACH ROW "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[2][0]} AFTER INSERT OR DELETE ON tasks "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[3][0]} AFTER UPDATE OF type ON tasks FOR EACH ROW "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {delete} AFTER DELETE ON task_attempts "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {insert} AFTER INSERT ON task_attempts "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {task_delete} AFTER DELETE ON tasks "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {task_insert} AFTER INSERT ON tasks "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {task_update} AFTER UPDATE OF type ON tasks "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {update} AFTER UPDATE ON task_attempts "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        "f\"SELECT DISTINCT {HOUR_OF[dialect].format('a.claimed_at')} FROM task_attempts a \"  # noqa: S608",
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'forget = f"DELETE FROM {DIGESTS} WHERE epoch_hour"  # noqa: S608  (constants)',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'mark = f"INSERT INTO {MARKS} (epoch_hour)"',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {delete} AFTER DELETE ON history FOR EACH ROW "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        "f\"CREATE TRIGGER {delete} AFTER DELETE ON history WHEN {_failed('old')} \"",
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {insert} AFTER INSERT ON history FOR EACH ROW "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        "f\"CREATE TRIGGER {insert} AFTER INSERT ON history WHEN {_failed('new')} \"",
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {update} AFTER UPDATE ON history "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'f"CREATE TRIGGER {update} AFTER UPDATE ON history FOR EACH ROW "',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_digest_ddl.py",
        'mark = f"INSERT INTO {MARKS} (epoch_hour) VALUES"',
    ): "attempt digests DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        '"sqlite": f"ON CONFLICT ({KEYS}) DO UPDATE SET attempts = {COUNTS}.attempts + "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        '+ f") AS s WHERE true GROUP BY hr, k, ag ORDER BY hr, k, ag {_UPSERT[dialect]}"',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        '+ f"SELECT {hour}, s.k, t.type, coalesce({row}.agent_id, {UNASSIGNED}), {sign}1 "  # noqa: S608',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "_INSERT.format(target=_TARGET[dialect])",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE OR REPLACE FUNCTION {attempt}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE OR REPLACE FUNCTION {task}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[0][0]} AFTER INSERT OR DELETE ON task_attempts "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[1][0]} AFTER UPDATE ON task_attempts FOR EACH ROW WHEN "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[2][0]} AFTER INSERT OR DELETE ON tasks "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[3][0]} AFTER UPDATE OF type ON tasks FOR EACH ROW "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE TRIGGER {delete} AFTER DELETE ON task_attempts "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE TRIGGER {end} AFTER UPDATE ON task_attempts WHEN NOT ({moved}) AND "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "f\"CREATE TRIGGER {insert} AFTER INSERT ON task_attempts BEGIN {_attempt(d, 'new', '')} END\",",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE TRIGGER {move} AFTER UPDATE ON task_attempts WHEN {moved} "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "f\"CREATE TRIGGER {task_delete} AFTER DELETE ON tasks BEGIN {_task(d, 'old', '-')} END\",",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "f\"CREATE TRIGGER {task_insert} AFTER INSERT ON tasks BEGIN {_task(d, 'new', '')} END\",",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'f"CREATE TRIGGER {task_update} AFTER UPDATE OF type ON tasks WHEN {changed} "',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "f\"SELECT s.hr, s.k, t.type, s.ag, count(*) FROM ({_rows(dialect, 'true')}) AS s \"  # noqa: S608",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "f\"SELECT {_OUTCOME.format(a=f'{row}.end_action')} AS k \"",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "f\"SELECT {hour} AS hr, 'claimed' AS k, {agent} AS ag, a.task_id FROM task_attempts a \"  # noqa: S608",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "return outcome if outcome_only else f\"SELECT 'claimed' AS k UNION ALL {outcome}\"",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        "same_place = f\"TG_OP = 'UPDATE' AND NOT ({_MOVED.format(old='OLD', new='NEW')})\"",
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_count_ddl.py",
        'select = f"SELECT hr, k, {row}.type, ag, {sign}count(*) FROM ({attempts}"  # noqa: S608',
    ): "attempt counts DDL: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "store/export.py",
        'return f"COPY ({sql}) TO STDOUT {options}", params',
    ): "export: sql is a SQLAlchemy statement compiled with bound parameters (psycopg binds "
    "them), options are constants or identifiers quoted by the identifier preparer",
    (
        "db/partitions.py",
        'bounds = f"FOR VALUES FROM ({_literal(lower)}) TO ({_literal(upper)})"',
    ): "partition DDL: names quoted by the identifier preparer (_quote), bounds are datetimes computed here (_literal), never input",
    (
        "db/partitions.py",
        'conn.exec_driver_sql(f"ALTER TABLE {parent} ATTACH PARTITION {part} {bounds}")',
    ): "partition DDL: names quoted by the identifier preparer (_quote), bounds are datetimes computed here (_literal), never input",
    (
        "db/partitions.py",
        'conn.exec_driver_sql(f"CREATE TABLE {part} PARTITION OF {parent} {bounds}")',
    ): "partition DDL: names quoted by the identifier preparer (_quote), bounds are datetimes computed here (_literal), never input",
    (
        "db/partitions.py",
        'f"CREATE TABLE {_quote(conn, name)} PARTITION OF {_quote(conn, table)} DEFAULT"',
    ): "partition DDL: names quoted by the identifier preparer (_quote), bounds are datetimes computed here (_literal), never input",
    (
        "db/partitions.py",
        'f"CREATE TABLE {part} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"',
    ): "partition DDL: names quoted by the identifier preparer (_quote), bounds are datetimes computed here (_literal), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'columns = ", ".join(',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'conn.exec_driver_sql(f"ALTER TABLE {TABLE} ADD CONSTRAINT {PK} PRIMARY KEY (id)")',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'conn.exec_driver_sql(f"ALTER TABLE {TABLE} RENAME TO {old}")',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'conn.exec_driver_sql(f"ALTER TABLE {old} RENAME CONSTRAINT {PK} TO {PK}_old")',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'conn.exec_driver_sql(f"ANALYZE {TABLE}")',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'conn.exec_driver_sql(f"CREATE TABLE {TABLE} ({like})")',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'conn.exec_driver_sql(f"DROP TABLE {old} CASCADE")',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'conn.exec_driver_sql(f\'ALTER SEQUENCE "{sequence}" OWNED BY {TABLE}."{column}"\')',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        "conn.exec_driver_sql(f'ALTER TABLE {TABLE} ADD CONSTRAINT \"{name}\" {definition}')",
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        "conn.exec_driver_sql(f'ALTER TABLE {TABLE} ADD CONSTRAINT {PK} PRIMARY KEY (id, \"{KEY}\")')",
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        "conn.exec_driver_sql(f'CREATE TABLE {TABLE} ({like}) PARTITION BY RANGE (\"{KEY}\")')",
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        "conn.exec_driver_sql(f'DROP INDEX \"{name}\"')",
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "migrations/versions/008_partition_agent_logs.py",
        'f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {old} ORDER BY id"  # noqa: S608',
    ): "the revision's own constants and names read from this database's catalog (constraints, indexes, sequences of agent_logs), never input",
    (
        "ops/retention/partitions.py",
        'conn.exec_driver_sql(f"DROP TABLE {quoted(conn, part.name)}")',
    ): "a partition name from the catalog quoted by the preparer; a module constant lock timeout",
    (
        "ops/retention/partitions.py",
        "conn.exec_driver_sql(f\"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'\")",
    ): "a partition name from the catalog quoted by the preparer; a module constant lock timeout",
    (
        "store/log_ingest.py",
        'raise RuntimeError(f"unexpected INSERT parameters {order!r}")',
    ): "the model's table name quoted by the preparer and the model's column names; or not SQL (an error message)",
    (
        "store/log_ingest.py",
        'return f"COPY {quote(cast(Table, AgentLog.__table__).name)} ({columns}) FROM STDIN"',
    ): "the model's table name quoted by the preparer and the model's column names; or not SQL (an error message)",
    (
        "migrations/versions/007_add_full_text_search.py",
        'add = f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new});"  # noqa: S608',
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        'f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {remove} END",',
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        'f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {add} END",',
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        'f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON {table} BEGIN {remove} {add} END",',
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        "f\"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', \"",
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        "f\"INSERT INTO {fts}({fts}) VALUES ('rebuild')\",  # noqa: S608",
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        'op.execute(f"DROP INDEX IF EXISTS ix_{table}_fts")',
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        'op.execute(f"DROP TABLE IF EXISTS {table}_fts")',
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        'op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{kind}")',
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        "remove = f\"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old});\"  # noqa: S608",
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "migrations/versions/007_add_full_text_search.py",
        'return f"CREATE INDEX ix_{table}_fts ON {table} USING gin ({document})"',
    ): "search DDL: table and column names are the revision's own constants, never input",
    (
        "models/fulltext.py",
        'add = f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new});"  # noqa: S608',
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        'f"CREATE TRIGGER {delete} AFTER DELETE ON {self.name} BEGIN {remove} END",',
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        'f"CREATE TRIGGER {insert} AFTER INSERT ON {self.name} BEGIN {add} END",',
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        'f"CREATE TRIGGER {update} AFTER UPDATE OF {names} ON {self.name} "',
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        "f\"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{self.name}', \"",
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        'f"DROP TABLE IF EXISTS {self.fts_table}"',
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        "f\"INSERT INTO {fts}({fts}) VALUES ('rebuild')\",  # noqa: S608",
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        "remove = f\"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old});\"  # noqa: S608",
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        'return [f"CREATE INDEX {self.pg_index} ON {self.name} USING gin ({self.pg_document()})"]',
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        'return [f"DROP INDEX IF EXISTS {self.pg_index}"]',
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "models/fulltext.py",
        'return [f"DROP TRIGGER IF EXISTS {name}" for name in self.triggers] + [',
    ): "search DDL: names come from the fixed SOURCES (LOGS, TASKS, MESSAGES), never input",
    (
        "ops/checks/search_index.py",
        'extra = f"SELECT id FROM {index} EXCEPT SELECT id FROM {table} ORDER BY 1"  # noqa: S608',
    ): "db check's search rule: names come from models.fulltext.SOURCES, never input",
    (
        "ops/checks/search_index.py",
        'f"full-text index {source.pg_index} is invalid: REINDEX INDEX {source.pg_index}",',
    ): "not SQL that runs: a db check problem telling the operator what to run",
    (
        "ops/checks/search_index.py",
        'missing = f"SELECT id FROM {table} EXCEPT SELECT id FROM {index} ORDER BY 1"  # noqa: S608',
    ): "db check's search rule: names come from models.fulltext.SOURCES, never input",
    (
        "db/engine.py",
        'cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")',
    ): "constant PRAGMA; the value is an int formatted with :d",
    (
        "db/provision.py",
        'conn.exec_driver_sql(f"DROP TABLE IF EXISTS {preparer.quote(name)}")',
    ): "identifier quoted by the dialect's identifier preparer (names from the catalog)",
    (
        "db/provision.py",
        'conn.exec_driver_sql(f"DROP TABLE IF EXISTS {preparer.quote(name)} CASCADE")',
    ): "identifier quoted by the dialect's identifier preparer (names from the catalog)",
    (
        "ops/retention/space.py",
        'conn.exec_driver_sql(f"VACUUM (ANALYZE) {quoted(conn, LOGS.name)}")',
    ): "a model's table name, quoted by the identifier preparer (dbinfo.quoted)",
    (
        "ops/retention/space.py",
        'raw.executescript(f"PRAGMA incremental_vacuum({_VACUUM_STEP_PAGES:d})")',
    ): "constant PRAGMA; a module constant formatted with :d",
    (
        "ops/stats/timings_table.py",
        'raw.execute(f"PRAGMA busy_timeout={int(lock_wait_s * 1000):d}")',
    ): "constant PRAGMA; the value is an int formatted with :d",
    (
        "ops/stats/timings_table.py",
        'raw.execute(f"PRAGMA busy_timeout={previous:d}")',
    ): "constant PRAGMA; an int read back from PRAGMA busy_timeout, formatted with :d",
    (
        "ops/stats/collect.py",
        "f\"Slow statement ({slow['max_ms']:.0f} ms worst, {slow['count']} runs): \"",
    ): "not SQL: a suggestion telling the operator to use EXPLAIN",
    (
        "ops/checks/schema_drift.py",
        'action = f" ON DELETE {fk.ondelete.upper()}" if fk.ondelete else ""',
    ): "not SQL that runs: text of a drift report",
    (
        "migrations/versions/012_add_report_rollups.py",
        'conn.exec_driver_sql(f"DROP FUNCTION {function}()")',
    ): "the revision's own trigger, function and table names (constants), never input",
    (
        "migrations/versions/012_add_report_rollups.py",
        'conn.exec_driver_sql(f"DROP TRIGGER {trigger} ON {table}")',
    ): "the revision's own trigger, function and table names (constants), never input",
    (
        "migrations/versions/012_add_report_rollups.py",
        'conn.exec_driver_sql(f"DROP TRIGGER {trigger}")',
    ): "the revision's own trigger, function and table names (constants), never input",
    (
        "models/attempt_ddl.py",
        "f\"(SELECT CASE WHEN p.action IN ('create', 'retry') AND {due} > {e(dialect, 'p.at')} \"",
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "  # noqa: S608',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[0]} AFTER INSERT ON history FOR EACH ROW WHEN "',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"CREATE TRIGGER {PG_TRIGGERS[1]} AFTER DELETE ON history FOR EACH ROW WHEN "',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"CREATE TRIGGER {SQLITE_TRIGGERS[0]} AFTER INSERT ON history WHEN {step} AND NOT "',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"CREATE TRIGGER {SQLITE_TRIGGERS[1]} AFTER INSERT ON history WHEN {step} AND "',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"CREATE TRIGGER {SQLITE_TRIGGERS[2]} AFTER DELETE ON history WHEN old.entity = "  # noqa: S608',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        "f\"FROM history {alias} WHERE {alias}.entity = 'task' AND {alias}.entity_id = \"",
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"INSERT INTO {ATTEMPTS} ({COLUMNS}) SELECT new.id, new.entity_id, "',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"INSERT INTO {ATTEMPTS} ({COLUMNS}) {derived(dialect, around)} "',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"SELECT s.claim_id, s.task_id, s.agent_id, s.attempt, s.claimed_at, "  # noqa: S608',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"UPDATE {ATTEMPTS} SET end_action = new.action, run_s = CASE WHEN new.action = "  # noqa: S608',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'f"c.entity_id = {row}.entity_id AND c.id IN ({row}.id, (SELECT p.id "',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        "next_action = f\"(SELECT n.action {_step('n', 'c', '>')})\"",
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        "next_s = f\"(SELECT {e(dialect, 'n.at')} {_step('n', 'c', '>')})\"",
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        "return f\"EXISTS (SELECT 1 {_step('n', row, '>')})\"",
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        "return f\"INSERT INTO {ATTEMPTS} ({COLUMNS}) {derived(dialect, 'true')}\"",
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt_ddl.py",
        'return f"extract(epoch FROM {value})"',
    ): "attempts DDL and derivation: table, trigger, function and column names and SQL pieces are the module's own constants, never input",
    (
        "models/attempt.py",
        'f"SELECT * FROM ({first} EXCEPT {second}) AS d ORDER BY 1 LIMIT {DRIFT_LIMIT:d}"  # noqa: S608',
    ): "attempts drift check: the derivation and the table's columns are attempt_ddl's constants, the limit an int formatted with :d, never input",
    (
        "models/attempt.py",
        'kept = f"SELECT {ddl.COLUMNS} FROM {ddl.ATTEMPTS}"  # noqa: S608  (the module\'s constants)',
    ): "attempts drift check: the derivation and the table's columns are attempt_ddl's constants, the limit an int formatted with :d, never input",
    (
        "models/rollup.py",
        'backfill = f"INSERT INTO {ddl.TASKS} (epoch_hour, kind, type, priority, tasks) "',
    ): "report rollup upkeep: table names are rollup_ddl's constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE OR REPLACE FUNCTION task_count_hours_step() RETURNS trigger LANGUAGE plpgsql "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE OR REPLACE FUNCTION task_count_hours_task() RETURNS trigger LANGUAGE plpgsql "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE TRIGGER task_count_hours_step_delete AFTER DELETE ON history "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE TRIGGER task_count_hours_step_delete AFTER DELETE ON history FOR EACH ROW "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE TRIGGER task_count_hours_step_insert AFTER INSERT ON history "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE TRIGGER task_count_hours_step_insert AFTER INSERT ON history FOR EACH ROW "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE TRIGGER task_count_hours_task_delete AFTER DELETE ON tasks "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE TRIGGER task_count_hours_task_insert AFTER INSERT ON tasks "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"CREATE TRIGGER task_count_hours_task_update AFTER UPDATE OF type, priority, created_at "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"ON CONFLICT (epoch_hour, kind, type, priority) "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        '"SELECT hr, k, type, priority, count(*) FROM ("  # noqa: S608  (constants)',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"CREATE TRIGGER {delete} AFTER DELETE ON agent_logs BEGIN {minus} END",',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"CREATE TRIGGER {delete} AFTER DELETE ON agent_logs REFERENCING OLD TABLE AS gone "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"CREATE TRIGGER {insert} AFTER INSERT ON agent_logs REFERENCING NEW TABLE AS added "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"CREATE TRIGGER {update} AFTER UPDATE ON agent_logs "',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"DELETE FROM {deltas}",  # noqa: S608  (constants)',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"INSERT INTO {LOGS} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"INSERT INTO {LOG_DELTAS} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"INSERT INTO {_TASK_TARGET[dialect]} (epoch_hour, kind, type, priority, tasks) "  # noqa: S608',
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        "f'CREATE TRIGGER {update} AFTER UPDATE OF \"timestamp\", log_level ON agent_logs '",
    ): "report rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "ops/backup/restore.py",
        "drops += f\"DROP FUNCTION IF EXISTS {', '.join(functions)} CASCADE;\\n\"",
    ): "names from pg_restore --list of the dump being restored, each quoted by the dialect's preparer; argument lists are the dump's own type names",
    (
        "ops/backup/restore.py",
        'drops = f"DROP TABLE IF EXISTS {\', \'.join(names)} CASCADE;\\n" if names else ""',
    ): "names from pg_restore --list of the dump being restored, each quoted by the dialect's preparer; argument lists are the dump's own type names",
    (
        "models/rollup.py",
        'text(f"DELETE FROM {table} WHERE {where}"),  # noqa: S608  (constants)',
    ): "report rollup upkeep (a dropped partition's hours): table names are rollup_ddl's constants, the hours bound parameters, never input",
    (
        "models/rollup_ddl.py",
        'f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "',
    ): "error group rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"CREATE TRIGGER {delete} AFTER DELETE ON agent_logs "',
    ): "error group rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"INSERT INTO {ERRORS} (epoch_hour, pattern, logs) "',
    ): "error group rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'f"INSERT INTO {ERROR_DELTAS} (epoch_hour, pattern, logs) "  # noqa: S608  (constants)',
    ): "error group rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        "f\"SELECT {HOUR_SQL[dialect]}, {_PATTERN.format(row='')}, count(*) \"  # noqa: S608",
    ): "error group rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        "f'CREATE TRIGGER {update} AFTER UPDATE OF \"timestamp\", log_level, error_pattern '",
    ): "error group rollup DDL: table, trigger and column names are the module's own constants, never input",
    (
        "models/rollup_ddl.py",
        'return f"INSERT INTO {ERRORS} (epoch_hour, pattern, logs) " + error_counts_sql(dialect)',
    ): "error group rollup DDL: table, trigger and column names are the module's own constants, never input",
}


def _string_built_sql() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in sorted(SRC.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if _is_string_building(node) and SQL_WORDS.search(_constant_text(node)):
                relative = path.relative_to(SRC).as_posix()
                found.add((relative, lines[node.lineno - 1].strip()))  # type: ignore[attr-defined]
    return found


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _is_string_building(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return _is_text(node.left) or _is_text(node.right)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("format", "join")
        and _is_text(node.func.value)
    )


def _constant_text(node: ast.AST) -> str:
    return " ".join(
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )


def test_no_sql_is_built_from_strings_except_the_reviewed_lines() -> None:
    found = _string_built_sql()
    unreviewed = sorted(found - set(REVIEWED))
    assert not unreviewed, "SQL built from strings, not reviewed:\n" + "\n".join(
        f"  {file}: {line}" for file, line in unreviewed
    )
    stale = sorted(set(REVIEWED) - found)
    assert not stale, f"reviewed lines that no longer exist (update REVIEWED): {stale}"


def test_the_scan_catches_what_it_must() -> None:
    # The scan itself is tested: each of these is SQL built from a string.
    for code in [
        "conn.execute(text(f\"SELECT * FROM t WHERE name = '{name}'\"))",
        'cursor.execute("DELETE FROM t WHERE id = %s" % user_id)',
        'sql = "UPDATE t SET a = {}".format(value)',
        'query = "SELECT * FROM " + table',
        'sql = " ".join(["SELECT", column, "FROM t"])',
    ]:
        nodes = [n for n in ast.walk(ast.parse(code)) if _is_string_building(n)]
        assert any(SQL_WORDS.search(_constant_text(n)) for n in nodes), code


# --- secrets --------------------------------------------------------------------------------

TOKEN = "tok-9f8e7d6c5b4a-secret"
WRONG_TOKEN = "wrong-0a1b2c3d4e-secret"
PASSWORD = "pw-Hunter2-secret"
#: Given as ``?password=`` too, which libpq and psycopg accept beside the userinfo's.
QUERY_PASSWORD = "qpw-Kj7Lm9-secret"


@pytest.fixture
def secrets_env(migrated_url: URL, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment with every secret set; the database URL carries a password in its userinfo
    and in its query (PostgreSQL's test server trusts local connections and ignores both;
    SQLite URLs have none)."""
    url = (
        migrated_url.set(password=PASSWORD).update_query_dict({"password": QUERY_PASSWORD})
        if migrated_url.get_backend_name() != "sqlite"
        else migrated_url
    )
    env = {
        "SWARM_API_TOKEN": TOKEN,
        "SWARM_BACKUP_KEY": new_key(),
        "DATABASE_URL": url_text(url),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _secrets(env: dict[str, str]) -> list[str]:
    return [TOKEN, WRONG_TOKEN, PASSWORD, QUERY_PASSWORD, env["SWARM_BACKUP_KEY"]]


def _assert_clean(text: str, env: dict[str, str], where: str) -> None:
    leaked = [s for s in _secrets(env) if s in text]
    assert not leaked, f"{where} shows a secret: {leaked}"


def test_cli_output_audit_trail_and_manifests_hold_no_secret(
    secrets_env: dict[str, str], tmp_path: Path, dialect: str, scale: Scale
) -> None:
    if dialect == "sqlite" and not scale.full:
        pytest.skip("quick run: the PostgreSQL run covers this, with a password in its URL")
    runner = CliRunner()
    backups = tmp_path / "backups"
    commands = [
        ["db", "init"],
        ["db", "status"],
        ["db", "status", "--json"],
        ["db", "current"],
        ["db", "seed"],
        ["db", "check"],
        ["db", "backup", "--dir", str(backups)],
        ["db", "backup", "--dir", str(backups), "--json"],
        ["db", "backups", "--dir", str(backups), "--json"],
        ["db", "stats", "--json"],
    ]
    for command in commands:
        result = runner.invoke(cli, command)
        assert result.exit_code == 0, (command, result.output)
        _assert_clean(result.output, secrets_env, " ".join(command))
    # A failure names the database: still without its password.
    dead = sa.engine.make_url(secrets_env["DATABASE_URL"]).set(
        host="127.0.0.1", port=free_port(), password=PASSWORD
    )
    if dead.get_backend_name() == "sqlite":
        dead = URL.create("postgresql+psycopg", "u", PASSWORD, "127.0.0.1", free_port(), "x")
    for command in (["db", "status"], ["db", "init"], ["db", "backup", "--dir", str(backups)]):
        result = runner.invoke(cli, [*command, "--database-url", url_text(dead)])
        assert result.exit_code == 1, (command, result.output)
        _assert_clean(result.output, secrets_env, f"failing {command}")
    for manifest in backups.glob("*.manifest.json"):
        _assert_clean(manifest.read_text(), secrets_env, manifest.name)
    engine = make_engine(secrets_env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            details = conn.execute(sa.text("SELECT details FROM maintenance_events")).scalars()
            _assert_clean(json.dumps([str(d) for d in details]), secrets_env, "audit trail")
    finally:
        engine.dispose()


def test_server_and_access_log_hold_no_secret(
    secrets_env: dict[str, str], tmp_path: Path, dialect: str, scale: Scale
) -> None:
    """Also checks the default bind on the real listening socket (no --host is given)."""
    if dialect == "sqlite" and not scale.full:
        pytest.skip("quick run: the PostgreSQL run covers this, with a password in its URL")
    server = Server(
        secrets_env["DATABASE_URL"],
        tmp_path / "server.log",
        workers=1,
        env={k: v for k, v in secrets_env.items() if k != "DATABASE_URL"},
        extra_args=("--access-log",),
    ).start()
    try:
        assert request(server.port, "GET", "/api/health")[0] == 200
        assert request(server.port, "GET", "/api/tasks", token=TOKEN)[0] == 200
        assert request(server.port, "GET", "/api/tasks", token=WRONG_TOKEN)[0] == 401
        assert request(server.port, "POST", "/api/tasks", {"type": "x"}, token=TOKEN)[0] == 422
        assert request(server.port, "GET", "/api/tasks/999999", token=TOKEN)[0] == 404
        status, _ = request(server.port, "GET", "/api/admin/stats", token=TOKEN)
        assert status == 200
        listening = _listening_addresses(server.port)
    finally:
        server.stop()
    assert listening == {"127.0.0.1"}, f"serve listens on {listening} by default"
    log = server.output()
    assert "GET /api/tasks" in log, "the access log is on"
    _assert_clean(log, secrets_env, "server output")


def test_logging_handler_reports_hold_no_password(capsys: pytest.CaptureFixture[str]) -> None:
    from swarm_director.agent_logging import AgentLogHandler

    url = URL.create("postgresql+psycopg", "agent", PASSWORD, "127.0.0.1", free_port(), "gone")
    handler = AgentLogHandler(
        url_text(url), task_id=1, agent_type="a", flush_interval=0.05, close_timeout=0.5
    )
    logger = logging.getLogger("reliability.secrets")
    logger.addHandler(handler)
    try:
        logger.warning("hello")
    finally:
        logger.removeHandler(handler)
        handler.close()
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err


# --- authentication -------------------------------------------------------------------------


@pytest.fixture
def secured_app(migrated_url: URL, tmp_path: Path) -> Iterator[Flask]:
    # Hundreds of wrong tokens from one address: the slow-down (429) has its own tests.
    app = create_app(
        {
            "DATABASE_URL": url_text(migrated_url),
            "SWARM_API_TOKEN": TOKEN,
            "SWARM_DATA_DIR": str(tmp_path / "data"),
            "SWARM_AUTH_FAIL_LIMIT": 10_000,
        }
    )
    try:
        yield app
    finally:
        database(app).dispose()


def _routes(app: Flask) -> list[tuple[str, str]]:
    """Every (method, concrete URL) the app serves, documented or not, ids filled with 1."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = re.sub(r"<(?:\w+:)?(\w+)>", "1", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD"}):
            found.append((method, url))
    return found


def test_every_route_but_health_needs_the_token(secured_app: Flask) -> None:
    client = secured_app.test_client()
    routes = _routes(secured_app)
    assert ("POST", "/api/tasks") in routes and ("GET", "/api/admin/stats") in routes
    checked = 0
    for method, url in routes:
        if url == "/api/health":
            continue
        if not url.startswith("/api/"):
            _console_route_needs_a_login(client, method, url)
            continue
        attempts: list[dict[str, Any]] = [
            {},
            {"headers": {"Authorization": f"Bearer {WRONG_TOKEN}"}},
            {"headers": {"Authorization": f"Bearer {TOKEN[:-1]}"}},
            {"headers": {"Authorization": f"Basic {TOKEN}"}},
            {"headers": {"Authorization": TOKEN}},
            {"query_string": {"token": TOKEN, "access_token": TOKEN}},
        ]
        for extra in attempts:
            response = client.open(url, method=method, json={}, **extra)
            assert response.status_code == 401, (method, url, extra, response.status_code)
            assert response.get_json()["error"]["code"] == "unauthorized"
            checked += 1
    assert checked > 100
    ok = client.get("/api/admin/stats", headers={"Authorization": f"bearer {TOKEN}"})
    assert ok.status_code == 200, "the scheme is case-insensitive (RFC 7235)"


def _console_route_needs_a_login(client: Any, method: str, url: str) -> None:
    """The console's pages answer a request without a session with the login form (or a
    redirect to it); only the form itself and the static assets are served to anyone."""
    response = client.open(url, method=method, headers={"Authorization": f"Bearer {TOKEN}"})
    if url.startswith("/ui/static/"):
        assert response.status_code in (200, 404), (method, url, response.status_code)
        return
    if url == "/ui/login":
        assert response.status_code in (200, 302) and TOKEN not in response.get_data(as_text=True)
        return
    if method == "OPTIONS":  # Flask's automatic answer: the allowed methods, no data
        return
    if method == "POST":  # logout: refused without the form's CSRF token
        assert response.status_code in (302, 400), (method, url, response.status_code)
        return
    # A bearer token does not open the console: it needs the session cookie.
    assert response.status_code == 302, (method, url, response.status_code)
    assert response.headers["Location"].startswith(("/ui/login", "/ui/")), (method, url)
    if url != "/":
        assert response.headers["Location"].startswith("/ui/login"), (method, url)


def test_nothing_was_changed_by_refused_requests(secured_app: Flask, migrated_url: URL) -> None:
    client = secured_app.test_client()
    for method, url in _routes(secured_app):
        if method in ("POST", "PATCH", "PUT", "DELETE"):
            client.open(url, method=method, json={"type": "analysis", "title": "x"})
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as conn:
            for table in ("agents", "tasks", "agent_logs", "conversations", "drafts"):
                assert conn.scalar(sa.text(f'SELECT count(*) FROM "{table}"')) == 0, table
    finally:
        engine.dispose()


# --- binding and docs ----------------------------------------------------------------------


def test_serve_binds_to_loopback_by_default() -> None:
    host = next(p for p in serve_cmd.params if p.name == "host")
    assert host.default == "127.0.0.1"
    # The real listening socket is checked in test_server_and_access_log_hold_no_secret.


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                if len(address) == 8:
                    found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:
                    found.add(address)
    return found


def test_docs_cover_tls_behind_a_reverse_proxy() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    section = text[text.index("## Authentication and running it exposed safely") :]
    for needed in ("reverse proxy", "TLS", "--host 127.0.0.1", "SWARM_API_TOKEN"):
        assert needed in section, needed


def test_a_cli_failure_is_one_line_without_the_password() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from swarm_director.cli.main import cli; cli()", "db", "status"],
        env={**os.environ, "DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:{free_port()}/x"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and PASSWORD not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
