"""Read-only views of the core for GetStatus: queue depths and task counts by state."""

from __future__ import annotations

from swarm.server.core import Core
from swarm.server.model import TaskState


def waiting_kinds(core: Core) -> dict[str, tuple[int, bool]]:
    """Queued tasks per kind, and whether no live host serves the kind."""
    out: dict[str, tuple[int, bool]] = {}
    for kind, queue in core.ready.items():
        if queue.live:
            serving = any(h.accepting for h in core.hosts_serving(kind))
            out[kind] = (queue.live, not serving)
    return out


def state_counts(core: Core) -> dict[TaskState, int]:
    assigned = running = 0
    for host in core.hosts.values():
        for task in host.inflight.values():
            if task.state is TaskState.RUNNING:
                running += 1
            else:
                assigned += 1
    queued = core.live_tasks - core.pending - assigned - running
    c = core.counters
    return {
        TaskState.PENDING: core.pending,
        TaskState.QUEUED: queued,
        TaskState.ASSIGNED: assigned,
        TaskState.RUNNING: running,
        TaskState.SUCCEEDED: c.succeeded,
        TaskState.FAILED: c.failed,
        TaskState.CANCELLED: c.cancelled,
    }
