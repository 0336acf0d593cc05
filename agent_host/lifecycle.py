"""The agent host's connection lifecycle: one state, its legal edges in one table.

    NEW ──> CONNECTING ──> CONNECTED ──> DRAINING ──> DRAINED ──> STOPPED
               ^   │            │
               │   v            v
               BACKOFF <────────┘          (any state but STOPPED) ──stop──> STOPPED

CONNECTING: a hello is out, no welcome yet. CONNECTED: a session runs. BACKOFF: the stream
failed or ended, a reconnect waits. DRAINING: the drain sequence runs on the stream (see
AgentHost._drain). DRAINED: the orchestrator saw the goodbye and ended the call. STOPPED: final;
reached from anywhere by stop(), by a drain that lost its orchestrator, or by the end of run().

A drain can be asked for in any state: that request (the grace period) is not a state of the
connection; it becomes DRAINING once a session runs. `to()` refuses every edge not in the table,
so a mistake in the host's sequencing fails loudly instead of leaving it half-connected.
"""

from __future__ import annotations

import asyncio
import enum
import logging

log = logging.getLogger("swarm.agent_host")


class Conn(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    DRAINING = "draining"
    DRAINED = "drained"
    STOPPED = "stopped"


_C = Conn
EDGES: dict[Conn, frozenset[Conn]] = {
    _C.NEW: frozenset({_C.CONNECTING, _C.STOPPED}),
    _C.CONNECTING: frozenset({_C.CONNECTED, _C.BACKOFF, _C.STOPPED}),
    _C.CONNECTED: frozenset({_C.DRAINING, _C.BACKOFF, _C.STOPPED}),
    _C.BACKOFF: frozenset({_C.CONNECTING, _C.STOPPED}),
    # A draining host whose stream breaks leaves: the orchestrator requeues what it held.
    _C.DRAINING: frozenset({_C.DRAINED, _C.STOPPED}),
    _C.DRAINED: frozenset({_C.STOPPED}),
    _C.STOPPED: frozenset(),
}


class IllegalTransition(RuntimeError):
    def __init__(self, old: Conn, new: Conn) -> None:
        super().__init__(f"illegal connection transition {old.name} -> {new.name}")
        self.old = old
        self.new = new


class Lifecycle:
    def __init__(self, name: str = "host") -> None:
        self.name = name
        self.state = Conn.NEW
        self._changed = asyncio.Event()  # set, and replaced, on every move: wakes wait_for

    def to(self, new: Conn) -> None:
        """Move to `new`; raises IllegalTransition (and stays put) for an edge not in EDGES."""
        old = self.state
        if new not in EDGES[old]:
            raise IllegalTransition(old, new)
        self.state = new
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        log.debug("%s: %s -> %s", self.name, old.name, new.name)

    async def wait_for(self, *states: Conn) -> None:
        """Until the state is one of `states`; RuntimeError if it stops first (STOPPED is
        final, so nothing else can follow)."""
        while self.state not in states:
            if self.state is Conn.STOPPED:
                raise RuntimeError(f"{self.name} stopped before it was {states[0].name}")
            await self._changed.wait()

    @property
    def stopped(self) -> bool:
        return self.state is Conn.STOPPED


__all__ = ["EDGES", "Conn", "IllegalTransition", "Lifecycle"]
