"""Flow control between a client and the orchestrator: the submission window and ack holds."""

from __future__ import annotations

import asyncio
from typing import Final

from swarm.client._errors import SwarmError
from swarm.client._future import TaskFuture


class Window:
    """Credits for unfinished tasks: a producer awaits `acquire` until results free some.

    Bounds what a fast producer can pile up on both sides (futures here, tasks there).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._credit = asyncio.Event()
        self._failure: SwarmError | None = None

    async def acquire(self, n: int, *, whole: bool = False) -> int:
        """Take up to `n` credits (all `n` when `whole`), waiting while none are free.

        `whole` waits until the window has room for all `n` (or is entirely free, when `n` is
        larger than the window) and may then overdraw it: a graph is admitted in one piece.
        Raises the session's failure once it has given up.
        """
        while True:
            if self._failure is not None:
                raise self._failure.with_traceback(None)
            free = self.free
            if free > 0 and (not whole or free >= min(n, self.size)):
                got = n if whole else min(n, free)
                self.free = free - got
                return got
            self._credit.clear()
            await self._credit.wait()

    def release(self, n: int) -> None:
        self.free += n
        if self.free > 0:
            self._credit.set()

    def fail(self, error: SwarmError) -> None:
        """Wake every waiter with `error`; later acquires raise it too."""
        self._failure = error
        self._credit.set()


class AckHolds:
    """Acks that must wait: the orchestrator forgets an acknowledged task, so a dependency's ack
    waits until every dependent submitted through this client has been accepted (from then on
    the orchestrator holds the dependency by reference).

    Its loops run once per task of a graph; setup.py compiles this module with mypyc beside
    `_future.py`, so they read a future's dependencies as a C struct's field."""

    def __init__(self) -> None:
        self._pins: dict[str, int] = {}  # dependency id -> dependents not yet accepted
        self._held: set[str] = set()  # results received whose ack waits for a pin

    def __bool__(self) -> bool:
        return bool(self._pins)

    def pin(self, futures: list[TaskFuture]) -> None:
        """Hold the acks of these futures' dependencies until `unpin`."""
        pins = self._pins
        for fut in futures:
            for dep in _deps(fut):
                pins[dep] = pins.get(dep, 0) + 1

    def hold(self, task_id: str) -> bool:
        """True when `task_id` is pinned: its ack is kept until `unpin` releases it."""
        if task_id in self._pins:
            self._held.add(task_id)
            return True
        return False

    def acks_of(self, task_ids: list[str]) -> list[str]:
        """Of these just-finished tasks, the ones whose ack may go now (the others are held)."""
        pins = self._pins
        held = self._held
        out: list[str] = []
        for task_id in task_ids:
            if task_id in pins:
                held.add(task_id)
            else:
                out.append(task_id)
        return out

    def unpin(self, futures: list[TaskFuture]) -> list[str]:
        """These futures were accepted (or refused): drop their pins; return the held acks that
        may now be sent."""
        pins = self._pins
        held = self._held
        freed: list[str] = []
        for fut in futures:
            for dep in _deps(fut):
                left = pins.get(dep, 0) - 1
                if left > 0:
                    pins[dep] = left
                    continue
                pins.pop(dep, None)
                if dep in held:
                    held.discard(dep)
                    freed.append(dep)
        return freed

    def clear(self) -> None:
        self._pins.clear()
        self._held.clear()


_NONE: Final[list[str]] = []  # never mutated


def _deps(fut: TaskFuture) -> list[str]:
    """The ids a future's task depends on (a native call where compiled)."""
    opts = fut._opts
    if opts is None:
        return _NONE
    deps: list[str] = opts.get("depends_on", _NONE)
    return deps
