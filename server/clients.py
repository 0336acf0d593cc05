"""Result delivery: one outbox per client identity, kept until each result is acknowledged.

A client may disconnect and come back under the same client_id; every result it has not
acknowledged is sent again then, and none twice within one session: a result is queued for the
live session when it finishes or when that session opens, and a key already pending has been
queued for this session by one of the two (attach queues every pending key), so asking again
(a resubmission, a second submission of the id) queues nothing more until it is acknowledged.

What the pending results hold in memory (budgets.held_bytes) is counted per outbox and, in
`total`, for all of them: the core refuses submissions past either budget.
"""

from __future__ import annotations

from swarm.server.budgets import (
    BATCH_BYTES,
    ITEM_OVERHEAD_BYTES,
    TASK_MEMORY_BYTES,
    Tally,
    held_bytes,
    result_bytes,
)
from swarm.server.model import Task


class ClientOutbox:
    __slots__ = (
        "client_id",
        "connected",
        "last_seen",
        "live_bytes",
        "owns",
        "pending",
        "pending_bytes",
        "total",
        "unsent",
    )

    def __init__(self, client_id: str, now: float, total: Tally | None = None) -> None:
        self.client_id = client_id
        # Finished, not yet acknowledged, in finishing order (dicts keep insertion order).
        self.pending: dict[str, Task] = {}
        self.pending_bytes = 0
        # Payloads (and TASK_MEMORY_BYTES each) of this client's unfinished tasks: results to
        # come, counted against its budget from submit on, or a fast submitter would outrun it.
        self.live_bytes = 0
        self.total = Tally() if total is None else total
        # Of those, the ones the live session has not been sent yet.
        self.unsent: list[Task] = []
        self.connected = False
        self.last_seen = now
        # Whether a submission named this client: only then can a result ever be delivered to
        # it, so only then is the outbox worth keeping once its session closed.
        self.owns = False

    def deliver(self, task: Task) -> bool:
        """Queue a finished task's result; True when a live session should be woken."""
        pending = self.pending
        queued = len(pending)
        pending.setdefault(task.key, task)  # one lookup, where `in` and a store take two
        if len(pending) == queued:
            return False  # queued for this session already (see the module docstring)
        # budgets.held_bytes, inlined for the usual result (no error)
        if task.error is None:
            cost = len(task.payload) + len(task.output) + TASK_MEMORY_BYTES
        else:
            cost = held_bytes(task)
        self.pending_bytes += cost
        self.total.bytes += cost
        if self.connected:
            self.unsent.append(task)
            return True
        return False

    def attach(self, now: float) -> int:
        """A session opened: everything unacknowledged goes out again."""
        self.connected = True
        self.last_seen = now
        self.unsent = list(self.pending.values())
        return len(self.unsent)

    def detach(self, now: float) -> None:
        self.connected = False
        self.last_seen = now
        self.unsent = []

    def ack(self, keys: list[str]) -> None:
        pending = self.pending
        freed = 0
        for key in keys:
            task = pending.pop(key, None)
            if task is not None:
                if task.error is None:  # budgets.held_bytes, inlined for the usual result
                    freed += len(task.payload) + len(task.output) + TASK_MEMORY_BYTES
                else:
                    freed += held_bytes(task)
        self.pending_bytes -= freed
        self.total.bytes -= freed

    def drop(self) -> None:
        """The outbox expired: its results leave the total."""
        self.total.bytes -= self.pending_bytes
        self.pending_bytes = 0
        self.pending = {}
        self.unsent = []

    def take(self, limit: int, max_bytes: int = BATCH_BYTES) -> list[Task]:
        """The next results to send: at most `limit`, and within `max_bytes` but at least one."""
        unsent = self.unsent
        n = min(limit, len(unsent))
        size = 0
        for i in range(n):
            t = unsent[i]
            # budgets.result_bytes, inlined for the usual result (no error)
            size += len(t.output) + ITEM_OVERHEAD_BYTES if t.error is None else result_bytes(t)
            if size > max_bytes and i:
                n = i
                break
        if n == len(unsent):
            out, self.unsent = unsent, []
        else:
            out, self.unsent = unsent[:n], unsent[n:]
        return out
