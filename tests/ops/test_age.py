"""Backups and log archives in the age format: opened by the real `age` binary, verified and
restored with an identity, several recipients, and headers with absurd sizes refused before
anything is allocated (age and the legacy SDBKENC1 format)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sqlite3
import struct
import subprocess
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.ops import age
from swarm_director.ops.backup import create_backup
from swarm_director.ops.crypto import MAGIC, DecryptingReader
from swarm_director.ops.errors import BackupKeyError, CorruptBackupError
from swarm_director.ops.restore import restore_backup
from swarm_director.ops.retention import RetentionPolicy, cleanup_logs
from swarm_director.ops.verify import verify_backup
from tests.ops.factory import add_task, insert_logs, small_dataset
from tests.ops.helpers import content

DAY = timedelta(days=1)
AGE = shutil.which("age")
needs_age = pytest.mark.skipif(
    AGE is None, reason="the age binary is not installed (apt install age)"
)


def _identity_file(tmp_path: Path, name: str = "key.txt") -> tuple[Path, str]:
    identity, recipient = age.new_identity()
    path = tmp_path / name
    path.write_text(f"# public key: {recipient}\n{identity}\n")
    return path, recipient


def _age_decrypt(identity: Path, file: Path) -> bytes:
    assert AGE is not None
    done = subprocess.run(
        [AGE, "-d", "-i", str(identity), str(file)], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_age
def test_a_backup_opens_with_the_age_command_line(db: Database, tmp_path: Path) -> None:
    small_dataset(db, logs=25)
    key_file, recipient = _identity_file(tmp_path)
    other_file, other = _identity_file(tmp_path, "other.txt")
    result = create_backup(
        db.engine,
        tmp_path / "b",
        compress=True,
        recipients=[age.parse_recipient(recipient), age.parse_recipient(other)],
    )
    assert result.path.name.endswith(".gz.age")
    assert result.manifest.encryption == age.SCHEME
    assert result.path.read_bytes().startswith(b"age-encryption.org/v1\n-> X25519 ")
    # `age -d -i key.txt FILE | gunzip`: either recipient's identity opens it.
    for identity in (key_file, other_file):
        raw = gzip.decompress(_age_decrypt(identity, result.path))
        if db.dialect == "sqlite":
            plain = tmp_path / "plain.sqlite3"
            plain.write_bytes(raw)
            with closing(sqlite3.connect(plain)) as conn:
                assert conn.execute("SELECT count(*) FROM agent_logs").fetchone()[0] == 25
        else:
            assert raw.startswith(b"PGDMP")
    # The same file verifies here with an identity, and only with one.
    report = verify_backup(
        result.path, target=db.engine.url, identities=age.load_identities(other_file)
    )
    assert report.ok and report.row_counts["agent_logs"] == 25
    with pytest.raises(BackupKeyError, match="SWARM_BACKUP_IDENTITY"):
        verify_backup(result.path, target=db.engine.url)
    stranger, _ = _identity_file(tmp_path, "stranger.txt")
    with pytest.raises(BackupKeyError, match="no identity opens this file"):
        verify_backup(result.path, target=db.engine.url, identities=age.load_identities(stranger))


@needs_age
def test_files_age_writes_are_read_and_ours_are_read_by_age(tmp_path: Path) -> None:
    key_file, recipient = _identity_file(tmp_path)
    for size in (0, 1, age.CHUNK - 1, age.CHUNK, age.CHUNK + 1, 3 * age.CHUNK + 7):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        sink = io.BytesIO()
        writer = age.AgeWriter(sink, [age.parse_recipient(recipient)])
        writer.write(data)
        writer.close()
        ours = tmp_path / "ours.age"
        ours.write_bytes(sink.getvalue())
        assert _age_decrypt(key_file, ours) == data, size
        plain = tmp_path / "plain"
        plain.write_bytes(data)
        theirs = tmp_path / "theirs.age"
        subprocess.run([AGE, "-r", recipient, "-o", str(theirs), str(plain)], check=True)  # type: ignore[list-item]
        with theirs.open("rb") as f:
            assert age.AgeReader(f, age.load_identities(key_file)).read() == data, size


def test_restore_of_an_age_backup(own_db: Database, tmp_path: Path) -> None:
    db = own_db
    small_dataset(db, logs=5)
    before = content(db.engine)
    key_file, recipient = _identity_file(tmp_path)
    recipients = [age.parse_recipient(recipient)]
    backup = create_backup(db.engine, tmp_path / "b", recipients=recipients)
    insert_logs(db.engine, add_task(db), 7)
    report = restore_backup(
        db.engine,
        backup.path,
        backup_dir=tmp_path / "b",
        identities=age.load_identities(key_file),
        recipients=recipients,
    )
    assert content(db.engine) == before
    assert report.safety_backup.manifest.encryption == age.SCHEME  # no plaintext left behind


def test_damage_to_an_age_backup_is_caught(db: Database, tmp_path: Path) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the age layer is dialect-independent")
    small_dataset(db, logs=5)
    key_file, recipient = _identity_file(tmp_path)
    sink = io.BytesIO()
    writer = age.AgeWriter(sink, [age.parse_recipient(recipient)])
    writer.write(b"a" * (2 * age.CHUNK + 5))
    writer.close()
    whole = sink.getvalue()
    identities = age.load_identities(key_file)
    for damaged in (whole[:-1], whole[: len(whole) - 5 - 16], whole[:200] + b"!" + whole[201:]):
        with pytest.raises(CorruptBackupError):
            age.AgeReader(io.BytesIO(damaged), identities).read()


class _Counting(io.BytesIO):
    """A source that remembers the largest read it was asked for."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size is not None and size >= 0 else 1 << 62)
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size is not None and size >= 0 else 1 << 62)
        return super().readline(size)


