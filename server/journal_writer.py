"""Group commit on a writer thread: the event loop never waits for an fsync, only for durability.

The edge appends the records of each core call (`append`, cheap: a lock and a list append);
the thread takes every list queued since its last commit and applies them through the backend
in one transaction, so the commit rate adapts to load without a timer: one commit per core
call when idle, hundreds of tasks per commit under load. `durable()` is what an answer that
promises durability awaits: it resolves once everything appended before it is committed, and
costs nothing when nothing is pending.

With `inline` (SQLite with synchronous=NORMAL, where a commit is one INSERT written to the page
cache, tens of µs), an append finding the journal idle is committed on the event loop instead,
in a callback run as soon as the caller yields: waking the thread and then the loop again costs
more than that, on a busy machine a scheduling delay each, twice on a result's path. Made a
callback later rather than at once, the commit lets what needs no durability go first (the
orchestrator wakes the hosts' writers before it appends: a new task's assignment is on its way
while its Submit's answer waits for the commit) and takes every append made meanwhile. The
backend's housekeeping (checkpoints, which fsync) stays on the thread (`maintain`). Under load
the thread does the commits.

A failed write is fatal: the error is kept, every waiter gets it, and `on_failure` (the Server,
which stops the orchestrator) is called on the loop; answering on without a journal would
promise what is not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from swarm.server.journal_base import JournalBackend, Record

log = logging.getLogger("swarm.server.journal")

MAINTAIN_EVERY = 256  # inline commits between two calls of the backend's housekeeping
# Idle enough to commit inline: nothing committed for this long. Under load core calls come
# tens of µs apart and their commits must stay grouped on the thread; a sequential client's
# (W3) come a host's round trip apart, hundreds of µs.
INLINE_IDLE_S = 0.0002


class JournalWriter:
    def __init__(
        self,
        backend: JournalBackend,
        *,
        prune_every_s: float = 30.0,
        prune_horizon_s: float = 900.0,
        inline: bool = False,
        inline_idle_s: float = INLINE_IDLE_S,
    ) -> None:
        self.backend = backend
        # Commit on the caller's thread (the event loop) when nothing is pending: for a backend
        # whose commit is a write to the page cache (SQLite, synchronous=NORMAL), that is
        # cheaper than two thread handoffs (see `append`).
        self.inline = inline
        self._inline_idle_s = inline_idle_s
        self._lock = threading.Lock()  # the backend: one thread at a time
        self._maintain = False  # the thread is asked for the backend's housekeeping
        self.inline_commits = 0
        self._last_commit = 0.0  # time.monotonic() of the last commit's end
        self._prune_every_s = prune_every_s
        self._prune_horizon_s = prune_horizon_s
        self._cond = threading.Condition()
        self._queue: list[list[Record]] = []
        self._here: list[list[Record]] | None = None  # for a commit on the loop (`append`)
        self._appended = 0  # groups appended (loop side)
        self._committed = 0  # groups committed (loop side, set from the thread via the loop)
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failure: BaseException | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self.commits = 0
        self.rows = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> bool:
        return self._committed != self._appended

    def append(self, records: list[Record]) -> None:
        """Queue one core call's records for the thread; or, inline and with nothing pending
        (the thread idle: an idle orchestrator, a sequential client), commit them on the loop
        as soon as the caller yields (`_commit_here`), with whatever else is appended until
        then. That spares the thread's wake-up and the loop's, each a scheduling delay on a
        busy machine, twice on a result's path (its Submit, its final state); and the caller
        sends what needs no durability first (a new task's assignment: only its Submit's
        answer waits for the commit). Under load something is pending, or was committed a
        moment ago (INLINE_IDLE_S), so commits stay grouped on the thread."""
        if self.failure is not None:
            raise self.failure
        here = self._here
        if here is not None:  # a commit on the loop is due: these join it
            with self._cond:  # unless `close` (another thread) just handed it to the thread
                if self._here is here:
                    here.append(records)
                    self._appended += 1
                    return
        if (
            self.inline
            and self._committed == self._appended
            and time.monotonic() - self._last_commit >= self._inline_idle_s
        ):
            assert self._loop is not None
            self._here = [records]
            self._appended += 1
            self._loop.call_soon(self._commit_here)
            return
        with self._cond:
            self._queue.append(records)
            self._appended += 1
            self._cond.notify()

    def _commit_here(self) -> None:
        """Commit on the loop what `append` kept for it; the thread's, should it be busy
        (housekeeping holds the backend) or stopping."""
        with self._cond:
            groups, self._here = self._here, None
            if not groups:
                return  # `close` handed them to the thread
            if self._stop or not self._lock.acquire(False):
                self._queue.extend(groups)
                self._cond.notify()
                return
        try:
            self.backend.write(groups)
        except BaseException as exc:
            log.critical("journal write failed: %s", exc)
            self._failed(exc)
            return
        finally:
            self._lock.release()
        self._committed_to(self._appended, sum(len(g) for g in groups))
        self.inline_commits += 1
        if self.inline_commits % MAINTAIN_EVERY == 0:
            with self._cond:  # checkpoints stay off the event loop
                self._maintain = True
                self._cond.notify()

    def durable(self) -> asyncio.Future[None] | None:
        """A future resolved once all appended so far is committed; None if it already is."""
        if self.failure is not None:
            raise self.failure
        if self._committed == self._appended:
            return None
        assert self._loop is not None
        fut = self._loop.create_future()
        self._waiters.append((self._appended, fut))
        return fut

    def _committed_to(self, upto: int, rows: int) -> None:
        self._committed = upto
        self._last_commit = time.monotonic()
        self.commits += 1
        self.rows += rows
        waiters = self._waiters
        while waiters and waiters[0][0] <= upto:
            fut = waiters.popleft()[1]
            if not fut.done():
                fut.set_result(None)

    def _failed(self, exc: BaseException) -> None:
        self.failure = exc
        while self._waiters:
            fut = self._waiters.popleft()[1]
            if not fut.done():
                fut.set_exception(exc)
        if self.on_failure is not None:
            self.on_failure(exc)

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        next_prune = time.monotonic() + self._prune_every_s
        while True:
            with self._cond:
                while not self._queue and not self._stop and not self._maintain:
                    if not self._cond.wait(timeout=max(0.0, next_prune - time.monotonic())):
                        break  # the prune is due
                groups, self._queue = self._queue, []
                upto = self._appended
                stop = self._stop
                self._maintain = False
            try:
                with self._lock:
                    if groups:
                        self.backend.write(groups)
                        rows = sum(len(g) for g in groups)
                        with contextlib.suppress(RuntimeError):  # closed loop: nobody waits
                            loop.call_soon_threadsafe(self._committed_to, upto, rows)
                    self.backend.maintain()
                    if time.monotonic() >= next_prune:
                        next_prune = time.monotonic() + self._prune_every_s
                        dropped = self.backend.prune(time.time() - self._prune_horizon_s)
                        if dropped:
                            log.info("journal: pruned %d finished tasks", dropped)
            except BaseException as exc:
                log.critical("journal write failed: %s", exc)
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody left to tell
                    loop.call_soon_threadsafe(self._failed, exc)
                return
            if stop and not groups:
                return

    def close(self) -> None:
        """Commit what is queued, then stop the thread and close the backend (blocking)."""
        with self._cond:
            self._stop = True
            if self._here:  # a commit on the loop not made yet: the thread makes it
                self._queue.extend(self._here)
                self._here = None
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self.backend.close()
