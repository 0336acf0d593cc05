"""The `swarm` command itself: what a new user types first."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def test_version_prints_the_installed_version_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "swarm.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"swarm {version('swarm')}"


def test_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "swarm.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ")}
    assert {"up", "host", "demo", "submit", "status", "bench"} <= listed, done.stdout
