"""The scheduling core: every decision of the orchestrator, with no I/O.

`Core` takes events (tasks submitted, a host joined, any host message, a batch of results, the
time passed) with the current time. It never awaits, reads a clock or touches gRPC, so every
path, failure paths included, is unit-tested without sockets or sleeps. After each call the
edge (orchestrator.py and the services) takes one `Effects` (`take_effects()`: whom to wake,
which sessions to close, which watched tasks finished), acts on it, and never writes core
state: woken writers take what to send through the core (`take_assignments`, `take_cancels`,
`take_started_ok`, `take_drain_request`, `take_results`). `tick(now)` runs on a timer.

Core is assembled from one part per concern (see core_state.py for the shared state):

* core_tasks.py: the task table and DAG: accept, results, retry, requeue, finish, expiry;
* core_hosts.py: host failure detection: leases, suspects, losses, fencing, quarantine;
* core_timeouts.py: attempt timeouts the orchestrator enforces when a host never reports;
* core_dispatch.py: what to send to which host (decided by placement.py), and taking it;
* core_clients.py: result outboxes per client, and the tasks Wait calls watch;
* core_journal.py: attempt reservations for the journal, and the state rebuilt on recovery.
"""

from __future__ import annotations

from swarm.server.core_clients import Clients
from swarm.server.core_dispatch import Dispatch
from swarm.server.core_hosts import HostFailures
from swarm.server.core_journal import JournalPart
from swarm.server.core_tasks import HostResult, SubmitOutcome, TaskTable
from swarm.server.core_timeouts import AttemptTimeouts
from swarm.server.effects import Effects

# What callers of the core name, importable from here as before the split.
__all__ = ["Core", "Effects", "HostResult", "SubmitOutcome"]


class Core(TaskTable, HostFailures, AttemptTimeouts, Dispatch, Clients, JournalPart):
    def take_effects(self) -> Effects:
        """Everything recorded for the edge since the last take, which starts afresh.

        Two Effects alternate, so a take allocates nothing: the one returned stays valid until
        the next take, by which time the edge has applied it.
        """
        taken = self._effects
        fresh = self._spare_effects
        fresh.clear()
        self._effects = fresh
        self._wake_clients = fresh.wake_clients
        self._spare_effects = taken
        return taken

    def tick(self, now: float) -> None:
        """Leases, retry backoff, schedule and attempt timeouts, expiry: call every tick_s."""
        self._check_leases(now)
        self._task_timers(now)
        self._attempt_timers(now)
        self._expire_clients(now)
        self.dispatch()
