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
from swarm.server.hosts import HostHello, HostLoad, HostView
from swarm.server.model import FailureReason, HostState, Task, TaskError, TaskState
from swarm.server.placement import water_fill
from swarm.server.queues import ReadyQueue

log = logging.getLogger("swarm.server.core")

# One result from a host: task key, attempt, output, error (None on success).
HostResult = tuple[str, int, bytes, TaskError | None]

_QUEUED = TaskState.QUEUED
_ASSIGNED = TaskState.ASSIGNED
_RUNNING = TaskState.RUNNING
_SUCCEEDED = TaskState.SUCCEEDED


class Rejected(Exception):
    """A request refused whole, before anything changed. `code` is a grpc.StatusCode name."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.code = code
        self.field = field
        self.message = message


@dataclass(slots=True)
class SubmitOutcome:
    accepted: int = 0
    duplicates: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Counters:
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    stale_results: int = 0  # results for an attempt that was no longer current
    reconciled: int = 0  # attempts requeued because their host did not hold them
    hosts_lost: int = 0


class Core:
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
        self.max_retained = 200_000

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
        order = new
        if dep_keys is not None and any(dep_keys):
            order = self._check_graph(tasks, dep_keys, new_index)
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

    def _check_graph(
        self, tasks: Sequence[Task], dep_keys: Sequence[Sequence[str]], new_index: dict[str, int]
    ) -> list[Task]:
        """Refuse unknown dependencies and cycles; return the new tasks in topological order."""
        children: dict[int, list[int]] = {}
        indegree: dict[int, int] = {}
        for key, i in new_index.items():
            indegree.setdefault(i, 0)
            for j, dep in enumerate(dep_keys[i]):
                parent = new_index.get(dep)
                if parent is not None:
                    children.setdefault(parent, []).append(i)
                    indegree[i] = indegree.get(i, 0) + 1
                elif dep not in self.tasks:
                    name = dep.rsplit("\x1f", 1)[-1]
                    raise Rejected(
                        "INVALID_ARGUMENT",
                        f"tasks[{i}].depends_on[{j}]",
                        f"task {tasks[i].id!r} depends on unknown task {name!r}",
                    )
            del key
        ready = deque(sorted(i for i, d in indegree.items() if d == 0))
        order: list[int] = []
        while ready:  # Kahn's algorithm, FIFO so that submission order is kept where it can be
            i = ready.popleft()
            order.append(i)
            for c in children.get(i, ()):
                indegree[c] -= 1
                if indegree[c] == 0:
                    ready.append(c)
        if len(order) < len(new_index):
            stuck = min(i for i, d in indegree.items() if d > 0)
            raise Rejected(
                "INVALID_ARGUMENT",
                f"tasks[{stuck}].depends_on",
                f"task {tasks[stuck].id!r} is part of a dependency cycle",
            )
        return [tasks[i] for i in order]

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
            self._finish(task, TaskState.FAILED, now, error=_dependency_error(failed))

    # ---- readiness and placement --------------------------------------------------------------

    def _make_ready(self, task: Task, now: float) -> None:
        if task.state is not _QUEUED:
            task.move(_QUEUED)
        task.queued_at = now
        queue = self.ready.get(task.kind)
        if queue is None:
            queue = self.ready[task.kind] = ReadyQueue()
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
                self._dispatch_isolated(queue, hosts)
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

    def _dispatch_isolated(self, queue: ReadyQueue, hosts: list[HostView]) -> None:
        iso = self.isolate_after
        for host in hosts:
            if host.capacity + self.config.prefetch <= len(host.inflight):
                continue
            if any(t.lost_with >= iso for t in host.inflight.values()):
                continue
            task = queue.pop_isolated()
            if task is None:
                return
            self._assign(host, [task])

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
        if task.lost_with >= self.isolate_after:
            queue.push_isolated(task)
        else:
            queue.push_front(task)
        self._ready_kinds.add(task.kind)

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
            if task.lost_with >= self.isolate_after:
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
                    error = _dependency_error(parent)
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
        """Acknowledged results are forgotten: memory stays flat under endless load."""
        pending = outbox.pending
        tasks = self.tasks
        for key in keys:
            task = pending.pop(key, None)
            if task is not None and tasks.get(key) is task:
                del tasks[key]

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
            if task.state is _RUNNING:
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

    def _remove(self, host: HostView) -> None:
        if self.hosts.get(host.id) is host:
            del self.hosts[host.id]
        for kind in host.hello.kinds:
            views = self._by_kind.get(kind)
            if views is not None and host in views:
                views.remove(host)
        self.dirty_hosts.discard(host)

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

    # ---- views --------------------------------------------------------------------------------

    def waiting_kinds(self) -> dict[str, tuple[int, bool]]:
        """Queued tasks per kind, and whether no live host serves the kind."""
        out: dict[str, tuple[int, bool]] = {}
        for kind, queue in self.ready.items():
            if queue.live:
                serving = any(h.accepting for h in self._by_kind.get(kind, ()))
                out[kind] = (queue.live, not serving)
        return out

    def state_counts(self) -> dict[TaskState, int]:
        assigned = running = 0
        for host in self.hosts.values():
            for task in host.inflight.values():
                if task.state is _RUNNING:
                    running += 1
                else:
                    assigned += 1
        queued = self.live_tasks - self.pending - assigned - running
        c = self.counters
        return {
            TaskState.PENDING: self.pending,
            TaskState.QUEUED: queued,
            TaskState.ASSIGNED: assigned,
            TaskState.RUNNING: running,
            TaskState.SUCCEEDED: c.succeeded,
            TaskState.FAILED: c.failed,
            TaskState.CANCELLED: c.cancelled,
        }


def _dependency_error(failed: Task) -> TaskError:
    return TaskError(
        FailureReason.DEPENDENCY_FAILED,
        "DependencyFailed",
        f"dependency {failed.id!r} ended {failed.state.name}",
    )
