"""House rules as tests: ruff clean, mypy --strict clean on our packages.

mypy cannot follow the editable install's folder mapping (server/ is swarm.server), so the test
lays the packages out as they install, with symlinks, and checks that tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "server": "server",
    "agent_host": "agent_host",
    "client": "client",
    "cli": "cli",
    "common": "common",
    "v1": "protos/swarm/v1",
}


def test_ruff() -> None:
    if shutil.which("ruff") is None:
        pytest.fail("ruff is missing: pip install -e '.[test]'")
    result = subprocess.run(["ruff", "check", "--quiet", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    tree = tmp_path / "swarm"
    tree.mkdir()
    for name, folder in PACKAGES.items():
        (tree / name).symlink_to(ROOT / folder, target_is_directory=True)
    args = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / ".mypy_cache"),
    ]
    for name in PACKAGES:
        if name != "v1":
            args += ["-p", f"swarm.{name}"]
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
