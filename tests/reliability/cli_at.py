"""Run a ``swarm-director`` command at a given moment: ``python -m tests.reliability.cli_at GO
ARGS...`` imports everything the command needs, then waits until the file GO exists and runs
the command. Two of these started together hit the database within milliseconds of each
other, instead of whenever their interpreters happen to finish importing.
"""

from __future__ import annotations

import os
import sys
import time

from swarm_director.cli.main import cli
from swarm_director.migrations import migrate

#: Longest wait for the go signal; the process gives up (exit 3) after it.
WAIT_S = 120.0


def main() -> None:
    go, args = sys.argv[1], sys.argv[2:]
    migrate.head_revision()  # loads the migration scripts, as the command will
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.002)
    cli.main(args, prog_name="swarm-director")


if __name__ == "__main__":
    main()
