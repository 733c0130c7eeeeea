"""``logs tail`` takes its key from a file or the environment, never from the command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from swarm_director.cli.main import cli


def test_the_help_shows_a_key_file_not_a_key_on_the_command_line() -> None:
    result = CliRunner().invoke(cli, ["logs", "tail", "--help"])
    assert result.exit_code == 0
    assert "--token-file" in result.output
    assert "--token " not in result.output and '--token "' not in result.output


def test_an_empty_key_file_is_one_line_and_no_request(tmp_path: Path) -> None:
    empty = tmp_path / "key"
    empty.write_text("\n")
    # Port 9 (discard): were a request made, the error would be a connection failure.
    args = ["logs", "tail", "--url", "http://127.0.0.1:9", "--token-file", str(empty)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {empty} holds no API key on its first line"
    ]
