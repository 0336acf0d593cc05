"""The state every part of the scheduling core shares, and what the parts call across.

`Core` (core.py) is assembled from parts, one concern each: the task table and DAG
(core_tasks.py), host failure detection (core_hosts.py), dispatch (core_dispatch.py) and client
delivery (core_clients.py). They are mixins over this one state rather than separate objects,
so that the per-task path stays plain method calls on one instance. The stubs below are the
calls a part makes into another; the real methods come first in Core's MRO.

The parts are mypyc traits (`@trait`, a no-op in Python): compiled (setup.py), a class may
inherit from several only if they are traits, and `Core` is the one concrete class.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from mypy_extensions import trait
from swarm.common.backoff import Backoff
from swarm.server.budgets import Tally
from swarm.server.clients import ClientOutbox
from swarm.server.config import OrchestratorConfig
from swarm.server.effects import Effects
from swarm.server.hosts import HostView
from swarm.server.model import Task, TaskError, TaskState
from swarm.server.placement import isolate_after
from swarm.server.queues import ReadyQueue
from swarm.server.suspects import Group


@dataclass(slots=True)
class Counters:
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    stale_results: int = 0  # results for an attempt that was no longer current
    timed_out: int = 0  # attempts the orchestrator timed out: the host never reported them
    reconciled: int = 0  # attempts requeued because their host did not hold them
    hosts_lost: int = 0
    retried: int = 0  # attempts retried after a handler error or timeout (failure path only)


@trait
class CoreState:
    def __init__(self, config: OrchestratorConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()
        # Retries of a failing handler: the one backoff curve of Swarm (common/backoff.py).
        self.retry_backoff = Backoff(
            config.retry_backoff_s, config.retry_backoff_max_s, rng=self.rng.random
        )
        # Task table (core_tasks.py).
        self.tasks: dict[str, Task] = {}
        self.live_tasks = 0  # not yet final
        self.live_bytes = 0  # their payloads' bytes (max_task_bytes)
        self.pending = 0  # waiting for dependencies
        self.ready: dict[str, ReadyQueue] = {}
        self._ready_kinds: set[str] = set()
        # Timers, as heaps of (due, seq, ...): retry backoff and schedule deadlines.
        self._seq = itertools.count()
        self._backoff: list[tuple[float, int, Task, int]] = []
        self._deadlines: list[tuple[float, int, Task, int]] = []
        # Attempt timeouts (core_timeouts.py), by (task, attempt), armed when the attempt is sent.
        self._attempt_deadlines: list[tuple[float, int, Task, int]] = []
        # Finished tasks, oldest first (each one's finished_at says when): evicted from the front.
        self._retained: deque[Task] = deque()
        self.max_retained = config.max_retained
        self.retained_bytes = 0  # budgets.held_bytes of _retained (max_retained_bytes)
        # Hosts (core_hosts.py): live sessions by host id, and by kind served.
        self.hosts: dict[str, HostView] = {}
        self._by_kind: dict[str, list[HostView]] = {}
        # Placement (placement.py): the loss count from which a task is a suspect.
        self.isolate_after = isolate_after(config.max_host_losses)
        # Clients (core_clients.py): result outboxes by client id; task keys Wait calls watch.
        self.clients: dict[str, ClientOutbox] = {}
        self.watched: set[str] = set()
        # What all outboxes' unacknowledged results hold (max_unacked_bytes_total).
        self.unacked = Tally()
        # Disconnected outboxes by when they may expire, (due, seq, outbox): checked lazily
        # (an outbox seen since is pushed again), so a tick costs nothing per idle client.
        self._client_expiry: list[tuple[float, int, ClientOutbox]] = []
        self.counters = Counters()
        # The journal (core_journal.py): whether to record for it, and the host sessions that
        # must wait for a journaled attempt reservation before sending their next batch.
        self.journaling = False
        self.gated_hosts: set[HostView] = set()
        # Effects for the edge, double-buffered: see Core.take_effects.
        self._effects = Effects()
        self._spare_effects = Effects()
        # The current effects' client set, bound here: a finished task adds to it, and one
        # attribute lookup is a measurable share of the per-task cost. Rebound on each take.
        self._wake_clients = self._effects.wake_clients

    # ---- calls across parts (stubs; the parts define them) ---------------------------------

    def dispatch(self) -> None:
        raise NotImplementedError  # core_dispatch.py

    def adopt(
        self, host: HostView, running: Sequence[tuple[str, int]], now: float
    ) -> list[tuple[str, int]]:
        raise NotImplementedError  # core_journal.py

    def _requeue(self, task: Task, now: float, group: Group | None = None) -> None:
        raise NotImplementedError  # core_tasks.py

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
        raise NotImplementedError  # core_tasks.py

    def _attempt_failed(self, task: Task, error: TaskError, now: float) -> None:
        raise NotImplementedError  # core_tasks.py

    def _outbox(self, client_id: str, now: float) -> ClientOutbox:
        raise NotImplementedError  # core_clients.py

    def _check_resubmission(
        self, existing: Task, task: Task, deps: Sequence[str], i: int, client_id: str
    ) -> None:
        raise NotImplementedError  # core_clients.py

    def _answer_resubmissions(
        self, outbox: ClientOutbox, client_id: str, known: list[Task]
    ) -> None:
        raise NotImplementedError  # core_clients.py

    def _deliver_to_watchers(self, task: Task) -> None:
        raise NotImplementedError  # core_clients.py

    def _reserve_attempts(self, task: Task, host: HostView) -> None:
        raise NotImplementedError  # core_journal.py
