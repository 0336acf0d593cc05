"""Clients of the core: result outboxes per client id, and the tasks Wait calls watch.

A part of `Core` (see core_state.py). A client's session attaches to its outbox (kept across
reconnects until every result is acknowledged), its writer takes results in batches, and idle
outboxes of clients that went away expire. Watching a task key asks the core to name the task
in `Effects.finished` once it is final, which is how unary Wait calls are answered.

A known id submitted again is checked here (same content, bounded submitters) and its submitter
becomes a watcher: every submitter of an id is sent its result once (core_tasks.py calls in).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from mypy_extensions import trait
from swarm.server.clients import ClientOutbox
from swarm.server.core_state import CoreState
from swarm.server.journal_base import ACK, WATCH
from swarm.server.model import Rejected, Task


@trait
class Clients(CoreState):
    def _outbox(self, client_id: str, now: float) -> ClientOutbox:
        """The outbox of a client a submission names (the only caller)."""
        outbox = self.clients.get(client_id)
        if outbox is None:
            outbox = self.clients[client_id] = ClientOutbox(client_id, now, self.unacked)
            self._expire_later(outbox)  # a unary client never opens a session to detach
        outbox.owns = True
        return outbox

    def _expire_later(self, outbox: ClientOutbox) -> None:
        due = outbox.last_seen + self.config.client_ttl_s
        heapq.heappush(self._client_expiry, (due, next(self._seq), outbox))

    def attach_client(self, client_id: str, now: float) -> ClientOutbox:
        outbox = self.clients.get(client_id)
        if outbox is None:
            outbox = self.clients[client_id] = ClientOutbox(client_id, now, self.unacked)
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
        else:
            self._expire_later(outbox)

    def ack(self, outbox: ClientOutbox, keys: list[str]) -> None:
        """Acknowledged results leave the client's outbox. The task itself stays in the table
        for the retention window (result_ttl_s, at most max_retained tasks), so later
        submissions may still depend on it and a resubmission is still recognised."""
        outbox.ack(keys)
        if self.journaling:
            self._effects.journal.append((ACK, outbox.client_id, keys))

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

    # ---- resubmissions and watchers (called by TaskTable.submit and _finish) ---------------

    def _check_resubmission(
        self, existing: Task, task: Task, deps: Sequence[str], i: int, client_id: str
    ) -> None:
        """Refuse (before anything changed) a known id with other content, or one more
        submitter than a task may have."""
        differs = existing.differs_from(task, deps)
        if differs:
            raise Rejected(
                "ALREADY_EXISTS",
                f"tasks[{i}].{differs}",
                f"id {task.id!r} is taken by a task with another {differs}: an id names one "
                f"task, resubmit it unchanged or choose a new id",
            )
        watchers = existing.watchers
        if (
            watchers is not None
            and client_id
            and client_id != existing.client_id
            and client_id not in watchers
            and not existing.state.final
            and len(watchers) >= self.config.max_watchers
        ):
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                f"tasks[{i}].id",
                f"task {task.id!r} already has {len(watchers)} other submitters waiting for its "
                f"result, limit {self.config.max_watchers}",
            )

    def _answer_resubmissions(
        self, outbox: ClientOutbox, client_id: str, known: list[Task]
    ) -> None:
        """Every submitter of an id is sent its result: now when it is final (unless this
        session has it queued already), else when it finishes (as a watcher)."""
        for existing in known:
            if existing.state.final:
                if outbox.deliver(existing):
                    self._wake_clients.add(outbox)
            elif client_id != existing.client_id:
                watchers = existing.watchers
                if watchers is None:
                    existing.watchers = [client_id]
                elif client_id not in watchers:
                    watchers.append(client_id)
                else:
                    continue
                if self.journaling:
                    self._effects.journal.append((WATCH, existing.key, client_id))

    def _deliver_to_watchers(self, task: Task) -> None:
        clients = self.clients
        for client_id in task.watchers or ():
            outbox = clients.get(client_id)
            if outbox is not None and outbox.deliver(task):
                self._wake_clients.add(outbox)
        task.watchers = None  # final: later submitters are answered at once

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
