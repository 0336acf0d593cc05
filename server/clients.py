"""Result delivery: one outbox per client identity, kept until each result is acknowledged.

A client may disconnect and come back under the same client_id; every result it has not
acknowledged is sent again then, and none twice within one session: a result is queued for the
live session when it finishes or when that session opens, and a key already pending has been
queued for this session by one of the two (attach queues every pending key), so asking again
(a resubmission, a second submission of the id) queues nothing more until it is acknowledged.
"""

from __future__ import annotations

from swarm.server.model import Task


class ClientOutbox:
    __slots__ = ("client_id", "connected", "last_seen", "owns", "pending", "unsent")

    def __init__(self, client_id: str, now: float) -> None:
        self.client_id = client_id
        # Finished, not yet acknowledged, in finishing order (dicts keep insertion order).
        self.pending: dict[str, Task] = {}
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
        if task.key in pending:
            return False  # queued for this session already (see the module docstring)
        pending[task.key] = task
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
        for key in keys:
            pending.pop(key, None)

    def take(self, limit: int) -> list[Task]:
        if len(self.unsent) <= limit:
            out, self.unsent = self.unsent, []
        else:
            out, self.unsent = self.unsent[:limit], self.unsent[limit:]
        return out
