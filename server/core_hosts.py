"""Host events of the scheduling core: joins, heartbeats, reconciliation, drains and losses.

A mixin of `Core` (see core.py): the same no-I/O rules apply. It owns the host half of the
core's state and calls back into the task half to requeue, finish and dispatch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from swarm.server.config import OrchestratorConfig
from swarm.server.hosts import HostHello, HostLoad, HostView
from swarm.server.model import FailureReason, HostState, Task, TaskError, TaskState

log = logging.getLogger("swarm.server.core")


@dataclass(slots=True)
class Counters:
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    stale_results: int = 0  # results for an attempt that was no longer current
    reconciled: int = 0  # attempts requeued because their host did not hold them
    hosts_lost: int = 0


class HostEvents:
    config: OrchestratorConfig
    hosts: dict[str, HostView]
    _by_kind: dict[str, list[HostView]]
    dirty_hosts: set[HostView]
    closed_hosts: list[HostView]
    counters: Counters

    # Provided by Core, the task half.
    def dispatch(self) -> None:
        raise NotImplementedError

    def _requeue(self, task: Task, now: float) -> None:
        raise NotImplementedError

    def _finish(
        self,
        task: Task,
        state: TaskState,
        now: float,
        *,
        output: bytes = b"",
        error: TaskError | None = None,
        cascade: bool = True,
    ) -> None:
        raise NotImplementedError

    # ---- hosts --------------------------------------------------------------------------------

    def host_joined(self, hello: HostHello, now: float) -> HostView:
        """A host opened a session. An older session of the same host id is lost first."""
        old = self.hosts.get(hello.host_id)
        if old is not None:
            self.host_lost(old, now, "it opened a new session")
        host = HostView(hello=hello, joined_at=now, last_seen=now, capacity=hello.capacity)
        host.move(HostState.ACTIVE)
        self.hosts[hello.host_id] = host
        for kind in hello.kinds:
            self._by_kind.setdefault(kind, []).append(host)
        # Attempts it still runs from an earlier session were fenced off when that one was lost.
        if hello.running:
            host.cancels.extend(hello.running)
            self.dirty_hosts.add(host)
        self.dispatch()
        return host

    def heartbeat(self, host: HostView, capacity: int, load: HostLoad, now: float) -> None:
        host.last_seen = now
        host.load = load
        grew = capacity > host.capacity
        host.capacity = capacity
        if host.state is HostState.SUSPECT:
            host.move(HostState.ACTIVE)
            grew = True
        if grew:
            self.dispatch()

    def reconcile(
        self, host: HostView, last_seq: int, held: dict[str, int], now: float
    ) -> list[Task]:
        """Requeue attempts the host should hold but does not: a message was lost in between.

        Only attempts sent in batches the host confirms it received (seq <= last_seq) count,
        and results travel before the heartbeat on the same stream, so a task that finished
        is never mistaken for a lost one. The requeue counts no host loss.
        """
        missing = [
            t
            for t in host.inflight.values()
            if t.sent_seq is not None and t.sent_seq <= last_seq and held.get(t.key) != t.attempt
        ]
        for task in missing:
            del host.inflight[task.key]
            self._requeue(task, now)
        if missing:
            self.counters.reconciled += len(missing)
            log.warning("host %s lost track of %d attempts: requeued", host.id, len(missing))
            self.dispatch()
        return missing

    def draining(self, host: HostView, grace_s: float, now: float) -> None:
        """The host stopped taking work (SIGTERM or our drain request) and will leave."""
        if host.state in (HostState.ACTIVE, HostState.SUSPECT):
            host.move(HostState.DRAINING)
        host.drain_deadline = now + grace_s + self.config.drain_margin_s

    def request_drain(self, host: HostView, grace_s: float, now: float) -> None:
        if host.state in (HostState.ACTIVE, HostState.SUSPECT):
            host.drain_grace_s = grace_s
            self.draining(host, grace_s, now)
            self.dirty_hosts.add(host)

    def host_left(self, host: HostView, now: float) -> None:
        """The host closed its stream cleanly (after a drain): anything left is requeued."""
        if not host.live:
            return
        host.move(HostState.GONE)
        self._remove(host)
        for task in host.inflight.values():
            self._requeue(task, now)
        host.inflight.clear()
        self.dispatch()

    def host_lost(self, host: HostView, now: float, why: str) -> None:
        """Stream broken or lease expired: move its work elsewhere, fence its attempts."""
        if not host.live and host.state is not HostState.JOINING:
            return
        host.move(HostState.LOST)
        self.counters.hosts_lost += 1
        self._remove(host)
        self.closed_hosts.append(host)
        limit = self.config.max_host_losses
        moved = failed = 0
        for task in host.inflight.values():
            # Blame only tasks known to run: one merely queued beside a poison task is innocent.
            # A task on a lost host is sent with report_start afterwards, so that its next
            # host announces it as running before it runs: a poison task is then blamed.
            task.lost_with += 1
            if task.state is TaskState.RUNNING:
                task.host_losses += 1
            if task.host_losses >= limit:
                failed += 1
                error = TaskError(
                    FailureReason.HOST_LOST,
                    "HostLost",
                    f"the task was on {task.host_losses} hosts that were lost (last: {host.id})",
                )
                self._finish(task, TaskState.FAILED, now, error=error)
            else:
                moved += 1
                self._requeue(task, now)
        host.inflight.clear()
        log.warning(
            "host %s (pid %d) lost: %s; %d tasks requeued, %d quarantined",
            host.id,
            host.hello.pid,
            why,
            moved,
            failed,
        )
        self.dispatch()

    def hosts_serving(self, kind: str) -> list[HostView]:
        return self._by_kind.get(kind, [])

    def _remove(self, host: HostView) -> None:
        if self.hosts.get(host.id) is host:
            del self.hosts[host.id]
        for kind in host.hello.kinds:
            views = self._by_kind.get(kind)
            if views is not None and host in views:
                views.remove(host)
        self.dirty_hosts.discard(host)
