"""The data folder and the SQLite database are private: folders 0700, files 0600.

Other local users must not read the swarm's data. The tests run under the usual umask (022),
under which a file created with default permissions is readable by everyone.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.cli.serve import prepare_database
from swarm_director.config import Settings
from swarm_director.db import Database
from swarm_director.private_files import create_private_file, open_private, private_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems give a user, whatever the test runner's is."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_private_dir_makes_new_folders_0700_and_leaves_existing_ones(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    made = private_dir(mine / "a" / "b")
    assert made.is_dir()
    assert mode(mine / "a") == 0o700 and mode(mine / "a" / "b") == 0o700
    assert mode(mine) == 0o755  # the user's own folder keeps the mode they gave it
    assert private_dir(made) == made  # existing: no error
    (mine / "file").write_text("x")
    with pytest.raises(FileExistsError):
        private_dir(mine / "file")


def test_private_files_are_0600_even_when_they_existed(tmp_path: Path) -> None:
    assert create_private_file(tmp_path / "new") is True
    assert mode(tmp_path / "new") == 0o600
    assert create_private_file(tmp_path / "new") is False
    old = tmp_path / "old"
    old.write_text("public")
    old.chmod(0o644)
    with open_private(old) as f:
        f.write(b"secret")
    assert mode(old) == 0o600 and old.read_bytes() == b"secret"


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The embedded default database in a data folder that does not exist yet."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SWARM_DATA_DIR", str(tmp_path / "swarm" / "data"))
    monkeypatch.setenv("SWARM_ENV", "development")
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path / "swarm" / "data"


def test_a_fresh_data_folder_and_its_database_wal_and_shm_are_private(embedded: Path) -> None:
    settings = Settings()
    assert "Created the embedded database" in prepare_database(settings)  # what serve does
    assert mode(embedded) == 0o700 and mode(embedded.parent) == 0o700
    database = Database.from_settings(settings)
    try:
        with database.engine.connect() as conn:  # an open connection keeps -wal and -shm
            conn.exec_driver_sql("SELECT count(*) FROM agents").scalar()
            files = sorted(p.name for p in embedded.iterdir())
            assert [name.rsplit(".db", 1)[1] for name in files] == ["", "-shm", "-wal"]
            assert {name: mode(embedded / name) for name in files} == dict.fromkeys(files, 0o600)
    finally:
        database.dispose()


def test_db_init_creates_a_sqlite_file_private_in_a_private_folder(tmp_path: Path) -> None:
    target = tmp_path / "new-folder" / "swarm.db"
    url = URL.create("sqlite", database=str(target)).render_as_string()
    result = CliRunner().invoke(cli, ["db", "init", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert mode(target.parent) == 0o700
    assert mode(target) == 0o600


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "shared.db"
    url = URL.create("sqlite", database=str(target)).render_as_string()
    assert CliRunner().invoke(cli, ["db", "init", "--database-url", url]).exit_code == 0
    target.chmod(0o640)  # the operator shares it with a group on purpose
    result = CliRunner().invoke(cli, ["db", "status", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert mode(target) == 0o640
