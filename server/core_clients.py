"""Clients of the core: result outboxes per client id, and the tasks Wait calls watch.

A part of `Core` (see core_state.py). A client's session attaches to its outbox (kept across
reconnects until every result is acknowledged), its writer takes results in batches, and idle
outboxes of clients that went away expire. Watching a task key asks the core to name the task
in `Effects.finished` once it is final, which is how unary Wait calls are answered.
"""

from __future__ import annotations

import heapq

from swarm.server.clients import ClientOutbox
from swarm.server.core_state import CoreState
from swarm.server.model import Task


class Clients(CoreState):
    def _outbox(self, client_id: str, now: float) -> ClientOutbox:
        outbox = self.clients.get(client_id)
        if outbox is None:
            outbox = self.clients[client_id] = ClientOutbox(client_id, now, self.unacked)
            self._expire_later(outbox)  # a unary client never opens a session to detach
        return outbox

    def _expire_later(self, outbox: ClientOutbox) -> None:
        due = outbox.last_seen + self.config.client_ttl_s
        heapq.heappush(self._client_expiry, (due, next(self._seq), outbox))

    def attach_client(self, client_id: str, now: float) -> ClientOutbox:
        outbox = self._outbox(client_id, now)
        if outbox.attach(now):
            self._wake_clients.add(outbox)
        return outbox

    def detach_client(self, outbox: ClientOutbox, now: float) -> None:
        outbox.detach(now)
        self._wake_clients.discard(outbox)
        self._expire_later(outbox)

    def ack(self, outbox: ClientOutbox, keys: list[str]) -> None:
        """Acknowledged results leave the client's outbox. The task itself stays in the table
        for the retention window (result_ttl_s, at most max_retained tasks), so later
        submissions may still depend on it and a resubmission is still recognised."""
        outbox.ack(keys)

    def take_results(self, outbox: ClientOutbox, limit: int) -> list[Task]:
        """Up to limit results the client's live session has not been sent yet, within the batch
        byte budget (budgets.BATCH_BYTES; at least one)."""
        return outbox.take(limit)

    def watch(self, key: str) -> None:
        """Name the task in Effects.finished once it is final (it must not be final yet)."""
        self.watched.add(key)

    def unwatch(self, key: str) -> None:
        """Nobody waits on the task any more (the waits timed out or were cancelled)."""
        self.watched.discard(key)

    def _expire_clients(self, now: float) -> None:
        """Drop the outbox (and its results) of a client unseen for client_ttl_s: disconnected
        since, or only ever submitting by unary calls. One heap entry per detach or new outbox;
        an entry whose outbox was seen since is pushed again for its new due time."""
        expiry = self._client_expiry
        ttl = self.config.client_ttl_s
        while expiry and expiry[0][0] < now:
            _, _, outbox = heapq.heappop(expiry)
            if outbox.connected or self.clients.get(outbox.client_id) is not outbox:
                continue  # attached again (its detach pushes it anew), or gone already
            if now - outbox.last_seen > ttl:
                del self.clients[outbox.client_id]
                outbox.drop()
            else:
                self._expire_later(outbox)
