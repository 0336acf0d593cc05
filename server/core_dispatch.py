"""Dispatch: what to send to which host, and handing it to the host's writer in batches.

A part of `Core` (see core_state.py). `dispatch` moves ready tasks onto hosts as placement.py
decides (special tasks one by one, suspect groups spread over hosts, bulk work by water
filling, then what is left of the groups where credit remains) and queues them in the host's
outbox; the writer of a woken host session takes them with `take_assignments`, which stamps
the batch's sequence number that reconciliation (core_hosts.py) later relies on. Cancels and
drain requests for a host are taken the same way.
"""

from __future__ import annotations

import heapq

from mypy_extensions import trait
from swarm.server.budgets import BATCH_BYTES, ITEM_OVERHEAD_BYTES, assignment_bytes
from swarm.server.core_state import CoreState
from swarm.server.hosts import HostView
from swarm.server.model import Task, TaskState
from swarm.server.placement import (
    bulk_shares,
    group_shares,
    holding_suspects,
    qualified,
    special_host,
)
from swarm.server.queues import ReadyQueue

_ASSIGNED = TaskState.ASSIGNED


@trait
class Dispatch(CoreState):
    def dispatch(self) -> None:
        """Place ready tasks on hosts with credit, freest host first."""
        if not self._ready_kinds:
            return
        prefetch = self.config.prefetch
        ready = self.ready
        # Higher priority first; among equals, the kind with fewer isolated suspects first:
        # suspects run one per host, and serving the shorter line first keeps one kind's many
        # suspects from holding every host while another's lone one (often the culprit) waits.
        kinds = sorted(
            self._ready_kinds, key=lambda k: (-ready[k].top_priority, ready[k].isolated_live)
        )
        for kind in kinds:
            queue = ready[kind]
            hosts = qualified(self._by_kind.get(kind, ()))
            if not hosts:
                continue  # waiting for a host that serves the kind
            if queue.isolated_live:
                self._dispatch_special(queue, hosts)
            if queue.grouped_live:
                self._dispatch_groups(queue, hosts, capped=True)
            takes = bulk_shares(hosts, queue.bulk_live, prefetch, self.rng)
            if takes is not None:
                for host, n in zip(hosts, takes, strict=True):
                    if n:
                        self._assign(host, queue.pop(n))
            if queue.grouped_live:
                # Past their caps only now, when no bulk work is left: a group never idles a host.
                self._dispatch_groups(queue, hosts, capped=False)
            if queue.live == 0:
                self._ready_kinds.discard(kind)

    def _dispatch_special(self, queue: ReadyQueue, hosts: list[HostView]) -> None:
        prefetch, iso = self.config.prefetch, self.isolate_after
        holding = holding_suspects(hosts, iso)
        unplaced: list[Task] = []
        while (task := queue.pop_isolated()) is not None:
            host = special_host(task, hosts, prefetch, iso, holding)
            if host is None:
                unplaced.append(task)
            else:
                self._assign(host, [task])
                if task.host_losses >= iso:
                    holding.add(host)
        for task in unplaced:
            queue.push_isolated(task)

    def _dispatch_groups(self, queue: ReadyQueue, hosts: list[HostView], capped: bool) -> None:
        """Spread each waiting suspect group over hosts, oldest group first (suspects.py)."""
        prefetch = self.config.prefetch
        for group in queue.groups:
            if group.live <= 0:
                continue
            takes = group_shares(group, hosts, prefetch, capped, self.rng)
            placed = group.placed
            for host, n in zip(hosts, takes, strict=True):
                if n:
                    tasks = queue.pop_grouped(group, n)
                    if tasks:
                        self._assign(host, tasks)
                        placed[host] = placed.get(host, 0) + len(tasks)
        queue.drop_empty_groups()

    def _assign(self, host: HostView, tasks: list[Task]) -> None:
        inflight = host.inflight
        host_id = host.id
        for task in tasks:
            # Every caller passes tasks popped from a ready queue, which yields QUEUED ones only:
            # QUEUED -> ASSIGNED is an edge of TASK_EDGES, so no check per task is needed.
            task.state = _ASSIGNED
            task.attempt += 1
            if task.attempt > task.attempt_limit:
                self._reserve_attempts(task, host)  # core_journal.py
            task.host_id = host_id
            task.sent_seq = None
            inflight[task.key] = task
        host.outbox.extend(tasks)
        self._effects.wake_hosts.add(host)

    # ---- what a host's writer takes -----------------------------------------------------------

    def take_assignments(
        self, host: HostView, limit: int, now: float, max_bytes: int = BATCH_BYTES
    ) -> tuple[list[Task], int]:
        """Up to limit queued assignments for one AssignBatch, within max_bytes (at least one:
        each fits a message, see budgets.py), and the batch's seq.

        The seq is stamped on each attempt before the batch is written: a heartbeat confirming
        that seq then tells reconciliation which attempts the host must hold. An attempt with a
        timeout_s gets its deadline here, from when it is sent (see core_timeouts.py).
        """
        out = host.outbox
        n = min(limit, len(out))
        size = 0
        for i in range(n):
            t = out[i]
            # The common task (no dependencies, no labels) costs one len().
            if t.deps or t.labels:
                size += t.wire_bytes or assignment_bytes(t)
            else:
                size += len(t.payload) + ITEM_OVERHEAD_BYTES
            if size > max_bytes and i:
                limit = i
                break
        if len(out) <= limit:
            batch, host.outbox = out, []
        else:
            batch, host.outbox = out[:limit], out[limit:]
        host.sent_seq += 1
        seq = host.sent_seq
        deadlines = self._attempt_deadlines
        for task in batch:
            task.sent_seq = seq
            if task.timeout_s:
                task.started_at = None
                due = now + task.timeout_s + self.config.timeout_grace_s
                heapq.heappush(deadlines, (due, next(self._seq), task, task.attempt))
        return batch, seq

    def take_cancels(self, host: HostView) -> list[tuple[str, int]]:
        """The (key, attempt) pairs the host must abort, sent since the last take."""
        cancels, host.cancels = host.cancels, []
        return cancels

    def take_started_ok(self, host: HostView) -> list[tuple[str, int]]:
        """The report_start attempts the host may now run (see on_started), since the last take."""
        confirmed, host.started_ok = host.started_ok, []
        return confirmed

    def take_drain_request(self, host: HostView) -> float | None:
        """The grace period of a drain to request from the host, once; None when there is none."""
        grace, host.drain_grace_s = host.drain_grace_s, None
        return grace
