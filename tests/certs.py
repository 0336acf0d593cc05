"""State directories for the security tests: tokens added through the real `swarm certs`
command, and the check that the SDK and the CLI find everything in $SWARM_HOME."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from swarm.cli.main import main as swarm_main
from swarm.client import Client

from tests.helpers import ROOT


def add_token(home: Path, *args: str) -> str:
    """`swarm certs --dir HOME token ARGS...` in a process of its own: the token it printed."""
    out = subprocess.run(
        [sys.executable, "-m", "swarm.cli.main", "certs", "--dir", str(home), "token", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return out.stdout.strip()


def sdk_and_cli_work_from(home: Path, address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With only SWARM_HOME set, the SDK runs a task and `swarm status` answers."""
    monkeypatch.setenv("SWARM_HOME", str(home))
    with Client(address) as client:
        assert client.submit("echo", 7).result(timeout=10) == 7
    assert swarm_main(["status", "--connect", address]) == 0
