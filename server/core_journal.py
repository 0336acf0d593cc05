"""The core's side of the journal: attempt reservations, and the state rebuilt on recovery.

A part of `Core` (see core_state.py). With `journaling` on, the other parts record what changed
in `Effects.journal` (journal_base.py names the records): the new tasks of an accepted batch,
each final state, acks, other submitters, tasks forgotten after retention. Nothing is
recorded per attempt: attempt numbers are reserved in blocks (ATTEMPT_BLOCK), and only an
attempt past its task's reservation records a new one, which must be durable before that
attempt is sent, so its host's session is named in `gated_hosts` for its writer to wait on.

`restore` rebuilds the table from what the journal kept (journal_recovery.py reads it): the
finished tasks (valid dependencies, and results owed to clients that had not acknowledged them)
and the unfinished ones, requeued with attempt numbers past the previous incarnation's.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from mypy_extensions import trait
from swarm.server.core_state import CoreState
from swarm.server.graph import dependency_error
from swarm.server.hosts import HostView
from swarm.server.journal_base import ATTEMPT_BLOCK, LIMIT, Recovered, TaskRow
from swarm.server.model import FailureReason, Task, TaskError, TaskState
from swarm.server.placement import is_special

log = logging.getLogger("swarm.server.core")

_SUCCEEDED = TaskState.SUCCEEDED


@dataclass(slots=True)
class Restored:
    finished: int = 0
    unfinished: int = 0
    owed: int = 0  # results owed to clients that had not acknowledged them
    clients: int = 0


@trait
class JournalPart(CoreState):
    def _reserve_attempts(self, task: Task, host: HostView) -> None:
        """The task's attempt number passed its reservation: reserve a further block.

        After an adopted attempt (numbered by an earlier incarnation, see `adopt`) the next one
        is numbered past the fence floor instead, within the block `load()` made durable."""
        if task.attempt <= task.fence_floor:
            jump = task.fence_floor + 1 - task.attempt
            task.attempt += jump
            task.attempt_base += jump  # the attempts shown count on by one, not by the jump
            task.attempt_limit = task.fence_floor + ATTEMPT_BLOCK
            return
        task.attempt_limit = task.attempt + ATTEMPT_BLOCK - 1
        if self.journaling:
            self._effects.journal.append((LIMIT, task.key, task.attempt_limit))
            self.gated_hosts.add(host)

    def restore(self, rec: Recovered, now: float, wall: float) -> Restored:
        """Rebuild the task table and the outboxes from the journal, before any event."""
        out = Restored()
        table = self.tasks
        finished: list[tuple[float, Task, TaskRow]] = []
        unfinished: list[tuple[Task, TaskRow]] = []
        for row in rec.tasks:
            task = _task(row)
            table[row.key] = task
            if row.state:
                age = max(0.0, wall - (row.finished_at or wall))
                finished.append((now - age, task, row))
            else:
                unfinished.append((task, row))
        finished.sort(key=lambda f: f[0])  # finishing order: retention and outboxes keep it
        for at, task, row in finished:
            _finish_from(task, row, at)
            self._retained.append(task)  # finished_at = at
            if row.client_id:
                outbox = self._outbox(row.client_id, now)
                if not row.acked:
                    outbox.deliver(task)
                    out.owed += 1
        for task, row in unfinished:
            # Past every attempt the last incarnation may have sent: its late results are stale.
            # Shown: 0 attempts made since; those an earlier incarnation may have sent are fenced.
            task.attempt = task.attempt_base = task.fence_floor = row.attempt_limit
            task.attempt_limit = row.attempt_limit + ATTEMPT_BLOCK
            task.client_id = row.client_id
            if row.client_id:
                self._outbox(row.client_id, now)
        self.live_tasks += len(unfinished)
        self.pending += len(unfinished)  # each leaves `pending` as it is made ready below
        for task, row in unfinished:
            self._relink(task, row.deps, now)
        for key, client_id, acked in rec.watchers:
            watched = table.get(key)
            if watched is None or client_id == watched.client_id:
                continue
            outbox = self._outbox(client_id, now)
            if not watched.state.final:
                watched.watchers = [*(watched.watchers or ()), client_id]
            elif not acked:
                outbox.deliver(watched)  # kept until acked; sent when the client reconnects
                out.owed += 1
        while len(self._retained) > self.max_retained:
            self._forget(self._retained.popleft())
        out.finished, out.unfinished, out.clients = (
            len(finished),
            len(unfinished),
            len(self.clients),
        )
        self.dispatch()
        return out

    def adopt(
        self, host: HostView, running: Sequence[tuple[str, int]], now: float
    ) -> list[tuple[str, int]]:
        """A joining host still runs these attempts from an earlier session; keep those that
        can still be current, and return the others (for the host to cancel).

        An attempt is adopted when its task was restored from the journal and has had no
        attempt in this incarnation (queued since recovery: `attempt == fence_floor`), its
        number is one an earlier incarnation may have sent (`<= fence_floor`), and the host
        serves its kind. It becomes the task's current attempt on this host, as if just
        assigned and started: one current attempt, so its result is the only one accepted. A
        second host reporting the same task finds it running and is told to cancel. Since the
        adopted number is below the floor, the task's next attempt is numbered past the floor
        (`_reserve_attempts`): no number an earlier incarnation sent is ever sent again.
        """
        rest: list[tuple[str, int]] = []
        adopted = 0
        grace = self.config.timeout_grace_s
        for key, attempt in running:
            task = self.tasks.get(key)
            if (
                task is None
                or task.state is not TaskState.QUEUED
                or task.queued_at is None  # in a retry backoff, not in a ready queue
                or not 0 < attempt <= task.fence_floor
                or task.attempt != task.fence_floor
                or task.kind not in host.hello.kinds
                or task.group is not None
                or is_special(task, self.isolate_after)
            ):
                rest.append((key, attempt))
                continue
            self.ready[task.kind].live -= 1  # its queue entry is skipped lazily
            task.queued_at = None
            task.move(TaskState.ASSIGNED)
            task.move(TaskState.RUNNING)
            task.attempt = task.attempt_limit = attempt  # the next one passes the floor
            task.attempt_base = attempt - 1  # one attempt made, as far as this one knows
            task.host_id = host.id
            task.sent_seq = None  # never sent on this session: reconciliation leaves it alone
            task.started_at = now
            host.inflight[key] = task
            if task.timeout_s:
                due = now + task.timeout_s + grace
                heapq.heappush(self._attempt_deadlines, (due, next(self._seq), task, attempt))
            adopted += 1
        if adopted:
            log.info("host %s: %d attempts of the last incarnation adopted", host.id, adopted)
        return rest

    def _relink(self, task: Task, dep_keys: tuple[str, ...], now: float) -> None:
        """Link a restored task to its dependencies as submit did. A dependency the journal no
        longer holds had finished and was pruned; it succeeded, as a failed one fails its
        dependents in the same commit."""
        deps: list[Task] = []
        for key in dep_keys:
            dep = self.tasks.get(key)
            if dep is None:
                dep = Task(key, "", b"", key=key)
                dep.state = _SUCCEEDED
            deps.append(dep)
        failed = self._attach_deps(task, tuple(deps))
        if failed is not None:
            self._finish(task, TaskState.FAILED, now, error=dependency_error(failed))
        elif task.unmet == 0:
            self.pending -= 1
            self._make_ready(task, now)

    def _make_ready(self, task: Task, now: float) -> None:
        raise NotImplementedError  # core_tasks.py

    def _attach_deps(self, task: Task, deps: tuple[Task, ...]) -> Task | None:
        raise NotImplementedError  # core_tasks.py

    def _forget(self, task: Task) -> None:
        raise NotImplementedError  # core_tasks.py


def _task(row: TaskRow) -> Task:
    return Task(
        row.id,
        row.kind,
        row.payload,
        key=row.key,
        client_id=row.client_id,
        priority=row.priority,
        timeout_s=row.timeout_s,
        max_retries=row.max_retries,
        labels=row.labels,
        schedule_timeout_s=row.schedule_timeout_s,
        non_retryable=row.non_retryable,
    )


def _finish_from(task: Task, row: TaskRow, at: float) -> None:
    task.state = TaskState(row.state)
    task.attempt = row.attempt  # a final row holds the attempts made (`Task.attempts`)
    task.host_id = row.host_id
    task.output = row.output
    task.finished_at = at
    if row.error is not None:
        reason, type_, message, tb = row.error
        task.error = TaskError(FailureReason(reason), type_, message, tb)
