"""Attempt timeouts enforced by the orchestrator: a host that never reports cannot hold work.

A part of `Core` (see core_state.py). A host times out its own attempts (agent_host/executor.py)
and reports TIMEOUT with what the handler was doing; this is the backstop for a host that
accepts work and then never answers while it keeps heartbeating (a wedged agent, a buggy or
hostile host). Each attempt with a timeout_s is due timeout_s + timeout_grace_s after it
started (its started notice), or after it was sent while no notice came. Past that, the attempt
is fenced (a late result is stale), the host is told to cancel it, and it is retried or fails
with TIMEOUT exactly as the host's own timeout would have it.

An attempt sent but not started may be waiting, legitimately, in the host's local queue behind
busy agents (prefetch): its handler's clock has not started. It is timed out from its sending
only while the host has an agent it could run on, by what the host has reported: fewer
attempts announced as running than its capacity.
"""

from __future__ import annotations

import heapq

from mypy_extensions import trait
from swarm.server.core_state import CoreState
from swarm.server.hosts import HostView
from swarm.server.model import FailureReason, Task, TaskError, TaskState

_ASSIGNED = TaskState.ASSIGNED
_RUNNING = TaskState.RUNNING


@trait
class AttemptTimeouts(CoreState):
    def _attempt_timers(self, now: float) -> None:
        """Time out the attempts past their deadline; re-arm those whose clock moved."""
        heap = self._attempt_deadlines
        grace = self.config.timeout_grace_s
        while heap and heap[0][0] <= now:
            _, _, task, attempt = heapq.heappop(heap)
            if task.attempt != attempt or task.state not in (_ASSIGNED, _RUNNING):
                continue  # that attempt ended (result, loss, cancel, requeue): nothing to time
            host = self.hosts.get(task.host_id) if task.host_id is not None else None
            if host is None or host.inflight.get(task.key) is not task:
                continue
            if task.started_at is not None:
                due = task.started_at + task.timeout_s + grace
            elif _agents_busy(host):
                due = now + grace  # queued behind running work: look again later
            else:
                due = now
            if due > now:
                heapq.heappush(heap, (due, next(self._seq), task, attempt))
            else:
                self._time_out(host, task, now)

    def _time_out(self, host: HostView, task: Task, now: float) -> None:
        del host.inflight[task.key]
        host.cancels.append((task.key, task.attempt))
        self._effects.wake_hosts.add(host)
        self.counters.timed_out += 1
        since = "it started" if task.started_at is not None else "it was sent"
        error = TaskError(
            FailureReason.TIMEOUT,
            "TimeoutError",
            f"ran past its timeout of {task.timeout_s} s: host {host.id} reported no result "
            f"{task.timeout_s + self.config.timeout_grace_s:.2f} s after {since} "
            "(timed out by the orchestrator)",
        )
        self._attempt_failed(task, error, now)


def _agents_busy(host: HostView) -> bool:
    running = 0
    for t in host.inflight.values():
        if t.state is _RUNNING:
            running += 1
    return running >= host.capacity
