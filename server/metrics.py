"""Prometheus metrics of the orchestrator, collected when scraped: the hot path pays nothing.

`SwarmCollector` is a prometheus_client custom collector. Every family it yields is computed at
scrape time from state the core keeps anyway (its Counters, the ready queues, the host views
and their latest heartbeats, the client outboxes), on the event loop thread that owns that
state (server/observe.py scrapes there), so no lock and no per-task counter exist for it.

The three latency histograms are the one exception to "read at scrape time": the core keeps no
per-task timings beyond `queued_at`, so `LatencyProbe` samples one task per AssignBatch (its
queue wait), then follows that one task to its result (run time and end-to-end): a few
attribute reads per batch, never per task. They are sampled histograms, as the docs say.

Label sets are bounded: `kind` by MAX_KIND_LABELS (the rest sum into kind="_other"), `host` by
the live hosts (at most max_host_streams), `state` by the enums.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from swarm.server import status as status_views
from swarm.server.hosts import HostView
from swarm.server.model import HostState, Task, TaskState
from swarm.server.orchestrator import Orchestrator

MAX_KIND_LABELS = 64
OTHER_KIND = "_other"
# Queue wait and run time span sub-millisecond no-ops to long jobs.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
# Silence before a host is declared lost: around lease_s (1.5 s by default).
DETECTION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30)
# Clients' backlog bytes are summed over their outboxes at scrape time, up to this many results
# (beyond it the figure is a lower bound, flagged by swarm_client_backlog_bytes_truncated).
MAX_BACKLOG_SCAN = 200_000


@dataclass(slots=True)
class Sample:
    """One sampled task's timings, for the dashboard's recent-latency figures."""

    at: float  # orchestrator clock (monotonic)
    queue_wait_s: float
    run_s: float
    latency_s: float


class LatencyProbe:
    """Per-batch latency sampling: at most one followed task per host at a time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queue_wait = Histogram(
            "swarm_task_queue_wait_seconds",
            "Sampled (one task per assign batch): ready to sent to a host.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.run = Histogram(
            "swarm_task_run_seconds",
            "Sampled: sent to a host until its result reached the orchestrator.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            "swarm_task_latency_seconds",
            "Sampled: ready (submitted, for a task without dependencies) to result.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.detection = Histogram(
            "swarm_host_loss_detection_seconds",
            "Per host loss: the host's silence (since its last message) when declared lost.",
            buckets=DETECTION_BUCKETS,
            registry=registry,
        )
        # host -> (task, attempt, sent at, queued at): the one task followed on that host.
        self._following: dict[HostView, tuple[Task, int, float, float]] = {}
        self.recent: deque[Sample] = deque(maxlen=4096)

    def sent(self, host: HostView, batch: list[Task], now: float) -> None:
        """An AssignBatch was taken for `host`: sample its first task."""
        if not batch or host in self._following:
            return
        task = batch[0]
        queued = task.queued_at
        if queued is None:
            return
        self.queue_wait.observe(now - queued)
        self._following[host] = (task, task.attempt, now, queued)

    def results(self, host: HostView, now: float) -> None:
        """A result batch from `host` was applied: has the followed task finished?"""
        followed = self._following.get(host)
        if followed is None:
            return
        task, attempt, sent, queued = followed
        if task.attempt == attempt and task.state in (TaskState.ASSIGNED, TaskState.RUNNING):
            return  # still out there
        del self._following[host]
        if task.attempt != attempt or task.finished_at is None:
            return  # requeued or retried: that sample is void
        run, latency = task.finished_at - sent, task.finished_at - queued
        self.run.observe(run)
        self.latency.observe(latency)
        self.recent.append(Sample(now, sent - queued, run, latency))

    def host_gone(self, host: HostView) -> None:
        self._following.pop(host, None)


