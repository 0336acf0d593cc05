"""Clients of the core: result outboxes per client id, and the tasks Wait calls watch.

A part of `Core` (see core_state.py). A client's session attaches to its outbox (kept across
reconnects until every result is acknowledged), its writer takes results in batches, and idle
outboxes of clients that went away expire. Watching a task key asks the core to name the task
in `Effects.finished` once it is final, which is how unary Wait calls are answered.
"""

from __future__ import annotations

from swarm.server.clients import ClientOutbox
from swarm.server.core_state import CoreState
from swarm.server.journal_base import ACK
from swarm.server.model import Task


class Clients(CoreState):
    def _outbox(self, client_id: str, now: float) -> ClientOutbox:
        """The outbox of a client a submission names (the only caller)."""
        outbox = self.clients.get(client_id)
        if outbox is None:
            outbox = self.clients[client_id] = ClientOutbox(client_id, now)
        outbox.owns = True
        return outbox

    def attach_client(self, client_id: str, now: float) -> ClientOutbox:
        outbox = self.clients.get(client_id)
        if outbox is None:
            outbox = self.clients[client_id] = ClientOutbox(client_id, now)
        if outbox.attach(now):
            self._wake_clients.add(outbox)
        return outbox

    def detach_client(self, outbox: ClientOutbox, now: float) -> None:
        """A session closed. An outbox no submission ever named holds nothing and can receive
        nothing, so it goes now rather than after client_ttl_s: sessions that open and close
        without submitting leave no state behind."""
        outbox.detach(now)
        self._wake_clients.discard(outbox)
        if not outbox.owns and self.clients.get(outbox.client_id) is outbox:
            del self.clients[outbox.client_id]

    def ack(self, outbox: ClientOutbox, keys: list[str]) -> None:
        """Acknowledged results leave the client's outbox. The task itself stays in the table
        for the retention window (result_ttl_s, at most max_retained tasks), so later
        submissions may still depend on it and a resubmission is still recognised."""
        outbox.ack(keys)
        if self.journaling:
            self._effects.journal.append((ACK, outbox.client_id, keys))

    def take_results(self, outbox: ClientOutbox, limit: int) -> list[Task]:
        """Up to limit results the client's live session has not been sent yet."""
        return outbox.take(limit)

    def watch(self, key: str) -> None:
        """Name the task in Effects.finished once it is final (it must not be final yet)."""
        self.watched.add(key)

    def unwatch(self, key: str) -> None:
        """Nobody waits on the task any more (the waits timed out or were cancelled)."""
        self.watched.discard(key)

    def _expire_clients(self, now: float) -> None:
        ttl = self.config.client_ttl_s
        for outbox in [c for c in self.clients.values() if not c.connected]:
            if now - outbox.last_seen > ttl:
                del self.clients[outbox.client_id]
