"""The scheduling core: every decision of the orchestrator, with no I/O.

`Core` takes events (tasks submitted, a host joined, a batch of results, the time passed) with
the current time, and leaves what to send in outboxes: `HostView.outbox`/`cancels` per host and
`ClientOutbox.unsent` per client, naming the ones with new work in `dirty_hosts` and
`dirty_clients`. It never awaits, reads a clock or touches gRPC, so every path, failure paths
included, is unit-tested without sockets or sleeps. The asyncio layer (`service_*.py`) moves
messages in and out and calls `tick(now)` on a timer.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from swarm.server.clients import ClientOutbox
from swarm.server.config import OrchestratorConfig
from swarm.server.core_hosts import Counters, HostEvents
from swarm.server.graph import check_graph, dependency_error
from swarm.server.hosts import HostView
from swarm.server.model import (
    SPREAD_LABEL,
    FailureReason,
    HostState,
    Rejected,
    Task,
    TaskError,
    TaskState,
)
from swarm.server.placement import water_fill
from swarm.server.queues import ReadyQueue

log = logging.getLogger("swarm.server.core")

# One result from a host: task key, attempt, output, error (None on success).
HostResult = tuple[str, int, bytes, TaskError | None]

_QUEUED = TaskState.QUEUED
_ASSIGNED = TaskState.ASSIGNED
_RUNNING = TaskState.RUNNING
_SUCCEEDED = TaskState.SUCCEEDED


@dataclass(slots=True)
class SubmitOutcome:
    accepted: int = 0
    duplicates: list[str] = field(default_factory=list)


class Core(HostEvents):
    def __init__(self, config: OrchestratorConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()
        self.tasks: dict[str, Task] = {}
        self.live_tasks = 0  # not yet final
        self.pending = 0  # waiting for dependencies
        self.ready: dict[str, ReadyQueue] = {}
        self._ready_kinds: set[str] = set()
        self.hosts: dict[str, HostView] = {}  # live sessions by host id
        self._by_kind: dict[str, list[HostView]] = {}
        self.clients: dict[str, ClientOutbox] = {}
        self.counters = Counters()
        # Effects for the I/O layer to act on after each call.
        self.dirty_hosts: set[HostView] = set()
        self.dirty_clients: set[ClientOutbox] = set()
        self.closed_hosts: list[HostView] = []  # lost sessions whose streams must be closed
        self.watched: dict[str, int] = {}  # task keys someone waits on (Wait RPC), with counts
        self.woken: list[Task] = []  # watched tasks that became final
        # Timers, as heaps of (due, seq, ...): retry backoff and schedule deadlines.
        self._seq = itertools.count()
        self._backoff: list[tuple[float, int, Task, int]] = []
        self._deadlines: list[tuple[float, int, Task, int]] = []
        self._retained: deque[tuple[float, Task]] = deque()
        self.max_retained = config.max_retained

    # ---- submission -------------------------------------------------------------------------

    def submit(
        self,
        tasks: Sequence[Task],
        dep_keys: Sequence[Sequence[str]] | None,
        client_id: str,
        now: float,
    ) -> SubmitOutcome:
        """Accept a batch all or nothing. dep_keys[i] are the keys tasks[i] depends on."""
        outcome = SubmitOutcome()
        table = self.tasks
        new: list[Task] = []
        new_index: dict[str, int] = {}
        known: list[Task] = []
        for i, task in enumerate(tasks):
            if task.key in new_index:
                raise Rejected("INVALID_ARGUMENT", f"tasks[{i}].id", f"{task.id!r} repeats")
            existing = table.get(task.key)
            if existing is not None:
                outcome.duplicates.append(task.id)
                known.append(existing)
                continue
            new_index[task.key] = i
            new.append(task)
        if self.live_tasks + len(new) > self.config.max_tasks:
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                "tasks",
                f"the orchestrator holds {self.live_tasks} unfinished tasks, limit "
                f"{self.config.max_tasks}: wait for results before submitting more",
            )
        outbox = self._outbox(client_id, now) if client_id else None
        if outbox is not None and len(outbox.pending) >= self.config.max_unacked_results:
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                "tasks",
                f"client {client_id!r} has {len(outbox.pending)} unacknowledged results, limit "
                f"{self.config.max_unacked_results}: acknowledge results before submitting more",
            )
        order = new
        if dep_keys is not None and any(dep_keys):
            order = check_graph(tasks, dep_keys, new_index, self.tasks)
        # Validated: from here on nothing refuses.
        for task in new:
            task.client_id = client_id
            table[task.key] = task
        self.live_tasks += len(new)
        for task in order:
            deps = dep_keys[new_index[task.key]] if dep_keys is not None else ()
            if deps:
                self._link(task, deps, now)
            else:
                self._make_ready(task, now)
        outcome.accepted = len(new)
        if outbox is not None:
            for existing in known:
                # The first submission's result, when there is one, goes to the asker again.
                if existing.state.final and outbox.deliver(existing):
                    self.dirty_clients.add(outbox)
        self.dispatch()
        return outcome

    def _link(self, task: Task, dep_keys: Sequence[str], now: float) -> None:
        deps = tuple(self.tasks[k] for k in dep_keys)
        task.deps = deps
        unmet = 0
        failed: Task | None = None
        for dep in deps:
            if dep.state is _SUCCEEDED:
                continue
            if dep.state.final:
                failed = dep
                continue
            unmet += 1
            if dep.dependents is None:
                dep.dependents = [task]
            else:
                dep.dependents.append(task)
        task.unmet = unmet
        if unmet == 0 and failed is None:
            self._make_ready(task, now)
            return
        self.pending += 1
        if failed is not None:
            # Same-batch dependents are linked after it (topological order) and see it failed.
            self._finish(task, TaskState.FAILED, now, error=dependency_error(failed))

    # ---- readiness and placement --------------------------------------------------------------

    def _make_ready(self, task: Task, now: float) -> None:
        if task.state is not _QUEUED:
            task.move(_QUEUED)
        task.queued_at = now
        queue = self.ready.get(task.kind)
        if queue is None:
            queue = self.ready[task.kind] = ReadyQueue()
        if task.labels is not None and self.is_special(task):
            queue.push_isolated(task)
        else:
            queue.push(task)
        self._ready_kinds.add(task.kind)
        if task.schedule_timeout_s > 0:
            due = now + task.schedule_timeout_s
            heapq.heappush(self._deadlines, (due, next(self._seq), task, task.attempt))

    def dispatch(self) -> None:
        """Place ready tasks on hosts with credit, freest host first."""
        if not self._ready_kinds:
            return
        prefetch = self.config.prefetch
        kinds = sorted(self._ready_kinds, key=lambda k: -self.ready[k].top_priority)
        for kind in kinds:
            queue = self.ready[kind]
            hosts = [h for h in self._by_kind.get(kind, ()) if h.state is HostState.ACTIVE]
            if not hosts:
                continue  # waiting for a host that serves the kind
            if queue.isolated_live:
                self._dispatch_special(queue, hosts)
            free = [h.capacity - len(h.inflight) for h in hosts]
            credit = [max(0, f + prefetch) for f in free]
            want = min(queue.live - queue.isolated_live, sum(credit))
            if want <= 0:
                continue
            takes = water_fill(free, credit, want, self.rng)
            for host, n in zip(hosts, takes, strict=True):
                if n:
                    self._assign(host, queue.pop(n))
            if queue.live == 0:
                self._ready_kinds.discard(kind)

    @property
    def isolate_after(self) -> int:
        """Lost hosts (in any state) after which a task runs apart from other suspects.

        A poison task is blamed one loss late (it dies before announcing its start), so a
        bystander can gather blame ahead of it. Isolating every task that was on
        max_host_losses - 1 lost hosts means a bystander never shares a host with the poison
        task again before reaching max_host_losses: only the poison task is quarantined.
        """
        return max(1, self.config.max_host_losses - 1)

    def is_special(self, task: Task) -> bool:
        """Placed one by one rather than in bulk: suspected poison tasks and spread replicas."""
        return task.lost_with >= self.isolate_after or (
            task.labels is not None and SPREAD_LABEL in task.labels
        )

    def _dispatch_special(self, queue: ReadyQueue, hosts: list[HostView]) -> None:
        unplaced: list[Task] = []
        while (task := queue.pop_isolated()) is not None:
            host = self._special_host(task, hosts)
            if host is None:
                unplaced.append(task)
            else:
                self._assign(host, [task])
        for task in unplaced:
            queue.push_isolated(task)

    def _special_host(self, task: Task, hosts: list[HostView]) -> HostView | None:
        """The freest host with credit that keeps suspects apart and spread replicas apart.

        Suspects never share a host. Replicas of one spread group go to hosts that hold none
        of the group, unless every host serving the kind already does (more replicas than
        hosts): then any host with credit will do.
        """
        prefetch = self.config.prefetch
        iso = self.isolate_after
        suspect = task.lost_with >= iso
        group = task.labels.get(SPREAD_LABEL) if task.labels else None

        def holds_group(h: HostView) -> bool:
            return any(
                t.labels and t.labels.get(SPREAD_LABEL) == group for t in h.inflight.values()
            )

        crowded = {h for h in hosts if holds_group(h)} if group is not None else set()
        if len(crowded) == len(hosts):
            crowded = set()
        best: HostView | None = None
        for h in hosts:
            if h.capacity + prefetch <= len(h.inflight) or h in crowded:
                continue
            if suspect and any(t.lost_with >= iso for t in h.inflight.values()):
                continue
            if best is None or h.free() > best.free():
                best = h
        return best

    def _assign(self, host: HostView, tasks: list[Task]) -> None:
        inflight = host.inflight
        host_id = host.id
        for task in tasks:
            task.move(_ASSIGNED)
            task.attempt += 1
            task.host_id = host_id
            task.sent_seq = None
            inflight[task.key] = task
        host.outbox.extend(tasks)
        self.dirty_hosts.add(host)

    # ---- what hosts report --------------------------------------------------------------------

    def on_started(self, host: HostView, attempts: Iterable[tuple[str, int]]) -> None:
        inflight = host.inflight
        for key, attempt in attempts:
            task = inflight.get(key)
            if task is not None and task.attempt == attempt and task.state is _ASSIGNED:
                task.move(_RUNNING)

    def on_results(self, host: HostView, results: Iterable[HostResult], now: float) -> None:
        inflight = host.inflight
        for key, attempt, output, error in results:
            task = inflight.get(key)
            if task is None or task.attempt != attempt:
                self.counters.stale_results += 1  # fenced: that attempt is no longer current
                continue
            del inflight[key]
            host.done += 1
            if error is None:
                self._finish(task, _SUCCEEDED, now, output=output)
            else:
                self._attempt_failed(task, error, now)
        self.dispatch()

    def on_returned(self, host: HostView, attempts: Iterable[tuple[str, int]], now: float) -> None:
        """A draining host hands back work it had not started: requeue it, no loss counted."""
        inflight = host.inflight
        for key, attempt in attempts:
            task = inflight.get(key)
            if task is None or task.attempt != attempt:
                continue
            del inflight[key]
            self._requeue(task, now)
        self.dispatch()

    def _attempt_failed(self, task: Task, error: TaskError, now: float) -> None:
        retryable = (
            error.reason in (FailureReason.HANDLER_ERROR, FailureReason.TIMEOUT)
            and error.type not in task.non_retryable
        )
        if retryable and task.retries < task.max_retries:
            task.retries += 1
            task.move(_QUEUED)
            task.queued_at = None  # in backoff, not in a ready queue
            cfg = self.config
            delay = min(cfg.retry_backoff_max_s, cfg.retry_backoff_s * 2 ** (task.retries - 1))
            delay *= 0.5 + self.rng.random() / 2  # jitter: retries of one burst spread out
            heapq.heappush(self._backoff, (now + delay, next(self._seq), task, task.attempt))
            return
        self._finish(task, TaskState.FAILED, now, error=error)

    def _requeue(self, task: Task, now: float) -> None:
        task.move(_QUEUED)
        task.host_id = None
        task.queued_at = now
        queue = self.ready.get(task.kind)
        if queue is None:
            queue = self.ready[task.kind] = ReadyQueue()
        if self.is_special(task):
            queue.push_isolated(task)
        else:
            queue.push_front(task)
        self._ready_kinds.add(task.kind)
        if task.schedule_timeout_s > 0:  # waiting for a host again: the clock starts anew
            due = now + task.schedule_timeout_s
            heapq.heappush(self._deadlines, (due, next(self._seq), task, task.attempt))

    # ---- final states -------------------------------------------------------------------------

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
        was = task.state
        task.move(state)
        if was is TaskState.PENDING:
            self.pending -= 1
        elif was is _QUEUED and task.queued_at is not None:
            queue = self.ready[task.kind]
            queue.live -= 1  # its queue entry is skipped lazily
            if self.is_special(task):
                queue.isolated_live -= 1
        task.output = output
        task.error = error
        task.finished_at = now
        self.live_tasks -= 1
        counters = self.counters
        if state is _SUCCEEDED:
            counters.succeeded += 1
        elif state is TaskState.FAILED:
            counters.failed += 1
        else:
            counters.cancelled += 1
        if task.client_id:
            outbox = self.clients.get(task.client_id)
            if outbox is not None and outbox.deliver(task):
                self.dirty_clients.add(outbox)
        if self.watched and task.key in self.watched:
            self.woken.append(task)
        self._retained.append((now, task))
        if len(self._retained) > self.max_retained:
            self._forget(self._retained.popleft()[1])
        if task.dependents and cascade:
            if state is _SUCCEEDED:
                for child in task.dependents:
                    child.unmet -= 1
                    if child.unmet == 0 and child.state is TaskState.PENDING:
                        self.pending -= 1
                        self._make_ready(child, now)
            else:
                self._fail_dependents_of(task, now)
            task.dependents = None

    def _fail_dependents_of(self, failed: Task, now: float) -> None:
        """Fail everything downstream of a failed task, iteratively (chains may be long)."""
        stack = [failed]
        while stack:
            parent = stack.pop()
            children, parent.dependents = parent.dependents, None
            for child in children or ():
                if child.state is TaskState.PENDING:
                    error = dependency_error(parent)
                    self._finish(child, TaskState.FAILED, now, error=error, cascade=False)
                    stack.append(child)

    def _forget(self, task: Task) -> None:
        if self.tasks.get(task.key) is task:
            del self.tasks[task.key]

    # ---- clients ------------------------------------------------------------------------------

    def _outbox(self, client_id: str, now: float) -> ClientOutbox:
        outbox = self.clients.get(client_id)
        if outbox is None:
            outbox = self.clients[client_id] = ClientOutbox(client_id, now)
        return outbox

    def attach_client(self, client_id: str, now: float) -> ClientOutbox:
        outbox = self._outbox(client_id, now)
        if outbox.attach(now):
            self.dirty_clients.add(outbox)
        return outbox

    def detach_client(self, outbox: ClientOutbox, now: float) -> None:
        outbox.detach(now)
        self.dirty_clients.discard(outbox)

    def ack(self, outbox: ClientOutbox, keys: list[str]) -> None:
        """Acknowledged results leave the client's outbox. The task itself stays in the table
        for the retention window (result_ttl_s, at most max_retained tasks), so later
        submissions may still depend on it and a resubmission is still recognised."""
        pending = outbox.pending
        for key in keys:
            pending.pop(key, None)

    def cancel(self, keys: Iterable[str], now: float) -> list[TaskState | None]:
        """Cancel tasks; a running one is aborted on its host. Returns each task's new state."""
        states: list[TaskState | None] = []
        error = TaskError(FailureReason.CANCELLED_BY_CLIENT, "Cancelled", "cancelled by a client")
        for key in keys:
            task = self.tasks.get(key)
            if task is None:
                states.append(None)
                continue
            if not task.state.final:
                if task.state in (_ASSIGNED, _RUNNING) and task.host_id is not None:
                    host = self.hosts.get(task.host_id)
                    if host is not None and host.inflight.pop(key, None) is task:
                        host.cancels.append((key, task.attempt))
                        self.dirty_hosts.add(host)
                self._finish(task, TaskState.CANCELLED, now, error=error)
            states.append(task.state)
        self.dispatch()
        return states

    # ---- time ---------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Leases, retry backoff, schedule timeouts and expiry: call every tick_s."""
        cfg = self.config
        suspect_after = 1.5 * cfg.heartbeat_interval_s
        for host in list(self.hosts.values()):
            silent = now - host.last_seen
            if host.state is HostState.DRAINING:
                deadline = host.drain_deadline
                if deadline is not None and now > deadline and silent > cfg.lease_s:
                    self.host_lost(host, now, f"drain overran and silent for {silent:.2f} s")
            elif silent > cfg.lease_s:
                self.host_lost(host, now, f"no message for {silent:.2f} s (lease {cfg.lease_s} s)")
            elif silent > suspect_after and host.state is HostState.ACTIVE:
                host.move(HostState.SUSPECT)
        backoff = self._backoff
        while backoff and backoff[0][0] <= now:
            _, _, task, attempt = heapq.heappop(backoff)
            if task.state is _QUEUED and task.attempt == attempt and task.queued_at is None:
                self._make_ready(task, now)
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, task, attempt = heapq.heappop(deadlines)
            if task.state is _QUEUED and task.attempt == attempt and task.queued_at is not None:
                waited = now - task.queued_at
                error = TaskError(
                    FailureReason.SCHEDULE_TIMEOUT,
                    "ScheduleTimeout",
                    f"no host started the task within {task.schedule_timeout_s} s "
                    f"(waited {waited:.2f} s for a host serving {task.kind!r})",
                )
                self._finish(task, TaskState.FAILED, now, error=error)
        retained = self._retained
        horizon = now - cfg.result_ttl_s
        while retained and retained[0][0] < horizon:
            self._forget(retained.popleft()[1])
        for outbox in [c for c in self.clients.values() if not c.connected]:
            if now - outbox.last_seen > cfg.client_ttl_s:
                del self.clients[outbox.client_id]
        self.dispatch()
