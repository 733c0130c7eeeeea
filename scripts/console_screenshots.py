"""Screenshots of every console page, from a database filled by ``db seed --scale``.

    .venv/bin/python scripts/console_screenshots.py [--out docs/console] [--scale 20]

Creates a fresh embedded database in a temporary folder, runs ``db seed --past 7d`` (a week
of history for the reports) and ``db seed --scale N``, starts ``swarm-director serve`` on it
and photographs each page with headless Chromium (Debian's ``chromium`` + ``chromium-driver``)
at 1280 px (light) and 320 px wide (dark mode); the Reports page also at 1280 px dark. Writes
``<page>-desktop.png``, ``<page>-320-dark.png`` (and ``reports-desktop-dark.png``).
``--only reports`` photographs only the pages named.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWARM_DIRECTOR = [sys.executable, "-c", "from swarm_director.cli.main import cli; cli()"]
PAGES = {
    "overview": "/ui/",
    "agents": "/ui/agents",
    "agent": "/ui/agents/2",
    "tasks": "/ui/tasks",
    "task": "/ui/tasks/1?diff_from=1&diff_to=2",
    "logs": "/ui/logs?level=warning",
    "conversation": "/ui/conversations/1",
    "ops": "/ui/ops",
    "reports": "/ui/reports?range=7d",
}
#: Pages also photographed at desktop width in dark mode.
DARK_DESKTOP = ("reports",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def browser(width: int, height: int, dark: bool) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    if dark:
        options.add_argument("--force-dark-mode")
        options.add_argument("--blink-settings=preferredColorScheme=0")
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    parser.add_argument("--scale", type=int, default=20)
    parser.add_argument("--only", nargs="*", choices=sorted(PAGES), help="only these pages")
    args = parser.parse_args()
    pages = {name: PAGES[name] for name in args.only} if args.only else PAGES
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SWARM_DATA_DIR": str(Path(tmp) / "data"), "SWARM_ENV": "development"}
        env.pop("DATABASE_URL", None)
        env.pop("SWARM_API_TOKEN", None)
        run = {"env": env, "cwd": tmp, "check": True, "stdout": subprocess.DEVNULL}
        subprocess.run([*SWARM_DIRECTOR, "db", "init"], **run)  # type: ignore[call-overload]
        seed = ["db", "seed", "--past", "7d"]
        subprocess.run([*SWARM_DIRECTOR, *seed], **run)  # type: ignore[call-overload]
        scale = ["db", "seed", "--scale", str(args.scale)]
        subprocess.run([*SWARM_DIRECTOR, *scale], **run)  # type: ignore[call-overload]
        subprocess.run([*SWARM_DIRECTOR, "db", "backup"], **run)  # type: ignore[call-overload]
        port = free_port()
        server = subprocess.Popen(
            [*SWARM_DIRECTOR, "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.1)
            for width, height, dark, suffix in (
                (1280, 900, False, "desktop"),
                (320, 900, True, "320-dark"),
                (1280, 900, True, "desktop-dark"),
            ):
                driver = browser(width, height, dark)
                try:
                    for name, path in pages.items():
                        if suffix == "desktop-dark" and name not in DARK_DESKTOP:
                            continue
                        driver.get(f"http://127.0.0.1:{port}{path}")  # type: ignore[attr-defined]
                        full = driver.execute_script(  # type: ignore[attr-defined]
                            "return document.documentElement.scrollHeight"
                        )
                        driver.set_window_size(width, min(int(full) + 100, 4000))  # type: ignore[attr-defined]
                        target = args.out / f"{name}-{suffix}.png"
                        driver.save_screenshot(str(target))  # type: ignore[attr-defined]
                        print(target)
                finally:
                    driver.quit()  # type: ignore[attr-defined]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
