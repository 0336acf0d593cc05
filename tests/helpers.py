"""Helpers for tests only: polling with a deadline, and `LocalSwarm` with the tests' defaults.

    with local_swarm(hosts=2, agents_per_host=100) as c:
        c.address                        # "127.0.0.1:PORT", the port bound as 0 and read back
        c.kill_host(0)                   # SIGKILL; c.stop_host(0) / c.cont_host(0): SIGSTOP/SIGCONT
        c.wait_hosts(2)                  # poll GetStatus until 2 hosts are ACTIVE

The swarm is the one `swarm up` runs (`swarm.deploy.local.LocalSwarm`, its supervisor); only
the defaults differ, see `local_swarm`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from swarm.deploy.local import LocalSwarm

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def eventually(
    check: Callable[[], T | None], timeout_s: float = 10.0, interval_s: float = 0.01, what: str = ""
) -> T:
    """Poll `check` until it returns neither None nor False; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        last = check()
        if last is not None and last is not False:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or check} (last: {last!r})")
        time.sleep(interval_s)


def local_swarm(hosts: int = 2, agents_per_host: int = 100, **options: Any) -> LocalSwarm:
    """A `LocalSwarm` as integration tests want it, unless `options` say otherwise: hosts named
    `h0`, `h1`, ... (tests assert where work ran); a dead host stays dead (`restart=True` to
    have the supervisor restart it); leaving the `with` SIGKILLs everything, as there is nothing
    to drain for and tests must not wait a drain grace; the repository root on the children's
    PYTHONPATH, so that hosts can load `tests.*` handler modules; and the harmful built-in kinds
    (`crash`, `burn`) served, as tests use them."""
    defaults: dict[str, Any] = {
        "test_kinds": True,
        "host_ids": "slot",
        "restart": False,
        "on_exit": "kill",
        "pythonpath": [ROOT],
    }
    return LocalSwarm(hosts, agents_per_host, **{**defaults, **options})


def run_cli(capsys: Any, address: str, *argv: str) -> tuple[int, str, str]:
    """`swarm ARGV --connect ADDRESS` in this process: its exit code, stdout and stderr."""
    from swarm.cli.main import main

    code = main([*argv, "--connect", address])
    out, err = capsys.readouterr()
    return code, out, err
