"""Child processes of a local swarm: how they are spawned, signalled and restarted.

Nothing here decides *when*; `supervisor.py` does. This module only knows how to start a child
that cannot outlive its supervisor, how long to wait before restarting one that died
(`restart_backoff`), and how to read the port a child bound (`read_port`, also used by the
benchmarks' own helper processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

from swarm.common.backoff import Backoff
from swarm.deploy.orphan import tied, tied_env

T = TypeVar("T")
Wrap = Callable[[list[str]], list[str]]  # turns an argv into one that runs it elsewhere


def read_port(path: Path) -> int | None:
    """The port a process wrote to `path`, or None while there is none yet (the orchestrator
    creates the file, then writes: empty means "not yet", like missing)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def poll(check: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.01) -> T:
    """Call `check` until it returns something truthy; raise TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what}")
        time.sleep(interval_s)


async def spawn(
    module: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path | None,
    quiet_stdout: bool = False,
    wrap: Wrap | None = None,
) -> asyncio.subprocess.Process:
    """Start `python -m module args` in a session of its own, tied to this thread.

    Tied: it runs under `swarm.deploy.orphan`, which makes the kernel SIGKILL it when the thread
    that spawned it exits, even if this process is SIGKILLed (see that module for why there and
    not in a preexec_fn). Its own session keeps a terminal's Ctrl-C (SIGINT to the whole
    foreground process group) away from it: only the supervisor hears it, and signals each child
    once, in order. Without this the orchestrator would stop at once while the hosts drain, and
    the supervisor's SIGTERM would be each host's second signal, which means "exit now".

    `log`: append stdout and stderr there; None: inherit the supervisor's (stdout discarded when
    `quiet_stdout`, so that the supervisor alone speaks on it). `wrap`: a command that runs
    the tied argv elsewhere, e.g. `ip netns exec NS ...` (it must exec in place, so that the
    child's parent is still this thread and the tie holds).
    """
    sink: IO[bytes] | None = None
    if log is not None:
        # The child holds its own copy of the descriptor; ours is closed right after the spawn.
        sink = await asyncio.to_thread(open, log, "ab")
    try:
        stdout: IO[bytes] | int | None = sink
        if sink is None and quiet_stdout:
            stdout = asyncio.subprocess.DEVNULL
        argv = tied(module, *args)
        return await asyncio.create_subprocess_exec(
            *(wrap(argv) if wrap is not None else argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=sink,
            env=tied_env(env),
            start_new_session=True,
        )
    finally:
        if sink is not None:
            sink.close()


def send(proc: asyncio.subprocess.Process | None, sig: signal.Signals) -> bool:
    """Signal a child that may already have exited; True when the signal was sent.

    `os.kill`, not `proc.send_signal`: Popen's send_signal first polls the child with
    waitpid, and a child that died a moment ago would be reaped there, behind the back of
    asyncio's child watcher, which then logs "Unknown child process" and reports 255 for it
    instead of its real status. Until the watcher reaps it, a dead child is a zombie that
    keeps its pid; what remains is the moment between that reap and the loop hearing of it.
    """
    if proc is None or proc.returncode is not None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
        return True
    return False


# A host that ran this long before dying counts as healthy: its next restart is quick again.
RESTART_STABLE_S = 10.0
# Less jitter than a reconnect's: restarts spread out, and a crash loop still waits its doubling.
RESTART_JITTER = 0.2


def restart_backoff(initial_s: float = 0.1, max_s: float = 10.0) -> Backoff:
    """How long to wait before restarting a host that died: `Backoff.next(ran_s)` with how long
    it ran. One that dies right after start (a bad --module, a crash loop) waits twice as long
    each time, up to `max_s`, so a crash loop costs a few restarts a minute, not a spin."""
    return Backoff(initial_s, max_s, jitter=RESTART_JITTER, stable_s=RESTART_STABLE_S)
