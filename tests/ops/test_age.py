"""Backups and log archives in the age format (through pyrage): opened by the real `age`
binary and by pyrage, verified and restored with an identity, a wrong identity refused with
nothing restored, several recipients, streams that keep their errors, and headers with absurd
sizes refused before they are parsed (age and the legacy SDBKENC1 format)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sqlite3
import struct
import subprocess
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pyrage
import pytest
from click.testing import CliRunner

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.ops.artifact import decode, gzip_chunks
from swarm_director.ops.backup.create import create_backup
from swarm_director.ops.backup.restore import restore_backup
from swarm_director.ops.backup.verify import verify_backup
from swarm_director.ops.crypto import age
from swarm_director.ops.crypto.sdbkenc1 import MAGIC, DecryptingReader
from swarm_director.ops.errors import BackupKeyError, CorruptBackupError
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy
from tests.ops.factory import add_task, insert_logs, small_dataset
from tests.ops.helpers import content

DAY = timedelta(days=1)
AGE = shutil.which("age")
needs_age = pytest.mark.skipif(
    AGE is None, reason="the age binary is not installed (apt install age)"
)
#: age seals its payload in chunks of 64 KiB: the sizes around it are the edge cases.
CHUNK = 64 * 1024


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


def _pyrage_decrypt(identity: Path, file: Path) -> bytes:
    return pyrage.decrypt(file.read_bytes(), age.load_identities(identity))


def _sealed(data: bytes, recipient: str) -> bytes:
    sink = io.BytesIO()
    age.encrypt(
        [data[i : i + 10_000] for i in range(0, len(data), 10_000)],
        sink,
        [age.parse_recipient(recipient)],
    )
    return sink.getvalue()


def _opened(sealed: bytes, identity: Path) -> bytes:
    sink = io.BytesIO()
    age.decrypt(io.BytesIO(sealed), sink, age.load_identities(identity))
    return sink.getvalue()


@needs_age
def test_a_backup_opens_with_the_age_command_line_and_pyrage(db: Database, tmp_path: Path) -> None:
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
    # `age -d -i key.txt FILE | gunzip`, or pyrage: either recipient's identity opens it.
    for identity in (key_file, other_file):
        raw = gzip.decompress(_age_decrypt(identity, result.path))
        assert gzip.decompress(_pyrage_decrypt(identity, result.path)) == raw
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
    for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        ours = tmp_path / "ours.age"
        ours.write_bytes(_sealed(data, recipient))
        assert _age_decrypt(key_file, ours) == data, size
        plain = tmp_path / "plain"
        plain.write_bytes(data)
        theirs = tmp_path / "theirs.age"
        subprocess.run([AGE, "-r", recipient, "-o", str(theirs), str(plain)], check=True)  # type: ignore[list-item]
        assert _opened(theirs.read_bytes(), key_file) == data, size


def test_a_new_age_backup_verifies_and_restores(own_db: Database, tmp_path: Path) -> None:
    db = own_db
    small_dataset(db, logs=5)
    before = content(db.engine)
    key_file, recipient = _identity_file(tmp_path)
    recipients = [age.parse_recipient(recipient)]
    backup = create_backup(db.engine, tmp_path / "b", compress=True, recipients=recipients)
    identities = age.load_identities(key_file)
    assert verify_backup(backup.path, target=db.engine.url, identities=identities).ok
    insert_logs(db.engine, add_task(db), 7)
    report = restore_backup(
        db.engine,
        backup.path,
        backup_dir=tmp_path / "b",
        identities=identities,
        recipients=recipients,
    )
    assert content(db.engine) == before
    assert report.safety_backup.manifest.encryption == age.SCHEME  # no plaintext left behind


def test_a_wrong_identity_is_a_clear_error_and_restores_nothing(
    own_db: Database, tmp_path: Path
) -> None:
    db = own_db
    small_dataset(db, logs=5)
    _, recipient = _identity_file(tmp_path)
    backup = create_backup(db.engine, tmp_path / "b", recipients=[age.parse_recipient(recipient)])
    insert_logs(db.engine, add_task(db), 7)
    changed = content(db.engine)
    stranger, _ = _identity_file(tmp_path, "stranger.txt")
    with pytest.raises(BackupKeyError, match="no identity opens this file: SWARM_BACKUP_IDENTITY"):
        restore_backup(
            db.engine,
            backup.path,
            backup_dir=tmp_path / "b",
            identities=age.load_identities(stranger),
        )
    assert content(db.engine) == changed
    assert [p.name for p in (tmp_path / "b").iterdir() if p.suffix == ".age"] == [backup.path.name]


def test_damage_to_an_age_file_is_caught(tmp_path: Path) -> None:
    key_file, recipient = _identity_file(tmp_path)
    whole = _sealed(b"a" * (2 * CHUNK + 5), recipient)
    cut_at_chunk = whole[: len(whole) - 5 - 16]
    flipped = whole[:200] + bytes([whole[200] ^ 1]) + whole[201:]
    for damaged in (whole[:-1], cut_at_chunk, flipped, whole[:150]):
        with pytest.raises(CorruptBackupError, match="age"):
            _opened(damaged, key_file)
    with pytest.raises(CorruptBackupError, match="not an age file"):
        _opened(b"SQLite format 3\x00" + bytes(100), key_file)


def test_errors_of_the_source_and_of_the_sink_propagate_unchanged(tmp_path: Path) -> None:
    # An archive's rows come from the database while pyrage pulls them: a failure there must
    # reach the caller as it was, not as an encryption error.
    key_file, recipient = _identity_file(tmp_path)

    def rows() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="the database went away"):
        age.encrypt(rows(), io.BytesIO(), [age.parse_recipient(recipient)])

    class Full(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            if self.tell() > CHUNK:
                raise OSError(28, "No space left on device")
            return super().write(data)

    data = bytes(5 * CHUNK)
    with pytest.raises(OSError, match="No space left"):
        age.encrypt([data], Full(), [age.parse_recipient(recipient)])
    with pytest.raises(OSError, match="No space left"):
        age.decrypt(io.BytesIO(_sealed(data, recipient)), Full(), age.load_identities(key_file))


def test_gzip_layer_streams_every_member_and_catches_a_truncation(tmp_path: Path) -> None:
    # Zeros inflate a thousandfold: one small compressed block gives megabytes of output.
    data = bytes(3 << 20) + bytes(range(256)) * 4000
    packed = b"".join(gzip_chunks([data[: 1 << 20], data[1 << 20 :]]))
    member = gzip.compress(b"and a second member")
    whole = tmp_path / "whole.gz"
    whole.write_bytes(packed + member)
    out = tmp_path / "out"
    assert decode(whole, out, compressed=True, key=None) == len(data) + 19
    assert out.read_bytes() == data + b"and a second member"
    assert gzip.decompress(packed) == data
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(CorruptBackupError, match="damaged or truncated"):
        decode(cut, out, compressed=True, key=None)


@pytest.mark.parametrize(
    "header",
    [
        b"age-encryption.org/v1\n-> X25519 " + b"A" * (1 << 20),  # a 1 MiB line
        b"age-encryption.org/v1\n" + b"-> X25519 AAAA\nAAAA\n" * 100_000,  # 100 000 stanzas
        b"age-encryption.org/v1\n" + b"-> X25519 AAAA\nAAAA\n" * 300 + b"--- AAAA\n",
    ],
    ids=["long-line", "many-stanzas", "too-many-stanzas"],
)
def test_age_headers_beyond_the_bounds_are_refused_before_they_are_parsed(
    header: bytes, tmp_path: Path
) -> None:
    # Unbounded, the age crate's parser takes minutes on a 400 KB header of 20 000 stanzas.
    key_file, _ = _identity_file(tmp_path)
    source = io.BytesIO(header)
    with pytest.raises(CorruptBackupError, match="refused"):
        age.decrypt(source, io.BytesIO(), age.load_identities(key_file))
    assert source.tell() <= age.MAX_HEADER_BYTES


def test_legacy_header_announcing_huge_chunks_is_refused_before_reading_on() -> None:
    class Counting(io.BytesIO):
        largest = 0

        def read(self, size: int | None = -1) -> bytes:
            self.largest = max(self.largest, size if size is not None and size >= 0 else 1 << 62)
            return super().read(size)

    header = MAGIC + b"\x00" * 16 + struct.pack(">I", 0xFFFFFFF0) + b"\x00" * 16
    source = Counting(header + struct.pack(">I", 0xFFFFFFF0) + b"tiny")
    with pytest.raises(CorruptBackupError, match="refused"):
        DecryptingReader(source, b"k" * 32)
    assert source.largest <= len(header)


def test_key_errors_name_the_setting_and_never_show_a_secret(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("# a comment\nAGE-SECRET-KEY-1NOTAREALKEYBUTSECRETLOOKING\n")
    with pytest.raises(BackupKeyError) as info:
        age.load_identities(bad)
    message = info.value.message
    assert "NOTAREALKEY" not in message
    assert message.startswith(f"SWARM_BACKUP_IDENTITY ({bad}) line 2 ")
    (tmp_path / "empty.txt").write_text("# only a comment\n")
    with pytest.raises(BackupKeyError, match=r"^--identity \(.*empty.txt\) holds no age identity"):
        age.load_identities(tmp_path / "empty.txt", "--identity")
    with pytest.raises(BackupKeyError, match=r"SWARM_BACKUP_IDENTITY .* cannot read"):
        age.load_identities(tmp_path / "missing.txt")
    _, recipient = age.new_identity()
    broken = recipient[:-1] + ("q" if recipient[-1] != "q" else "p")  # checksum no longer fits
    with pytest.raises(BackupKeyError, match=r"^SWARM_BACKUP_RECIPIENTS: .* not a valid age"):
        age.parse_recipient(broken)


def test_cli_refuses_a_bad_recipient_in_one_line(tmp_path: Path) -> None:
    _, recipient = age.new_identity()
    broken = recipient[:-1] + ("q" if recipient[-1] != "q" else "p")
    url = f"sqlite:///{tmp_path / 'live.db'}"
    done = CliRunner().invoke(
        cli,
        ["db", "backup", "--dir", str(tmp_path / "b"), "--database-url", url],
        env={"SWARM_BACKUP_RECIPIENTS": broken, "SWARM_BACKUP_KEY": ""},
    )
    assert done.exit_code != 0
    assert "SWARM_BACKUP_RECIPIENTS" in done.output and len(done.output.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


# the CLI wiring is dialect-independent; age backups of both are tested above
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
@needs_age
def test_cli_backup_key_backup_verify_and_encrypted_archive(db: Database, tmp_path: Path) -> None:
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
    sealed = tmp_path / "logs.jsonl.gz.age"
    lines = gzip.decompress(_age_decrypt(tmp_path / "id.txt", sealed))
    assert gzip.decompress(_pyrage_decrypt(tmp_path / "id.txt", sealed)) == lines
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
    plain = gzip.decompress(_pyrage_decrypt(key_file, tmp_path / "a.jsonl.gz.age"))
    assert [json.loads(line)["task_id"] for line in plain.splitlines()] == [task] * 4
