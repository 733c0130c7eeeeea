"""Backups and a log archive written by the release before age went through pyrage (made by
tests/fixtures/make_backups.py, committed) still verify, restore and open: age backups with
the identity, legacy ``SDBKENC1`` ones with their key, on both dialects."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyrage
import pytest
import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.ops.backup.create import manifest_path
from swarm_director.ops.backup.restore import restore_backup
from swarm_director.ops.backup.verify import verify_backup
from swarm_director.ops.crypto import age
from swarm_director.ops.crypto.sdbkenc1 import parse_key
from tests.fixtures.make_backups import ARCHIVED, HERE, LOGS

IDENTITY = HERE / "identity.txt"
SUFFIX = {"sqlite": ".sqlite3.gz", "postgresql": ".pgdump.gz"}


def _fixture(dialect: str, kind: str, tmp_path: Path) -> Path:
    """A copy of a committed backup and its manifest (verify works beside the file)."""
    name = f"{dialect}-{kind}{SUFFIX[dialect]}{'.age' if kind == 'age' else '.enc'}"
    copy = tmp_path / name
    shutil.copyfile(HERE / name, copy)
    shutil.copyfile(manifest_path(HERE / name), manifest_path(copy))
    return copy


def _opener(kind: str) -> dict[str, object]:
    if kind == "age":
        return {"identities": age.load_identities(IDENTITY)}
    return {"key": parse_key((HERE / "legacy.key").read_text().strip())}


def _titles(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.scalars(sa.text("SELECT title FROM tasks ORDER BY id")))


@pytest.mark.parametrize("kind", ["age", "sdbkenc1"])
def test_a_previous_release_backup_verifies_and_restores(
    own_db: Database, kind: str, tmp_path: Path
) -> None:
    backup = _fixture(own_db.dialect, kind, tmp_path)
    report = verify_backup(backup, target=own_db.engine.url, **_opener(kind))  # type: ignore[arg-type]
    assert report.ok, report.reasons
    assert report.row_counts["agent_logs"] == LOGS and report.row_counts["messages"] == 3
    assert _titles(own_db) == []

    restore_backup(own_db.engine, backup, backup_dir=tmp_path / "safety", **_opener(kind))  # type: ignore[arg-type]

    assert _titles(own_db) == ["Welcome mail", "Sub"]
    with own_db.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM agent_logs")) == LOGS


def test_a_previous_release_log_archive_opens() -> None:
    # The archive is gzip inside age: pyrage opens it with the identity file's key.
    identities = age.load_identities(IDENTITY)
    plain = gzip.decompress(pyrage.decrypt((HERE / "logs.jsonl.gz.age").read_bytes(), identities))
    rows = [json.loads(line) for line in plain.splitlines()]
    assert [row["message"] for row in rows] == [f"message {i}" for i in range(ARCHIVED)]
