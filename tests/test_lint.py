"""House rules as tests: ruff clean, mypy --strict clean on our packages.

mypy cannot follow the editable install's folder mapping (server/ is swarm.server), so the test
lays the packages out as they install, with symlinks, and checks that tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The install layout, read from pyproject.toml: a new package is checked without edits here.
PACKAGES = {
    name.removeprefix("swarm."): folder
    for name, folder in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ].items()
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