def _bounded_kinds(counts: dict[str, float]) -> dict[str, float]:
    """At most MAX_KIND_LABELS kinds, the largest; the rest summed under OTHER_KIND."""
    if len(counts) <= MAX_KIND_LABELS:
        return counts
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    out = dict(ranked[: MAX_KIND_LABELS - 1])
    out[OTHER_KIND] = sum(v for _, v in ranked[MAX_KIND_LABELS - 1 :])
    return out


def backlog(orch: Orchestrator) -> tuple[int, int, bool]:
    """Unacknowledged results over all clients, their output bytes, and whether truncated."""
    tasks = size = 0
    truncated = False
    budget = MAX_BACKLOG_SCAN
    for outbox in orch.core.clients.values():
        tasks += len(outbox.pending)
        if budget <= 0:
            truncated = truncated or bool(outbox.pending)
            continue
        for task in outbox.pending.values():
            size += len(task.output)
            budget -= 1
            if budget <= 0:
                truncated = True
                break
    return tasks, size, truncated


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class SwarmCollector(Collector):
    """Every family but the histograms, read from the core when scraped."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        # Families other parts add (the journal's lag, when it runs): name -> (help, read).
        self.extra_gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def collect(self) -> Iterable[Metric]:
        yield from self._tasks()
        yield from self._hosts()
        yield from self._misc()
        yield from self._journal()

    def _journal(self) -> Iterator[Metric]:
        """The durable journal's writer thread (none without a journal): how far it is behind,
        in core calls whose records are appended and not yet committed, and what it wrote.
        Read off the writer's own counters (server/journal_writer.py), nothing per task."""
        writer = self.orch.journal
        if writer is None:
            return
        behind = writer._appended - writer._committed
        yield _gauge(
            "swarm_journal_pending_batches",
            "Record lists appended to the journal and not yet committed (group-commit lag).",
            behind,
        )
        yield _counter("swarm_journal_commits", "Journal transactions committed.", writer.commits)
        yield _counter("swarm_journal_records", "Journal records committed.", writer.rows)

    def _tasks(self) -> Iterator[Metric]:
        core, c = self.orch.core, self.orch.core.counters
        finished = CounterMetricFamily(
            "swarm_tasks_finished", "Tasks that reached a final state.", labels=["state"]
        )
        for name, count in (("succeeded", c.succeeded), ("failed", c.failed)):
            finished.add_metric([name], count)
        finished.add_metric(["cancelled"], c.cancelled)
        yield finished
        counts = status_views.state_counts(core)
        live = GaugeMetricFamily("swarm_tasks", "Unfinished tasks by state.", labels=["state"])
        for ts in (TaskState.PENDING, TaskState.QUEUED, TaskState.ASSIGNED, TaskState.RUNNING):
            live.add_metric([ts.name.lower()], counts[ts])
        yield live
        # By kind: queued from the ready queues, assigned/running from what hosts hold (bounded
        # by hosts x agents), so no walk of the task table.
        by_kind: dict[tuple[str, str], float] = {}
        for kind, queue in core.ready.items():
            if queue.live:
                by_kind[(kind, "queued")] = queue.live
        for host in core.hosts.values():
            for task in host.inflight.values():
                state = "running" if task.state is TaskState.RUNNING else "assigned"
                by_kind[(task.kind, state)] = by_kind.get((task.kind, state), 0) + 1
        totals: dict[str, float] = {}
        for (kind, _), v in by_kind.items():
            totals[kind] = totals.get(kind, 0) + v
        kept = _bounded_kinds(totals)
        kinded = GaugeMetricFamily(
            "swarm_kind_tasks",
            "Queued, assigned and running tasks by kind (kinds beyond the cap: _other).",
            labels=["kind", "state"],
        )
        folded: dict[tuple[str, str], float] = {}
        for (kind, state), v in by_kind.items():
            k = kind if kind in kept and kind != OTHER_KIND else OTHER_KIND
            folded[(k, state)] = folded.get((k, state), 0) + v
        for (kind, state), v in sorted(folded.items()):
            kinded.add_metric([kind, state], v)
        yield kinded
        depth = GaugeMetricFamily(
            "swarm_queue_depth", "Tasks ready and waiting for a host, by kind.", labels=["kind"]
        )
        unserved = GaugeMetricFamily(
            "swarm_queue_unserved",
            "1 for a kind with queued tasks that no accepting host serves.",
            labels=["kind"],
        )
        waiting = status_views.waiting_kinds(core)
        kept_q = _bounded_kinds({k: float(n) for k, (n, _) in waiting.items()})
        for kind, v in sorted(kept_q.items()):
            depth.add_metric([kind], v)
            if kind in waiting:
                unserved.add_metric([kind], 1.0 if waiting[kind][1] else 0.0)
        yield depth
        yield unserved

    def _hosts(self) -> Iterator[Metric]:
        core = self.orch.core
        by_state = GaugeMetricFamily("swarm_hosts", "Connected hosts by state.", labels=["state"])
        counts = dict.fromkeys(HostState, 0)
        for host in core.hosts.values():
            counts[host.state] += 1
        for state in (HostState.JOINING, HostState.ACTIVE, HostState.SUSPECT, HostState.DRAINING):
            by_state.add_metric([state.name.lower()], counts[state])
        yield by_state
        per_host = {
            "agents": ("swarm_host_agents", "Agents (capacity) of the host."),
            "running": ("swarm_host_running_tasks", "Tasks the host reported running."),
            "free": ("swarm_host_free_agents", "Idle agents the host reported."),
            "inflight": ("swarm_host_inflight_tasks", "Tasks assigned to or running on it."),
            "lag": ("swarm_host_loop_lag_seconds", "The host's event-loop lag (heartbeat)."),
            "cpu": ("swarm_host_cpu_ratio", "Host process CPU, 1.0 = one core (heartbeat)."),
            "rss": ("swarm_host_rss_bytes", "Host process resident memory (heartbeat)."),
            "done": ("swarm_host_tasks_done", "Results this host session returned."),
        }
        fams = {k: GaugeMetricFamily(n, d, labels=["host"]) for k, (n, d) in per_host.items()}
        for host in sorted(core.hosts.values(), key=lambda h: h.id):
            load, labels = host.load, [host.id]
            for key, value in (
                ("agents", host.capacity),
                ("running", load.running),
                ("free", load.free),
                ("inflight", len(host.inflight)),
                ("lag", load.loop_lag_ms / 1000.0),
                ("cpu", load.cpu_percent / 100.0),
                ("rss", load.rss_bytes),
                ("done", host.done),
            ):
                fams[key].add_metric(labels, value)
        yield from fams.values()

    def _misc(self) -> Iterator[Metric]:
        orch = self.orch
        c = orch.core.counters
        yield _counter("swarm_hosts_lost", "Host sessions declared lost.", c.hosts_lost)
        yield _counter(
            "swarm_stale_results", "Results for an attempt no longer current.", c.stale_results
        )
        yield _counter("swarm_task_retries", "Attempts retried after a failure.", c.retried)
        yield _counter(
            "swarm_attempts_timed_out", "Attempts the orchestrator timed out.", c.timed_out
        )
        yield _counter(
            "swarm_attempts_reconciled", "Attempts requeued: their host lacked them.", c.reconciled
        )
        tasks, size, truncated = backlog(orch)
        yield _gauge("swarm_client_backlog_tasks", "Results not yet acknowledged.", tasks)
        yield _gauge("swarm_client_backlog_bytes", "Output bytes of those results.", size)
        yield _gauge(
            "swarm_client_backlog_bytes_truncated", "1: the byte sum stopped early.", truncated
        )
        yield _gauge("swarm_clients", "Client entries (result outboxes).", len(orch.core.clients))
        yield _gauge(
            "swarm_client_sessions", "Open client Session streams.", len(orch.client_sessions)
        )
        yield _gauge(
            "swarm_uptime_seconds", "Since the orchestrator started.", orch.now() - orch.started_at
        )
        for name, (doc, read) in sorted(self.extra_gauges.items()):
            yield _gauge(name, doc, read())
