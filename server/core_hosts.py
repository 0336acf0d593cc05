"""Host failure detection: sessions, leases, suspects, losses, fencing and quarantine.

A part of `Core` (see core_state.py). It owns the host sessions: a join (fencing what an
earlier session of the host still runs), every message renewing the lease, heartbeats,
reconciliation of lost assignments, drains, a clean leave, and a loss: its work requeued or,
for a task on too many lost hosts (a poison task), quarantined as failed. Which hosts take
which tasks is placement.py's decision.
"""

from __future__ import annotations

import logging

from swarm.server.core_state import CoreState
from swarm.server.effects import DECLARED_LOST
from swarm.server.hosts import HostHello, HostLoad, HostView
from swarm.server.model import FailureReason, HostState, Task, TaskError, TaskState

log = logging.getLogger("swarm.server.core")


class HostFailures(CoreState):
    def host_joined(self, hello: HostHello, now: float) -> HostView:
        """A host opened a session. An older session of the same host id is lost first."""
        old = self.hosts.get(hello.host_id)
        if old is not None:
            self.host_lost(old, now, "it opened a new session")
        host = HostView(
            hello=hello, joined_at=now, last_seen=now, capacity=hello.capacity, window_start=now
        )
        host.move(HostState.ACTIVE)
        self.hosts[hello.host_id] = host
        for kind in hello.kinds:
            self._by_kind.setdefault(kind, []).append(host)
        # Attempts it still runs from an earlier session were fenced off when that one was lost.
        if hello.running:
            host.cancels.extend(hello.running)
            self._effects.wake_hosts.add(host)
        self.dispatch()
        return host

    def host_message(self, host: HostView, now: float) -> None:
        """Any message from the host renews its lease; call before applying the message."""
        host.last_seen = now

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
            self._effects.wake_hosts.add(host)

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
        self._effects.close_hosts.append((host, DECLARED_LOST))
        limit = self.config.max_host_losses
        moved = failed = 0
        for task in host.inflight.values():
            # Blame every task that may have run, and only those: one announced as running, or
            # one sent without report_start (it may have started and killed the host before
            # its started notice went out). A task on a lost host is sent with report_start
            # afterwards (it runs only once announced), so from then on only a task that ran
            # is blamed: a poison task is blamed at each death it causes, the first included,
            # and is quarantined after exactly max_host_losses of them.
            if task.state is TaskState.RUNNING or (not task.lost_with and task.sent_seq):
                task.host_losses += 1
            task.lost_with += 1
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

    def _check_leases(self, now: float) -> None:
        """Lose hosts silent past their lease (or past a drain's deadline); suspect the quiet."""
        cfg = self.config
        suspect_after = 1.5 * cfg.heartbeat_interval_s
        for host in list(self.hosts.values()):
            host.roll_window(now, cfg.heartbeat_interval_s)
            silent = now - host.last_seen
            if host.state is HostState.DRAINING:
                deadline = host.drain_deadline
                if deadline is not None and now > deadline and silent > cfg.lease_s:
                    self.host_lost(host, now, f"drain overran and silent for {silent:.2f} s")
            elif silent > cfg.lease_s:
                self.host_lost(host, now, f"no message for {silent:.2f} s (lease {cfg.lease_s} s)")
            elif silent > suspect_after and host.state is HostState.ACTIVE:
                host.move(HostState.SUSPECT)

    def hosts_serving(self, kind: str) -> list[HostView]:
        return self._by_kind.get(kind, [])

    def _remove(self, host: HostView) -> None:
        if self.hosts.get(host.id) is host:
            del self.hosts[host.id]
        for kind in host.hello.kinds:
            views = self._by_kind.get(kind)
            if views is not None and host in views:
                views.remove(host)
        self._effects.wake_hosts.discard(host)
