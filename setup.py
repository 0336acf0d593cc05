"""The build's one step beyond pyproject.toml: the orchestrator's I/O-free core, compiled by mypyc.

    pip install .                    # compiled when a C compiler is at hand, else pure Python
    SWARM_COMPILE=0 pip install .    # pure Python
    pip install -e .                 # pure Python, always (see below)

The modules in CORE (the task table, dispatch, placement, the wire conversions, the journal's
log index: the per-task Python of docs/performance.md) and in CLIENT_CORE (the SDK's task
futures, its per-task loops, its window and a graph's ack holds) type-check under
`mypy --strict`, so mypyc turns them into C extensions with the same behaviour; the .py files
ship beside them and are what runs wherever the extensions are missing. Each extension is
optional: without a compiler (or with a mypyc that refuses the code) setuptools warns and the
wheel is pure Python.
`python -c "import swarm.server; print(swarm.server.compiled())"` says which one is installed.

An editable install is never compiled: an extension module is imported in preference to the .py
beside it, so an edit would silently not run.

mypyc names a module after its path, and this repository maps `server/` to `swarm.server`
(pyproject.toml, package-dir): the sources are staged under build/mypyc-src/swarm/ first.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup

CORE = [
    "budgets",
    "clients",
    "convert",
    "core",
    "core_clients",
    "core_dispatch",
    "core_hosts",
    "core_journal",
    "core_state",
    "core_tasks",
    "core_timeouts",
    "effects",
    "graph",
    "host_wire",
    "hosts",
    "journal_log",
    "model",
    "placement",
    "queues",
    "suspects",
]
CLIENT_CORE = ["_flow", "_future"]
# What the compiled modules import, staged so that mypy can follow it (not compiled).
PACKAGES = {"server": "server", "client": "client", "common": "common", "v1": "protos/swarm/v1"}
ROOT = Path(__file__).resolve().parent
STAGE = Path("build") / "mypyc-src"


def _wanted() -> bool:
    """A build of the package proper: not metadata, not an sdist, not an editable install."""
    if os.environ.get("SWARM_COMPILE", "1") == "0":
        return False
    if any(cmd in sys.argv for cmd in ("editable_wheel", "develop")):
        return False
    return any(cmd in sys.argv for cmd in ("bdist_wheel", "build", "build_ext", "install"))


def _stage() -> list[str]:
    """Copy the packages to STAGE/swarm/<name>; the paths of the modules to compile there."""
    for name, src in PACKAGES.items():
        dest = ROOT / STAGE / "swarm" / name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(
            ROOT / src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.so", "dashboard")
        )
    return [str(STAGE / "swarm" / "server" / f"{m}.py") for m in CORE] + [
        str(STAGE / "swarm" / "client" / f"{m}.py") for m in CLIENT_CORE
    ]


def extensions() -> list[Extension]:
    if not _wanted():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("swarm: mypyc is not installed, the core stays pure Python", file=sys.stderr)
        return []
    paths = _stage()
    os.environ["MYPYPATH"] = str(STAGE)
    try:
        # Module names from the staged paths (explicit package bases). mypy looks at no
        # installed package (--no-site-packages), so the build is the same wherever it runs:
        # on a fresh machine pip builds in an environment with none of the dependencies, and
        # grpc, protobuf, msgspec and cryptography are then unknown (plain objects to the
        # compiled code). Returning such a value, or a `type: ignore` that only their stubs
        # make necessary, is for the lint (tests/test_lint.py) to judge, not the build.
        exts = mypycify(
            [
                "--explicit-package-bases",
                "--ignore-missing-imports",
                "--no-site-packages",
                "--no-warn-return-any",
                "--no-warn-unused-ignores",
                *paths,
            ],
            opt_level="3",
        )
    except BaseException as exc:  # mypyc reports a refusal with SystemExit
        print(f"swarm: mypyc could not compile the core ({exc!r}), pure Python", file=sys.stderr)
        return []
    for ext in exts:
        ext.optional = True  # no compiler: a warning and a pure-Python wheel, not a failure
    return exts


setup(ext_modules=extensions())
