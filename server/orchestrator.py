"""The asyncio shell around the core: owns the clock, the timer loop, and wakes stream writers.

Every event handler follows one pattern: call the core with `now()`, then `flush()`, which takes
the core's effects (one `Effects`) and applies them: the session of each host or client that
has something to send is woken, waiters of finished tasks are resolved, and sessions of lost
hosts are closed. The edge reads core state but never writes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from swarm.server.config import OrchestratorConfig
from swarm.server.convert import SpecReader
from swarm.server.core import Core
from swarm.server.hosts import HostView
from swarm.server.journal_writer import JournalWriter
from swarm.server.model import Task

if TYPE_CHECKING:
    from swarm.server.dashboard_api import Observer

log = logging.getLogger("swarm.server")


class Wakeable(Protocol):
    def wake(self) -> None: ...

    def close(self, why: str) -> None: ...


class Orchestrator:
    def __init__(
        self,
        config: OrchestratorConfig,
        core: Core | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.core = core or Core(config)
        self.spec_reader = SpecReader(config)
        self.now = clock
        self.started_at = clock()
        self.instance_id = f"{int(time.time() * 1000):x}"
        self.host_sessions: dict[HostView, Wakeable] = {}
        self.client_sessions: dict[str, Wakeable] = {}
        self._waiters: dict[str, list[asyncio.Future[Task]]] = {}
        self.shutting_down = False  # a graceful stop began: no new client sessions
        # Set while the HTTP port runs (server/observe.py): told of batches and host losses.
        self.observer: Observer | None = None
        # The journal's writer (journal_writer.py) when the orchestrator is durable.
        self.journal: JournalWriter | None = None

    def use_journal(self, journal: JournalWriter) -> None:
        self.journal = journal
        self.core.journaling = True

    async def durable(self) -> None:
        """Until everything the core recorded so far is committed to the journal (at once when
        there is no journal or nothing pending): what answers promising durability await."""
        if self.journal is not None:
            fut = self.journal.durable()
            if fut is not None:
                await fut

    def end_client_sessions(self, why: str) -> None:
        """A graceful stop: end every client's Session now, with `why` (their clients learn
        the orchestrator shut down, not that the network failed), and open no new ones."""
        self.shutting_down = True
        for session in list(self.client_sessions.values()):
            session.close(why)

    def flush(self) -> None:
        """Apply the effects of the core calls since the last flush: call after each one."""
        effects = self.core.take_effects()
        # Hosts first: an assignment needs no durability (a host's writer waits for it only
        # when the attempt's reservation is journaled), so it goes out while the journal
        # commits what the answers to clients wait for.
        if effects.wake_hosts:
            for host in effects.wake_hosts:
                session = self.host_sessions.get(host)
                if session is not None:
                    session.wake()
        if effects.journal:
            assert self.journal is not None, "the core journals only with a journal"
            self.journal.append(effects.journal)
            effects.journal = []
        if effects.wake_clients:
            for outbox in effects.wake_clients:
                client = self.client_sessions.get(outbox.client_id)
                if client is not None:
                    client.wake()
        if effects.close_hosts:
            for host, why in effects.close_hosts:
                if self.observer is not None:
                    self.observer.host_lost(host, self.now())
                session = self.host_sessions.pop(host, None)
                if session is not None:
                    session.close(why)
        if effects.finished:
            for task in effects.finished:
                for fut in self._waiters.pop(task.key, ()):
                    if not fut.done():
                        fut.set_result(task)

    async def wait_for(self, keys: list[str], timeout_s: float, any_: bool) -> list[Task]:
        """Wait until the named tasks (or any one of them) are final, or the timeout passes."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Task]] = []
        done: list[Task] = []
        for key in keys:
            task = self.core.tasks.get(key)
            if task is None:
                continue
            if task.state.final:
                done.append(task)
                continue
            fut: asyncio.Future[Task] = loop.create_future()
            self._waiters.setdefault(key, []).append(fut)
            self.core.watch(key)
            futures.append(fut)
        if futures and not (any_ and done):
            when = asyncio.FIRST_COMPLETED if any_ else asyncio.ALL_COMPLETED
            await asyncio.wait(
                futures, timeout=timeout_s if timeout_s > 0 else None, return_when=when
            )
        for fut in futures:
            if fut.done():
                done.append(fut.result())
            else:
                fut.cancel()
        self._drop_cancelled_waiters(keys)
        return done

    def _drop_cancelled_waiters(self, keys: list[str]) -> None:
        for key in keys:
            futs = self._waiters.get(key)
            if futs is None:
                continue
            futs[:] = [f for f in futs if not f.done()]
            if not futs:
                del self._waiters[key]
                self.core.unwatch(key)

    async def run_timers(self, seam: Callable[[], None] | None = None) -> None:
        """The one timer loop: leases, retries, deadlines and expiry, every tick_s.

        It never returns; an error in a tick ends it, and the Server that owns it then stops
        the process (see server/app.py): running on without timers would lose no host, retry
        nothing and time nothing out. `seam`, called before each tick, can inject such an error
        (FaultPlan.on_tick)."""
        while True:
            await asyncio.sleep(self.config.tick_s)
            if seam is not None:
                seam()
            self.core.tick(self.now())
            self.flush()
