"""Effects: everything a core call asks of the I/O edge, as one object the edge takes whole.

The core only records here; after each call the edge takes the lot (`Core.take_effects()`),
acts on it (wakes stream writers, closes sessions, resolves Wait calls) and never writes core
state back. What to send lies in the outboxes the woken writers drain through the core
(`Core.take_assignments`, `take_cancels`, `take_started_ok`, `take_drain_request`,
`take_results`).
"""

from __future__ import annotations

from typing import Any

from swarm.server.clients import ClientOutbox
from swarm.server.hosts import HostView
from swarm.server.model import Task

# The reason a session of a lost host is closed with; the host reads it in the stream's status.
DECLARED_LOST = "declared lost"


class Effects:
    __slots__ = ("close_hosts", "finished", "journal", "wake_clients", "wake_hosts")

    def __init__(self) -> None:
        # Host sessions with something new to write: assignments, cancels, confirmations of
        # started notices or a drain request.
        self.wake_hosts: set[HostView] = set()
        # Client sessions with results to write.
        self.wake_clients: set[ClientOutbox] = set()
        # Sessions of lost hosts to close, with the reason: nothing more they send counts.
        self.close_hosts: list[tuple[HostView, str]] = []
        # Watched tasks (Core.watch) that became final: their waiters can be answered.
        self.finished: list[Task] = []
        # Journal records of these calls (journal_base.py), when the core journals; the edge
        # hands the list to the journal's writer and replaces it.
        self.journal: list[tuple[Any, ...]] = []

    def __bool__(self) -> bool:
        return bool(self.wake_hosts or self.wake_clients or self.close_hosts or self.finished)

    def clear(self) -> None:
        # Checked first: most calls leave most of these empty, and a check is cheaper than a clear.
        if self.wake_hosts:
            self.wake_hosts.clear()
        if self.wake_clients:
            self.wake_clients.clear()
        if self.close_hosts:
            self.close_hosts.clear()
        if self.finished:
            self.finished.clear()
        if self.journal:
            self.journal = []