@pytest.mark.parametrize(
    "header",
    [
        b"age-encryption.org/v1\n-> X25519 " + b"A" * (1 << 20),  # a 1 MiB line
        b"age-encryption.org/v1\n" + b"-> X25519 AAAA\nAAAA\n" * 100_000,  # 100 000 stanzas
        b"age-encryption.org/v1\n-> X25519 AAAA\n" + b"A" * 64 + b"\n" + b"B" * (1 << 20),
    ],
    ids=["long-line", "many-stanzas", "long-body"],
)
def test_age_headers_beyond_the_bounds_are_refused_before_reading_on(
    header: bytes, tmp_path: Path
) -> None:
    key_file, _ = _identity_file(tmp_path)
    source = _Counting(header)
    with pytest.raises(CorruptBackupError, match=r"refused|damaged"):
        age.AgeReader(source, age.load_identities(key_file))
    assert source.largest <= age.MAX_LINE_BYTES + 1
    assert source.tell() <= age.MAX_HEADER_BYTES + age.MAX_LINE_BYTES


def test_legacy_header_announcing_huge_chunks_is_refused_before_reading_on() -> None:
    header = MAGIC + b"\x00" * 16 + struct.pack(">I", 0xFFFFFFF0) + b"\x00" * 16
    source = _Counting(header + struct.pack(">I", 0xFFFFFFF0) + b"tiny")
    with pytest.raises(CorruptBackupError, match="refused"):
        DecryptingReader(source, b"k" * 32)
    assert source.largest <= len(header)


def test_identity_file_errors_never_show_its_content(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("AGE-SECRET-KEY-1NOTAREALKEYBUTSECRETLOOKING\n")
    with pytest.raises(BackupKeyError) as info:
        age.load_identities(bad)
    assert "NOTAREALKEY" not in info.value.message and "line 1" in info.value.message
    with pytest.raises(BackupKeyError, match="no age identity"):
        (tmp_path / "empty.txt").write_text("# only a comment\n")
        age.load_identities(tmp_path / "empty.txt")
    with pytest.raises(BackupKeyError, match="invalid age recipient"):
        age.parse_recipient("age1notarecipient")


@needs_age
def test_cli_backup_key_backup_verify_and_encrypted_archive(db: Database, tmp_path: Path) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the CLI wiring is dialect-independent; age backups of both are tested above")
    task = add_task(db)
    insert_logs(db.engine, task, 12, age=40 * DAY)
    url = db.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    made = runner.invoke(cli, ["db", "backup-key", "-o", str(tmp_path / "id.txt")])
    assert made.exit_code == 0, made.output
    recipient = made.output.split("Public key: ")[1].strip()
    assert (tmp_path / "id.txt").stat().st_mode & 0o777 == 0o600
    assert "AGE-SECRET-KEY-1" not in made.output
    env = {"SWARM_BACKUP_RECIPIENTS": recipient, "SWARM_BACKUP_KEY": ""}
    done = runner.invoke(
        cli, ["db", "backup", "--dir", str(tmp_path / "b"), "--database-url", url], env=env
    )
    assert done.exit_code == 0 and "age-encrypted" in done.output, done.output
    path = Path(done.output.strip().splitlines()[1])
    refused = runner.invoke(cli, ["db", "verify", str(path), "--database-url", url], env=env)
    assert refused.exit_code == 1 and "SWARM_BACKUP_IDENTITY" in refused.output
    ok = runner.invoke(
        cli,
        ["db", "verify", str(path), "--identity", str(tmp_path / "id.txt"), "--database-url", url],
        env=env,
    )
    assert ok.exit_code == 0 and ": OK." in ok.output, ok.output
    archive = tmp_path / "logs.jsonl.gz"
    cleaned = runner.invoke(
        cli,
        [
            "db",
            "cleanup-logs",
            "--older-than",
            "30d",
            "--archive",
            str(archive),
            "--yes",
            "--database-url",
            url,
        ],
        env=env,
    )
    assert cleaned.exit_code == 0, cleaned.output
    assert not archive.exists() and "logs.jsonl.gz.age" in cleaned.output
    lines = gzip.decompress(_age_decrypt(tmp_path / "id.txt", tmp_path / "logs.jsonl.gz.age"))
    rows = [json.loads(line) for line in lines.splitlines()]
    assert len(rows) == 12 and all(r["task_id"] == task for r in rows)


def test_cleanup_archive_is_encrypted_by_the_ops_layer(db: Database, tmp_path: Path) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 4, age=40 * DAY)
    key_file, recipient = _identity_file(tmp_path)
    report = cleanup_logs(
        db.engine,
        RetentionPolicy(older_than=30 * DAY),
        archive=tmp_path / "a.jsonl.gz",
        recipients=[age.parse_recipient(recipient)],
    )
    assert report.archive == str(tmp_path / "a.jsonl.gz.age") and report.archived == 4
    with (tmp_path / "a.jsonl.gz.age").open("rb") as f:
        plain = gzip.decompress(age.AgeReader(f, age.load_identities(key_file)).read())
    assert len(plain.splitlines()) == 4
