"""The orchestrator's view of one agent-host session: identity, load, credit and what it holds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from swarm.server.model import HOST_EDGES, HostState, IllegalTransition, Task


@dataclass(slots=True)
class HostLoad:
    """The latest heartbeat, as the host reported it."""

    running: int = 0
    free: int = 0
    local_queue: int = 0
    loop_lag_ms: float = 0.0
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    tasks_done: int = 0


@dataclass(frozen=True, slots=True)
class HostHello:
    host_id: str
    pid: int
    hostname: str
    kinds: frozenset[str]
    capacity: int
    max_capacity: int
    session: int = 0
    running: tuple[tuple[str, int], ...] = ()  # attempts still running from an earlier session


@dataclass(eq=False, slots=True)
class HostView:
    """One session of one host. A reconnecting host gets a new view; the old one stays LOST."""

    hello: HostHello
    joined_at: float
    last_seen: float
    capacity: int
    state: HostState = HostState.JOINING
    load: HostLoad = field(default_factory=HostLoad)
    # Tasks ASSIGNED or RUNNING on this session, by task key: the fencing set.
    inflight: dict[str, Task] = field(default_factory=dict)
    # Waiting to be written to the host's stream.
    outbox: list[Task] = field(default_factory=list)
    cancels: list[tuple[str, int]] = field(default_factory=list)
    # report_start attempts whose started notice was applied: the host runs them once told.
    started_ok: list[tuple[str, int]] = field(default_factory=list)
    drain_grace_s: float | None = None  # a drain request to send, when set
    drain_deadline: float | None = None
    done: int = 0
    # Results in the last whole window of heartbeat_interval_s, and `done` when this one began:
    # prefetch is earned by a recent pace (`earn`, placement.py).
    last_window_done: int = 0
    window_base: int = 0
    window_start: float = 0.0
    earned: int = 0  # the prefetch earned (`earn`), before the `prefetch` cap
    sent_seq: int = 0  # seq of the last AssignBatch written to this session

    @property
    def id(self) -> str:
        return self.hello.host_id

    @property
    def accepting(self) -> bool:
        return self.state is HostState.ACTIVE

    @property
    def live(self) -> bool:
        return self.state in (HostState.ACTIVE, HostState.SUSPECT, HostState.DRAINING)

    def free(self) -> int:
        return self.capacity - len(self.inflight)

    def prefetch_credit(self, prefetch: int) -> int:
        """Tasks it may hold beyond its free agents: what it earned (`earn`), at most
        `prefetch`."""
        return prefetch if self.earned > prefetch else self.earned

    def earn(self, now: float, window_s: float, horizon_s: float) -> None:
        """Set the prefetch earned: the results it returns in `horizon_s` at its recent pace
        (the faster of the last whole window's and the current one's so far), rounded up, and
        never more than it returned in either window. So a host of fast tasks holds enough
        to keep its agents busy over the round trip to the orchestrator; a host of long tasks
        holds about one beyond its agents; a host that finished nothing lately, none."""
        recent = self.done - self.window_base
        last = self.last_window_done
        most = recent if recent > last else last
        if most == 0 or horizon_s <= 0:
            self.earned = 0
            return
        pace = last / window_s
        elapsed = now - self.window_start
        if recent:
            if elapsed <= 0:  # results at the very start of the window: no pace to bound by
                self.earned = most
                return
            if recent / elapsed > pace:
                pace = recent / elapsed
        credit = math.ceil(pace * horizon_s)
        self.earned = credit if credit < most else most

    def roll_window(self, now: float, window_s: float, horizon_s: float) -> None:
        if now - self.window_start >= window_s:
            self.last_window_done = self.done - self.window_base
            self.window_base = self.done
            self.window_start = now
            self.earn(now, window_s, horizon_s)

    def move(self, to: HostState) -> None:
        if (self.state, to) not in HOST_EDGES:
            raise IllegalTransition(f"host {self.id}: {self.state.name} -> {to.name}")
        self.state = to
