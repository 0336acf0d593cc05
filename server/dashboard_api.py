"""What the dashboard shows, as JSON: built from core state when the page asks, never per task.

`Observer` is what the edge tells about batches and lost hosts (server/host_service.py and
Orchestrator.flush call it: one call per batch or per loss), and what the HTTP side asks:

* `state()`: hosts with their state and load, queues per kind (and whether any host serves
  the kind), the last minutes of throughput and latency (one point a second, from the core's
  counters and the latency probe's samples), recent failures with their tracebacks and
  host-loss events;
* `task(namespace, id)`: one task's state, attempts, host and error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from swarm.server import status as status_views
from swarm.server.hosts import HostView
from swarm.server.keys import split_key, task_key
from swarm.server.metrics import LatencyProbe
from swarm.server.model import Task, TaskState
from swarm.server.orchestrator import Orchestrator

log = logging.getLogger("swarm.server.observe")

SERIES_POINTS = 600  # ten minutes at one point a second
RECENT_FAILURES = 20
FAILURE_SCAN = 200_000  # at most this many finished tasks looked at per collection
MAX_TRACEBACK = 8_000  # characters of one traceback sent to the page


@dataclass(slots=True)
class LossEvent:
    host_id: str
    pid: int
    hostname: str
    at: float  # wall clock, seconds since the epoch
    silent_s: float  # since its last message: the detection time
    reason: str
    tasks_done: int


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Observer:
    def __init__(self, orch: Orchestrator, registry: CollectorRegistry) -> None:
        self.orch = orch
        self.probe = LatencyProbe(registry)
        self.losses: deque[LossEvent] = deque(maxlen=100)
        self.series: deque[dict[str, Any]] = deque(maxlen=SERIES_POINTS)
        self._last_sample_at = 0.0
        # The newest failures, kept here: under W2 load retention evicts a finished task within
        # seconds (max_retained at 10,000 tasks/s), long before anyone reads the page.
        self.recent_failures: deque[tuple[float, Task]] = deque(maxlen=RECENT_FAILURES)
        self._failed_seen = 0  # the core's failed counter at the last collection
        self._scanned_to: Task | None = None  # the newest finished task at the last collection

    # ---- what the edge reports (once per batch or per loss) -----------------------------------

    def sent(self, host: HostView, batch: list[Task], now: float) -> None:
        self.probe.sent(host, batch, now)

    def results(self, host: HostView, now: float) -> None:
        self.probe.results(host, now)

    def host_lost(self, host: HostView, now: float) -> None:
        self.probe.host_gone(host)
        silent = now - host.last_seen
        lease = self.orch.config.lease_s
        reason = (
            f"silent {silent:.2f} s, past its lease of {lease} s"
            if silent > lease
            else "its stream ended or broke without a drain"
        )
        event = LossEvent(
            host.id, host.hello.pid, host.hello.hostname, time.time(), silent, reason, host.done
        )
        self.losses.append(event)
        self.probe.detection.observe(silent)

    # ---- the series: one point a second, while the HTTP side runs -----------------------------

    async def sample_forever(self, every_s: float = 1.0) -> None:
        while True:
            self.sample()
            await asyncio.sleep(every_s)

    def sample(self) -> None:
        orch = self.orch
        now, c = orch.now(), orch.core.counters
        recent = [s.latency_s for s in self.probe.recent if s.at > self._last_sample_at]
        self._last_sample_at = now
        counts = status_views.state_counts(orch.core)
        self.series.append(
            {
                "t": time.time(),
                "succeeded": c.succeeded,
                "failed": c.failed,
                "cancelled": c.cancelled,
                "queued": counts[TaskState.QUEUED],
                "running": counts[TaskState.RUNNING] + counts[TaskState.ASSIGNED],
                "latency_p50_s": _quantile(recent, 0.5),
                "latency_p95_s": _quantile(recent, 0.95),
            }
        )

    # ---- what the page asks for ---------------------------------------------------------------

    def throughput(self, window_s: float = 5.0) -> float:
        """Tasks finished per second over the last window_s of the series."""
        if len(self.series) < 2:
            return 0.0
        last = self.series[-1]
        first = last
        for point in reversed(self.series):
            first = point
            if last["t"] - point["t"] >= window_s:
                break
        dt = last["t"] - first["t"]
        done = sum(last[k] - first[k] for k in ("succeeded", "failed", "cancelled"))
        return done / dt if dt > 0 else 0.0

    def state(self) -> dict[str, Any]:
        orch = self.orch
        core, now = orch.core, orch.now()
        hosts = []
        for host in sorted(core.hosts.values(), key=lambda h: h.id):
            load = host.load
            hosts.append(
                {
                    "id": host.id,
                    "pid": host.hello.pid,
                    "hostname": host.hello.hostname,
                    "state": host.state.name.lower(),
                    "kinds": sorted(host.hello.kinds),
                    "agents": host.capacity,
                    "inflight": len(host.inflight),
                    "running": load.running,
                    "free": load.free,
                    "loop_lag_ms": load.loop_lag_ms,
                    "cpu_percent": load.cpu_percent,
                    "rss_bytes": load.rss_bytes,
                    "done": host.done,
                    "last_seen_ago_s": now - host.last_seen,
                }
            )
        served = {k for h in core.hosts.values() if h.accepting for k in h.hello.kinds}
        queues = [
            {"kind": kind, "queued": n, "unserved": unserved}
            for kind, (n, unserved) in sorted(status_views.waiting_kinds(core).items())
        ]
        counts = status_views.state_counts(core)
        return {
            "now": time.time(),
            "uptime_s": now - orch.started_at,
            "throughput_per_s": self.throughput(),
            "tasks": {s.name.lower(): n for s, n in counts.items()},
            "hosts": hosts,
            "hosts_lost": core.counters.hosts_lost,
            "kinds_served": sorted(served),
            "queues": queues,
            "series": list(self.series),
            "failures": self.failures(now),
            "losses": [asdict(e) for e in reversed(self.losses)],
        }

    def failures(self, now: float) -> list[dict[str, Any]]:
        """The recent failures, newest first, after collecting those since the last call."""
        self._collect_failures()
        wall = time.time()
        return [
            {"at": wall - (now - at), **describe(task)}
            for at, task in reversed(self.recent_failures)
        ]

    def _collect_failures(self) -> None:
        """Read new failures off the newest end of the core's retained finished tasks, back to
        where the last collection stopped: only when the core's failed counter moved, so a
        page polled while nothing fails costs one comparison, and never per task on the hot
        path. Between two reads of the page more finished than retention keeps are missed; the
        counter (swarm_tasks_finished_total) still has them."""
        retained, failed = self.orch.core._retained, self.orch.core.counters.failed
        new, self._failed_seen = failed - self._failed_seen, failed
        scanned_to, self._scanned_to = self._scanned_to, (retained[-1] if retained else None)
        if new <= 0:
            return
        found: list[tuple[float, Task]] = []
        for i, task in enumerate(reversed(retained)):
            if task is scanned_to or i >= FAILURE_SCAN or len(found) >= min(new, RECENT_FAILURES):
                break
            at = task.finished_at  # set for every retained task
            if task.state is TaskState.FAILED and task.error is not None and at is not None:
                found.append((at, task))
        self.recent_failures.extend(reversed(found))

    def task(self, namespace: str, task_id: str) -> dict[str, Any] | None:
        task = self.orch.core.tasks.get(task_key(namespace, task_id))
        return None if task is None else describe(task)


def describe(task: Task) -> dict[str, Any]:
    namespace, task_id = split_key(task.key)
    err = task.error
    return {
        "id": task_id,
        "namespace": namespace,
        "kind": task.kind,
        "state": task.state.name.lower(),
        "attempts": task.attempts,
        "retries": task.retries,
        "host": task.host_id,
        "hosts_lost_with": task.lost_with,
        "client_id": task.client_id,
        "labels": dict(task.labels or {}),
        "error": None
        if err is None
        else {
            "reason": err.reason.name.lower(),
            "type": err.type,
            "message": err.message,
            "traceback": err.traceback[-MAX_TRACEBACK:],
        },
    }
