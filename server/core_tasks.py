"""The task table and its DAG: accept, release dependents, retry, requeue, finish, expire.

A part of `Core` (see core_state.py). It owns every task's life from submission to its one
final state: the table by key, the ready queues, dependency links, retry backoff, schedule
deadlines and the retention of finished tasks. What hosts report about tasks (started, results,
handed back) lands here; where ready tasks go is core_dispatch.py's concern.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from swarm.server.core_state import CoreState
from swarm.server.graph import check_graph, dependency_error
from swarm.server.hosts import HostView
from swarm.server.journal_base import FINAL, FORGET, SUBMIT, WATCH
from swarm.server.model import FailureReason, Rejected, Task, TaskError, TaskState
from swarm.server.placement import is_special
from swarm.server.queues import ReadyQueue

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
        if self.live_tasks + len(new) > self.config.max_tasks:
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                "tasks",
                f"the orchestrator holds {self.live_tasks} unfinished tasks, limit "
                f"{self.config.max_tasks}: wait for results before submitting more",
            )
        outbox = self.clients.get(client_id) if client_id else None  # created once valid
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
        if client_id:
            outbox = self._outbox(client_id, now)  # created, or marked as owning tasks
        for task in new:
            task.client_id = client_id
            table[task.key] = task
        self.live_tasks += len(new)
        if self.journaling and new:
            self._effects.journal.append((SUBMIT, new))  # read by the writer after _link below
        for task in order:
            deps = dep_keys[new_index[task.key]] if dep_keys is not None else ()
            if deps:
                self._link(task, deps, now)
            else:
                self._make_ready(task, now)
        outcome.accepted = len(new)
        if outbox is not None:
            for existing in known:
                # Every submitter of an id is sent its result: now when it is final (unless
                # this session has it queued already), else when it finishes.
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
        self.dispatch()
        return outcome

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
        inflight = host.inflight
        for key, attempt in attempts:
            task = inflight.get(key)
            if task is not None and task.attempt == attempt and task.state is _ASSIGNED:
                task.move(_RUNNING)
                if task.timeout_s:
                    task.started_at = now  # its timeout counts from here (core_timeouts.py)

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
            # Jittered, so that the retries of one failing burst spread out.
            delay = self.retry_backoff.delay_for(task.retries - 1)
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
        if is_special(task, self.isolate_after):
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
            if is_special(task, self.isolate_after):
                queue.isolated_live -= 1
        task.output = output
        task.error = error
        task.finished_at = now
        self.live_tasks -= 1
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
            if outbox is not None and outbox.deliver(task):
                self._wake_clients.add(outbox)
        if task.watchers is not None:
            self._deliver_to_watchers(task)
        watched = self.watched
        if watched and task.key in watched:
            # Final once: nobody needs to watch it further once its waiters are answered.
            watched.discard(task.key)
            self._effects.finished.append(task)
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

    def _deliver_to_watchers(self, task: Task) -> None:
        clients = self.clients
        for client_id in task.watchers or ():
            outbox = clients.get(client_id)
            if outbox is not None and outbox.deliver(task):
                self._wake_clients.add(outbox)
        task.watchers = None  # final: later submitters are answered at once

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
        retained = self._retained
        horizon = now - self.config.result_ttl_s
        while retained and retained[0][0] < horizon:
            self._forget(retained.popleft()[1])
