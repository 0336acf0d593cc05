"""Plain result types of `status()` and `vote()`, converted from protobuf in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarm.client._future import TaskFuture
from swarm.v1 import task_pb2, types_pb2


@dataclass(frozen=True, slots=True)
class HostInfo:
    """One agent host as the orchestrator last saw it (from its heartbeats).

    `state` is a host state name: JOINING, ACTIVE, DRAINING, GONE, SUSPECT or LOST.
    """

    host_id: str
    pid: int
    hostname: str
    state: str
    kinds: tuple[str, ...]
    agents: int
    max_agents: int
    running: int
    assigned: int
    free: int
    local_queue: int
    loop_lag_ms: float
    cpu_percent: float
    rss_bytes: int
    tasks_done: int
    last_seen_ago_s: float


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A client identity the orchestrator holds results for."""

    client_id: str
    # A Session stream is open.
    connected: bool
    # Results delivered (or waiting for delivery) and not yet acknowledged.
    unacked_results: int


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """What `client.status()` returns: hosts, queue depth per kind, and task counts by state.

    ```python
    st = await client.status()
    print(len(st.hosts), "hosts,", st.agents, "agents,", st.tasks["QUEUED"], "queued")
    ```
    """

    hosts: tuple[HostInfo, ...]
    # Tasks queued per kind.
    queues: dict[str, int]
    # Kinds whose tasks wait because no live host serves them.
    kinds_without_host: tuple[str, ...]
    # Task counts by state name: PENDING, QUEUED, ASSIGNED, RUNNING, SUCCEEDED, FAILED, CANCELLED.
    tasks: dict[str, int]
    uptime_s: float
    # Results dropped because their attempt had been fenced off.
    stale_results: int
    clients: tuple[ClientInfo, ...]
    # Hosts declared lost since the orchestrator started.
    hosts_lost: int

    @property
    def agents(self) -> int:
        """Agents on all hosts."""
        return sum(h.agents for h in self.hosts)

    @property
    def running(self) -> int:
        """Tasks running on all hosts."""
        return sum(h.running for h in self.hosts)


@dataclass(frozen=True, slots=True)
class Vote:
    """The outcome of `client.vote()`: the most common answer and how many replicas gave it.

    `value` is the answer (decoded like any output), `votes` the replicas that returned it,
    `total` the replicas run, `failed` those that ended in an error, and `hosts` the distinct
    hosts the replicas ran on. `majority` is True when more than half of `total` agreed.
    """

    value: Any
    votes: int
    total: int
    failed: int
    hosts: tuple[str, ...]

    @property
    def majority(self) -> bool:
        """More than half of the replicas returned `value`."""
        return self.votes * 2 > self.total


def _host_info(h: task_pb2.HostStatus) -> HostInfo:
    return HostInfo(
        host_id=h.host_id,
        pid=h.pid,
        hostname=h.hostname,
        state=_name(types_pb2.HostState, h.state),
        kinds=tuple(h.kinds),
        agents=h.agents,
        max_agents=h.max_agents,
        running=h.running,
        assigned=h.assigned,
        free=h.free,
        local_queue=h.local_queue,
        loop_lag_ms=h.loop_lag_ms,
        cpu_percent=h.cpu_percent,
        rss_bytes=h.rss_bytes,
        tasks_done=h.tasks_done,
        last_seen_ago_s=h.last_seen_ago_s,
    )


def cluster_status(msg: task_pb2.ClusterStatus) -> ClusterStatus:
    """Convert the GetStatus reply."""
    counts = msg.tasks
    return ClusterStatus(
        hosts=tuple(_host_info(h) for h in msg.hosts),
        queues={q.kind: q.queued for q in msg.queues},
        kinds_without_host=tuple(q.kind for q in msg.queues if q.waiting_for_host),
        tasks={
            "PENDING": counts.pending,
            "QUEUED": counts.queued,
            "ASSIGNED": counts.assigned,
            "RUNNING": counts.running,
            "SUCCEEDED": counts.succeeded,
            "FAILED": counts.failed,
            "CANCELLED": counts.cancelled,
        },
        uptime_s=msg.uptime_s,
        stale_results=msg.stale_results,
        clients=tuple(ClientInfo(c.client_id, c.connected, c.unacked_results) for c in msg.clients),
        hosts_lost=msg.hosts_lost,
    )


def state_name(state: int) -> str:
    """A task state's name, e.g. "CANCELLED"."""
    return _name(types_pb2.TaskState, state)


def _name(enum: Any, value: int) -> str:
    try:
        name: str = enum.Name(value)
    except ValueError:  # a value newer than this SDK
        return str(value)
    return name


def tally_votes(futures: list[TaskFuture]) -> Vote:
    """Count finished replicas by output bytes; the most common wins (ties: the first seen).

    Raises the first replica's error when none succeeded.
    """
    tally: dict[bytes, list[TaskFuture]] = {}
    for fut in futures:
        if fut._succeeded():
            tally.setdefault(fut.output, []).append(fut)
    if not tally:
        futures[0]._value()  # raises its error
    best = max(tally.values(), key=len)
    won = sum(len(v) for v in tally.values())
    return Vote(
        value=best[0]._value(),
        votes=len(best),
        total=len(futures),
        failed=len(futures) - won,
        hosts=tuple(dict.fromkeys(f.host_id for f in futures if f.host_id)),
    )
