"""The task table and its DAG: accept, release dependents, retry, requeue, finish, expire.

A part of `Core` (see core_state.py). It owns every task's life from submission to its one
final state: the table by key, the ready queues, dependency links, retry backoff, schedule
deadlines and the retention of finished tasks. What hosts report about tasks (started, results,
handed back) lands here; where ready tasks go is core_dispatch.py's concern, and a known id
submitted again (checks, watchers) core_clients.py's.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mypy_extensions import trait
from swarm.server.budgets import (
    MAX_ITEM_BYTES,
    TASK_MEMORY_BYTES,
    assignment_bytes,
    clip_error,
    fan_in_refusal,
    held_bytes,
    too_large,
)
from swarm.server.core_state import CoreState
from swarm.server.graph import check_graph, dependency_error
from swarm.server.hosts import HostView
from swarm.server.journal_base import FINAL, FORGET, SUBMIT
from swarm.server.model import FailureReason, Rejected, Task, TaskError, TaskState
from swarm.server.placement import is_special
from swarm.server.queues import ReadyQueue
from swarm.server.suspects import Group

# One result from a host: task key, attempt, output, error (None on success).
HostResult = tuple[str, int, bytes, TaskError | None]

_PENDING = TaskState.PENDING
_QUEUED = TaskState.QUEUED
_ASSIGNED = TaskState.ASSIGNED
_RUNNING = TaskState.RUNNING
_SUCCEEDED = TaskState.SUCCEEDED


@dataclass(slots=True)
class SubmitOutcome:
    accepted: int = 0
    duplicates: list[str] = field(default_factory=list)


@trait
class TaskTable(CoreState):
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
        new_bytes = 0
        for i, task in enumerate(tasks):
            if task.key in new_index:
                raise Rejected("INVALID_ARGUMENT", f"tasks[{i}].id", f"{task.id!r} repeats")
            existing = table.get(task.key)
            if existing is not None:
                self._check_resubmission(
                    existing, task, dep_keys[i] if dep_keys else (), i, client_id
                )
                outcome.duplicates.append(task.id)
                known.append(existing)
                continue
            new_index[task.key] = i
            new.append(task)
            new_bytes += len(task.payload)
        order = new
        if dep_keys is not None and any(dep_keys):
            order, external = check_graph(tasks, dep_keys, new_index, self.tasks)
            get = table.get
            # Only a task with a finished dependency (outside the batch), or with labels, can
            # be known now to be too large to assign: its payload alone always fits.
            for i in new_index.values():
                if dep_keys[i] and (i in external or tasks[i].labels):
                    refusal = fan_in_refusal(tasks[i], list(map(get, dep_keys[i])), i)
                    if refusal is not None:
                        raise refusal
        self._check_budgets(len(new), new_bytes, client_id)
        # Validated: from here on nothing refuses.
        outbox = None
        if client_id:
            outbox = self._outbox(client_id, now)  # created, or marked as owning tasks
            if not outbox.connected:
                outbox.last_seen = now  # a unary client's results expire after its last submit
        for task in new:
            task.client_id = client_id
            table[task.key] = task
        self.live_tasks += len(new)
        self.live_bytes += new_bytes
        if outbox is not None:
            outbox.live_bytes += new_bytes + TASK_MEMORY_BYTES * len(new)
        if self.journaling and new:
            self._effects.journal.append((SUBMIT, new))  # read by the writer after _link below
        if dep_keys is None:
            if order:
                self._ready_batch(order, now)
        else:
            for task in order:
                deps = dep_keys[new_index[task.key]]
                if deps:
                    self._link(task, deps, now)
                else:
                    self._make_ready(task, now)
        outcome.accepted = len(new)
        if outbox is not None and known:
            self._answer_resubmissions(outbox, client_id, known)
        self.dispatch()
        return outcome

    def _check_budgets(self, n: int, nbytes: int, client_id: str) -> None:
        """RESOURCE_EXHAUSTED, naming the budget, for a batch that would take the orchestrator
        past what it may hold (config.py): unfinished tasks and their payloads, and the
        unacknowledged results of the submitting client and of all clients."""
        cfg = self.config
        why = ""
        if self.live_tasks + n > cfg.max_tasks:
            why = (
                f"the orchestrator holds {self.live_tasks} unfinished tasks, limit {cfg.max_tasks}"
            )
        elif self.live_bytes + nbytes > cfg.max_task_bytes:
            why = (
                f"the orchestrator holds {self.live_bytes} payload bytes of unfinished tasks, "
                f"this batch adds {nbytes}, limit {cfg.max_task_bytes}"
            )
        if why:
            raise Rejected("RESOURCE_EXHAUSTED", "tasks", f"{why}: wait for results first")
        outbox = self.clients.get(client_id) if client_id else None
        if outbox is not None and len(outbox.pending) >= cfg.max_unacked_results:
            why = f"{len(outbox.pending)} unacknowledged results, limit {cfg.max_unacked_results}"
        elif (
            outbox is not None
            and outbox.pending_bytes + outbox.live_bytes >= cfg.max_unacked_result_bytes
        ):
            why = (
                f"{outbox.pending_bytes} unacknowledged result bytes and {outbox.live_bytes} "
                f"of unfinished tasks, limit {cfg.max_unacked_result_bytes}"
            )
        elif self.unacked.bytes >= cfg.max_unacked_bytes_total:
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                "tasks",
                f"all clients together hold {self.unacked.bytes} unacknowledged result bytes, "
                f"limit {cfg.max_unacked_bytes_total}: retry once results are acknowledged "
                f"or expire",
            )
        if why:
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                "tasks",
                f"client {client_id!r} has {why}: acknowledge results before submitting more",
            )

    def _link(self, task: Task, dep_keys: Sequence[str], now: float) -> None:
        failed = self._attach_deps(task, tuple(map(self.tasks.__getitem__, dep_keys)))
        if task.unmet == 0 and failed is None:
            self._make_ready(task, now)
            return
        self.pending += 1
        if failed is not None:
            # Same-batch dependents are linked after it (topological order) and see it failed.
            self._finish(task, TaskState.FAILED, now, error=dependency_error(failed))

    def _attach_deps(self, task: Task, deps: tuple[Task, ...]) -> Task | None:
        """Set the task's dependencies and its count of unmet ones, and register it with each
        unfinished one (released when the last finishes); a dependency that already failed or
        was cancelled, if any (the task then fails without running)."""
        task.deps = deps
        unmet = 0
        failed: Task | None = None
        for dep in deps:
            state = dep.state
            if state is _SUCCEEDED:
                continue
            if state >= _SUCCEEDED:  # final: failed or cancelled
                failed = dep
                continue
            unmet += 1
            if dep.dependents is None:
                dep.dependents = [task]
            else:
                dep.dependents.append(task)
        task.unmet = unmet
        return failed

    def _ready_batch(self, tasks: list[Task], now: float) -> None:
        """`_make_ready` for each of a batch of PENDING tasks, in order: new ones without
        dependencies, or dependents just released (never sent, so never blamed). The usual
        batch (one kind, one priority, no labels, no schedule_timeout_s) goes onto its
        queue's bucket in one extend."""
        first = tasks[0]
        kind, priority = first.kind, first.priority
        for task in tasks:
            if (
                task.kind != kind
                or task.priority != priority
                or task.labels is not None
                or task.schedule_timeout_s > 0
            ):
                for t in tasks:
                    self._make_ready(t, now)
                return
        for task in tasks:
            task.state = _QUEUED  # PENDING -> QUEUED: an edge of TASK_EDGES
            task.queued_at = now
        queue = self.ready.get(kind)
        if queue is None:
            queue = self.ready[kind] = ReadyQueue()
        queue.push_many(tasks, priority)
        self._ready_kinds.add(kind)

    def _make_ready(self, task: Task, now: float) -> None:
        if task.state is not _QUEUED:
            task.move(_QUEUED)
        task.queued_at = now
        queue = self.ready.get(task.kind)
        if queue is None:
            queue = self.ready[task.kind] = ReadyQueue()
        # A new task (no labels, never blamed) is never special: skip the call on the hot path.
        if (task.labels is not None or task.host_losses) and is_special(task, self.isolate_after):
            queue.push_isolated(task)
        else:
            queue.push(task)
        self._ready_kinds.add(task.kind)
        if task.schedule_timeout_s > 0:
            due = now + task.schedule_timeout_s
            heapq.heappush(self._deadlines, (due, next(self._seq), task, task.attempt))

    # ---- what hosts report --------------------------------------------------------------------

    def on_started(self, host: HostView, attempts: Iterable[tuple[str, int]], now: float) -> None:
        """Mark the attempts running. Those sent with report_start (lost_with) wait on the host
        for this: they are confirmed (`started_ok`, host.proto), as only a notice applied here
        lets a death of this host blame them. An attempt no longer current here gets no
        confirmation: whatever fenced it (a cancel, a timeout) queued its cancel already."""
        inflight = host.inflight
        confirmed = False
        for key, attempt in attempts:
            task = inflight.get(key)
            if task is not None and task.attempt == attempt and task.state is _ASSIGNED:
                task.move(_RUNNING)
                if task.timeout_s:
                    task.started_at = now  # its timeout counts from here (core_timeouts.py)
                if task.lost_with:
                    host.started_ok.append((key, attempt))
                    confirmed = True
        if confirmed:
            self._effects.wake_hosts.add(host)

    def on_results(self, host: HostView, results: Iterable[HostResult], now: float) -> None:
        """Apply a host's results. Successes are finished together after the loop
        (`_succeed_batch`); failures and fenced results one by one, as they come."""
        inflight = host.inflight
        max_output = self.config.max_output_bytes
        succeeded: list[Task] = []
        ok = succeeded.append
        matched = 0
        for key, attempt, output, error in results:
            task = inflight.get(key)
            if task is None or task.attempt != attempt:
                self.counters.stale_results += 1  # fenced: that attempt is no longer current
                continue
            del inflight[key]
            matched += 1
            if error is None:
                if len(output) > max_output:  # it could be neither kept nor sent on
                    error = too_large("the output", len(output), max_output)
                    self._finish(task, TaskState.FAILED, now, error=error)
                else:
                    task.output = output
                    ok(task)
            else:
                self._attempt_failed(task, clip_error(error), now)
        if matched:
            host.done += matched
            host.earn(now, self.config.heartbeat_interval_s, self.config.prefetch_s)
        if succeeded:
            self._succeed_batch(succeeded, now)
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
            self.counters.retried += 1
            task.move(_QUEUED)
            task.queued_at = None  # in backoff, not in a ready queue
            # Jittered, so that the retries of one failing burst spread out.
            delay = self.retry_backoff.delay_for(task.retries - 1)
            heapq.heappush(self._backoff, (now + delay, next(self._seq), task, task.attempt))
            return
        self._finish(task, TaskState.FAILED, now, error=error)

    def _requeue(self, task: Task, now: float, group: Group | None = None) -> None:
        """Back to its ready queue: isolated if special, else in `group` (suspects of one host
        death, core_hosts.py) if given, else ahead of newer work."""
        task.move(_QUEUED)
        task.host_id = None
        task.queued_at = now
        queue = self.ready.get(task.kind)
        if queue is None:
            queue = self.ready[task.kind] = ReadyQueue()
        if is_special(task, self.isolate_after):
            queue.push_isolated(task)
        elif group is not None:
            queue.push_grouped(task, group)
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
            group = task.group
            if group is not None:
                group.live -= 1
                queue.grouped_live -= 1
                task.group = None
            elif is_special(task, self.isolate_after):
                queue.isolated_live -= 1
        task.output = output
        task.error = error
        task.finished_at = now
        self.live_tasks -= 1
        self.live_bytes -= len(task.payload)
        if self.journaling:
            self._effects.journal.append((FINAL, task))
        counters = self.counters
        if state is _SUCCEEDED:
            counters.succeeded += 1
        elif state is TaskState.FAILED:
            counters.failed += 1
        else:
            counters.cancelled += 1
        if task.client_id:
            outbox = self.clients.get(task.client_id)
            if outbox is not None:
                # Clamped: an outbox that expired meanwhile came back counting from 0.
                outbox.live_bytes = max(
                    0, outbox.live_bytes - len(task.payload) - TASK_MEMORY_BYTES
                )
                if outbox.deliver(task):
                    self._wake_clients.add(outbox)
        if task.watchers is not None:
            self._deliver_to_watchers(task)
        watched = self.watched
        if watched and task.key in watched:
            # Final once: nobody needs to watch it further once its waiters are answered.
            watched.discard(task.key)
            self._effects.finished.append(task)
        self._retained.append(task)
        self.retained_bytes += held_bytes(task)
        self._evict()
        if task.dependents and cascade:
            if state is _SUCCEEDED:
                released: list[Task] = []
                self._release_dependents(task, now, released)
                if released:
                    self._ready_batch(released, now)
            else:
                self._fail_dependents_of(task, now)
            task.dependents = None

    def _succeed_batch(self, tasks: list[Task], now: float) -> None:
        """`_finish(task, SUCCEEDED, now, output=task.output)` for in-flight tasks (ASSIGNED or
        RUNNING, output set, no error): the same steps in the same order per task, with the
        counters and byte tallies added up once per batch and retention evicted once at the end
        (so it may hold one batch more than max_retained within this call, never after it)."""
        journal = self._effects.journal if self.journaling else None
        clients = self.clients
        wake = self._wake_clients
        watched = self.watched
        retain = self._retained.append
        payload_bytes = output_bytes = 0
        last_client, outbox = "", None
        released: list[Task] = []  # dependents whose last dependency is in this batch
        for task in tasks:
            task.move(_SUCCEEDED)
            task.finished_at = now
            payload = len(task.payload)
            payload_bytes += payload
            output_bytes += len(task.output)
            if journal is not None:
                journal.append((FINAL, task))
            client_id = task.client_id
            if client_id:
                if client_id != last_client:  # a batch is mostly one client's: one lookup
                    last_client, outbox = client_id, clients.get(client_id)
                if outbox is not None:
                    # Clamped: an outbox that expired meanwhile came back counting from 0.
                    outbox.live_bytes = max(0, outbox.live_bytes - payload - TASK_MEMORY_BYTES)
                    if outbox.deliver(task):
                        wake.add(outbox)
            if task.watchers is not None:
                self._deliver_to_watchers(task)
            if watched and task.key in watched:
                watched.discard(task.key)
                self._effects.finished.append(task)
            retain(task)
            if task.dependents:
                self._release_dependents(task, now, released)
                task.dependents = None
        if released:  # after the loop: each was PENDING, and none is final (checked there)
            self._ready_batch(released, now)
        n = len(tasks)
        self.live_tasks -= n
        self.live_bytes -= payload_bytes
        self.counters.succeeded += n
        # budgets.held_bytes of each, summed (no error: successes hold none).
        self.retained_bytes += payload_bytes + output_bytes + TASK_MEMORY_BYTES * n
        self._evict()

    def _evict(self) -> None:
        """Forget the oldest finished tasks while retention is over its count or bytes."""
        retained = self._retained
        max_retained, max_bytes = self.max_retained, self.config.max_retained_bytes
        if len(retained) <= max_retained and self.retained_bytes <= max_bytes:
            return
        self._forget_oldest(len(retained) - max_retained)  # the usual case: a batch over
        while self.retained_bytes > max_bytes and len(retained) > 1:
            self._forget(retained.popleft())

    def _forget_oldest(self, n: int) -> None:
        """`_forget` for the n oldest retained tasks, in one loop (none if n <= 0)."""
        popleft, tasks = self._retained.popleft, self.tasks
        journal = self._effects.journal if self.journaling else None
        freed = 0
        for _ in range(n):
            task = popleft()
            if task.error is None:  # budgets.held_bytes, inlined for the usual task
                freed += len(task.payload) + len(task.output) + TASK_MEMORY_BYTES
            else:
                freed += held_bytes(task)
            key = task.key
            held = tasks.pop(key, None)  # one lookup: the table holds it under its key
            if held is task:
                if journal is not None:
                    journal.append((FORGET, key))
            elif held is not None:  # another task has the key now: it stays
                tasks[key] = held
        self.retained_bytes -= freed

    def _release_dependents(self, task: Task, now: float, ready: list[Task]) -> None:
        """The task succeeded: each dependent whose last dependency it was is ready, and goes
        on `ready` (the caller makes them ready together, `_ready_batch`)."""
        for child in task.dependents or ():
            child.unmet -= 1
            if child.unmet == 0 and child.state is _PENDING:
                size = child.wire_bytes = assignment_bytes(child)
                if size > MAX_ITEM_BYTES:  # known only now: never send it
                    outputs = sum(len(d.output) for d in child.deps)
                    what = (
                        f"the assignment (its payload and the outputs of "
                        f"{len(child.deps)} dependencies, {outputs} bytes)"
                    )
                    error = too_large(what, size, MAX_ITEM_BYTES)
                    self._finish(child, TaskState.FAILED, now, error=error)
                else:
                    self.pending -= 1
                    ready.append(child)

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
        """Called for each task leaving _retained, oldest first."""
        self.retained_bytes -= held_bytes(task)
        if self.tasks.get(task.key) is task:
            del self.tasks[task.key]
            if self.journaling:
                self._effects.journal.append((FORGET, task.key))

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
                        self._effects.wake_hosts.add(host)
                self._finish(task, TaskState.CANCELLED, now, error=error)
            states.append(task.state)
        self.dispatch()
        return states

    # ---- time ---------------------------------------------------------------------------------

    def _task_timers(self, now: float) -> None:
        """Retry backoffs that ended, schedule deadlines that passed, retention that ran out."""
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
        horizon = now - self.config.result_ttl_s
        expired = 0
        for task in self._retained:
            finished_at = task.finished_at  # set for every retained task
            if finished_at is not None and finished_at >= horizon:
                break
            expired += 1
        self._forget_oldest(expired)
