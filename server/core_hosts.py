"""Host failure detection: sessions, leases, suspects, losses, fencing and quarantine.

A part of `Core` (see core_state.py). It owns the host sessions: a join (fencing what an
earlier session of the host still runs), every message renewing the lease, heartbeats,
reconciliation of lost assignments, drains, a clean leave, and a loss: its work requeued or,
for a task on too many lost hosts (a poison task), quarantined as failed. Which hosts take
which tasks is placement.py's decision.
"""

from __future__ import annotations

import logging

from mypy_extensions import trait
from swarm.server.core_state import CoreState
from swarm.server.effects import DECLARED_LOST
from swarm.server.hosts import HostHello, HostLoad, HostView
from swarm.server.model import FailureReason, HostState, Task, TaskError, TaskState
from swarm.server.placement import is_special, qualified
from swarm.server.suspects import Group, Loss

log = logging.getLogger("swarm.server.core")


@trait
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
        # Attempts it still runs from an earlier session were fenced off when that one was
        # lost, unless they are of the orchestrator's last incarnation and still adoptable.
        if hello.running:
            fenced = self.adopt(host, hello.running, now)
            if fenced:
                host.cancels.extend(fenced)
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
        loss, culprits = self._blame(host)
        groups = self._suspect_groups(host, loss) if loss is not None else {}
        moved = failed = 0
        isolate = self.isolate_after
        suspects: list[Task] = []
        for task in host.inflight.values():
            if task in culprits:
                failed += 1
                error = TaskError(
                    FailureReason.HOST_LOST,
                    "HostLost",
                    f"the task was on {task.host_losses} hosts that were lost (last: {host.id})",
                )
                self._finish(task, TaskState.FAILED, now, error=error)
                # Rare (a poison task, once), so a line per task is fine here.
                log.warning(
                    "task %s quarantined: on %d lost hosts (last %s)",
                    task.id,
                    task.host_losses,
                    host.id,
                    extra={
                        "event": "task_quarantined",
                        "task_id": task.id,
                        "client_id": task.client_id,
                        "kind": task.kind,
                        "hosts": task.host_losses,
                        "last_host_id": host.id,
                    },
                )
            elif task.host_losses >= isolate:
                suspects.append(task)  # requeued below, in random order
            else:
                moved += 1
                blamed = task.blamed
                group = groups.get(task.kind) if blamed and blamed[-1] is loss else None
                self._requeue(task, now, group)
        # Suspects run one per host, so their order decides how soon the culprit among them
        # runs (and, quarantined, clears the rest): random, as they are equally suspect, so
        # that no order of submission makes the culprit always the last (suspects.py).
        self.rng.shuffle(suspects)
        for task in suspects:
            moved += 1
            self._requeue(task, now)
        host.inflight.clear()
        # The one line per loss; deploy/events.py parses its text, so keep the wording.
        log.warning(
            "host %s (pid %d) lost: %s; %d tasks requeued, %d quarantined",
            host.id,
            host.hello.pid,
            why,
            moved,
            failed,
            extra={
                "event": "host_lost",
                "host_id": host.id,
                "pid": host.hello.pid,
                "hostname": host.hello.hostname,
                "reason": why,
                "silent_s": round(now - host.last_seen, 3),
                "lease_s": self.config.lease_s,
                "connected_s": round(now - host.joined_at, 3),
                "requeued": moved,
                "quarantined": failed,
            },
        )
        self.dispatch()

    # ---- blame (the rule is in suspects.py) ------------------------------------------------

    def _blame(self, host: HostView) -> tuple[Loss | None, list[Task]]:
        """Blame the lost host's tasks that may have run there. Returns the death's Loss (None
        if it blamed nobody) and the tasks now blamed max_host_losses times, to be quarantined;
        the deaths that blamed those are explained.

        Blamed: a task announced as running, or one sent without report_start (it may have
        started and killed the host before its started notice went out). A task on a lost host
        is sent with report_start afterwards (it runs only once its started notice is applied
        here and confirmed, see on_started), so from then on only a task that ran is blamed: a
        poison task is blamed at each death it causes, the first included, and is quarantined
        after exactly max_host_losses of them.
        """
        blamed: list[Task] = []
        for task in host.inflight.values():
            if task.state is TaskState.RUNNING or (not task.lost_with and task.sent_seq):
                task.host_losses += 1
                blamed.append(task)
            task.lost_with += 1
        if not blamed:
            return None, []
        loss = Loss([t.key for t in blamed])
        for task in blamed:
            if task.blamed is None:
                task.blamed = [loss]
            else:
                task.blamed.append(loss)
        limit = self.config.max_host_losses
        culprits = [t for t in blamed if t.host_losses >= limit]
        for culprit in culprits:
            self._explain(culprit, culprits)
        return loss, culprits

    def _explain(self, culprit: Task, culprits: list[Task]) -> None:
        """The deaths that blamed a quarantined task are its doing: withdraw them from the
        other tasks they blamed, and release from isolation those no longer suspects."""
        iso = self.isolate_after
        released: set[str] = set()
        for loss in culprit.blamed or ():
            if loss.explained:
                continue
            loss.explained = True
            for key in loss.keys:
                task = self.tasks.get(key)
                if task is None or task.state.final or task in culprits:
                    continue
                if task.blamed is None or loss not in task.blamed:
                    continue  # another task under the same key, or explained already
                task.blamed.remove(loss)
                task.host_losses -= 1
                if task.host_losses == iso - 1 and task.state is TaskState.QUEUED:
                    released.add(task.kind)  # it may wait in the isolated lane
        culprit.blamed = None
        for kind in released:
            self.ready[kind].release_isolated(lambda t: is_special(t, iso))

    def _suspect_groups(self, host: HostView, loss: Loss) -> dict[str, Group]:
        """One group per kind for the tasks this death blamed (and no quarantine explained)
        that stay below isolation, capped so that the hosts serving the kind, at least two,
        share it (suspects.py)."""
        iso = self.isolate_after
        members: dict[str, int] = {}
        for task in host.inflight.values():
            blamed = task.blamed
            if blamed and blamed[-1] is loss and task.host_losses < iso:
                members[task.kind] = members.get(task.kind, 0) + 1
        return {
            kind: Group(n, len(qualified(self._by_kind.get(kind, ()))))
            for kind, n in members.items()
        }

    def _check_leases(self, now: float) -> None:
        """Lose hosts silent past their lease (or past a drain's deadline); suspect the quiet."""
        cfg = self.config
        suspect_after = 1.5 * cfg.heartbeat_interval_s
        for host in list(self.hosts.values()):
            host.roll_window(now, cfg.heartbeat_interval_s, cfg.prefetch_s)
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
