"""Run a module as a child that dies with its parent: `python -m swarm.deploy.orphan MOD ARGS`.

A SIGKILLed supervisor runs no cleanup, so without this its orchestrator and hosts would live on
as orphans holding the port. On Linux, PR_SET_PDEATHSIG asks the kernel to SIGKILL this process
when the thread that spawned it exits; the supervisor spawns every child from the one thread
that runs its event loop, which lives until all children are reaped.

Why here, after exec, and not in a `preexec_fn`: a preexec_fn forces a real fork() of the
supervisor and runs Python between fork and exec. The supervisor often lives in a process full
of gRPC threads (a benchmark, a test), where that can deadlock on a lock another thread held at
the fork, and where gRPC's fork handlers complain on every spawn. Without a preexec_fn, Python
spawns with vfork/exec and runs nothing in between. The setting is the same either way: the
death signal belongs to the process, survives exec (cleared only for set-uid binaries), and
refers to the thread that spawned it, whenever it is set.

The supervisor passes its pid in $SWARM_PARENT_PID: if the parent died before the prctl, this
process has been re-parented already, and leaves at once rather than run unsupervised.
SIGKILL rather than SIGTERM: a host draining towards an orchestrator that is also going away
would wait for a stream that never comes back.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys
from collections.abc import Mapping

PARENT_ENV = "SWARM_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def tied(module: str, *args: str) -> list[str]:
    """The argv that runs `python -m module args` under this wrapper, so that it dies with the
    thread that spawns it. Spawn it with `tied_env(...)`."""
    return [sys.executable, "-m", "swarm.deploy.orphan", module, *args]


def tied_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus this process's pid, which the wrapper checks its parent against."""
    return {**env, PARENT_ENV: str(os.getpid())}


def die_with_parent() -> bool:
    """Ask for SIGKILL when the parent thread exits; False where the platform cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return False
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return bool(prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m swarm.deploy.orphan MODULE [ARGS...]")
    parent = os.environ.pop(PARENT_ENV, "")
    if die_with_parent() and parent and os.getppid() != int(parent):
        raise SystemExit(f"{sys.argv[1]}: the supervisor (pid {parent}) died before it started")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
