"""Hostile values for the command line's bounded options: each is one usage error (exit
status 2) that touches nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm_director.cli.main import cli
from tests.dbtools import fresh_database
from tests.reliability.hostile import HOSTILE_NUMBERS, HOSTILE_TEXT


@pytest.fixture
def url(dialect: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(dialect, tmp_path) as fresh:
        text = fresh.render_as_string(hide_password=False)
        assert CliRunner().invoke(cli, ["db", "init", "--database-url", text]).exit_code == 0
        yield text


def test_export_jobs_outside_1_to_16_is_refused(url: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    values = [str(v) for v in HOSTILE_NUMBERS] + HOSTILE_TEXT + ["17", "16.0", "2 2", "0x2"]
    for value in values:
        result = CliRunner().invoke(
            cli,
            ["export", "logs", "-o", str(out_dir / "logs.jsonl"), "--jobs", value,
             "--database-url", url],
        )  # fmt: skip
        assert result.exit_code == 2, (value, result.output)
        assert "'--jobs'" in result.output, (value, result.output)
        assert list(out_dir.iterdir()) == [], value
