"""Peak memory while a large backup goes through the age layers (not a test: it takes minutes).

    .venv/bin/python bench/age_memory.py [--size-mib 2048] [--gzip] [--dir DIR]

Writes a file of ``--size-mib`` MiB (each MiB half random, half zeros, so gzip has work to
do), then streams it through the backup's own paths: ``ops.artifact.encode`` (gzip with
``--gzip``, then age encryption to a fresh recipient through pyrage) and
``ops.artifact.decode`` (age decryption with the identity, then gunzip). Checks that the
round trip gives the same bytes (SHA-256) and prints, per phase, the seconds and the peak
resident memory (VmHWM, reset before each phase through /proc/self/clear_refs) beside the
file size. Memory that stays flat while the size grows is the point: compare two sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from swarm_director.ops.artifact import decode, encode
from swarm_director.ops.crypto import age

MIB = 1 << 20


def _status(field: str) -> int:
    """A ``/proc/self/status`` figure in KiB (VmHWM: peak resident, VmRSS: resident now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Start VmHWM again from the current resident size (Linux >= 4.0); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _make(path: Path, size_mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(size_mib):
            block = os.urandom(MIB // 2) + bytes(MIB // 2)
            f.write(block)
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def _phase(name: str, size: int, run: object) -> None:
    reset = _reset_peak()
    started = time.perf_counter()
    run()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    peak = _status("VmHWM") / 1024
    note = "" if reset else " (peak since start: clear_refs refused)"
    print(
        f"{name:8s} {size / MIB:8.0f} MiB  {seconds:7.1f} s  "
        f"{size / MIB / seconds:6.0f} MiB/s  peak RSS {peak:6.1f} MiB{note}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--gzip", action="store_true", help="gzip inside age, as db maintain")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (temp dir)")
    args = parser.parse_args()
    identity, recipient = age.new_identity()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="age-memory-") as tmp:
        work = Path(tmp)
        key_file = work / "identity.txt"
        key_file.write_text(identity + "\n")
        raw, sealed, back = work / "raw", work / "raw.age", work / "back"
        print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")
        expected = _make(raw, args.size_mib)
        print(f"baseline RSS {_status('VmRSS') / 1024:.1f} MiB after writing the input")
        _phase(
            "encrypt",
            raw.stat().st_size,
            lambda: encode(
                raw,
                sealed,
                compress=args.gzip,
                key=None,
                recipients=[age.parse_recipient(recipient)],
            ),
        )
        layers = "gzip + age" if args.gzip else "age"
        print(f"         {sealed.stat().st_size / MIB:8.0f} MiB written ({layers})")
        _phase(
            "decrypt",
            sealed.stat().st_size,
            lambda: decode(
                sealed,
                back,
                compressed=args.gzip,
                key=None,
                identities=age.load_identities(key_file),
            ),
        )
        same = _sha256(back) == expected
        print(f"round trip {'gives the same bytes' if same else 'DIFFERS'}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
