"""What a local swarm is made of, and the phases its supervisor goes through: no I/O here."""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from swarm.common.runtime import DEFAULT_PORT
from swarm.v1 import task_pb2, types_pb2

HostIds = Literal["slot", "generation"] | None
HOST_ID_POLICIES = (None, "slot", "generation")


@dataclass(frozen=True, slots=True)
class SwarmSpec:
    """What to run. Extra arguments go verbatim to `python -m swarm.server` / `swarm.agent_host`.

    `host_ids`: None lets each host name itself (hostname-pid, as `swarm up` wants); "slot"
    gives `h0`, `h1`, ... kept across restarts (tests that assert where work ran); "generation"
    gives `h0`, then `h0-r1`, `h0-r2` after each restart (benchmarks that tell a restarted host
    from the one that died). `restart`: restart dead hosts with `procs.restart_backoff` from
    `restart_delay_s` doubling up to `restart_max_delay_s`; False leaves a dead host's slot empty.
    The log levels default to `log_level`: benchmarks read the orchestrator's INFO lines.
    `test_kinds`: hosts also serve the harmful built-in kinds (`crash`, `burn`), for tests and
    benchmarks (`--unsafe-test-kinds`).
    """

    hosts: int = field(default_factory=lambda: os.cpu_count() or 1)
    agents_per_host: int = 500
    modules: tuple[str, ...] = ()
    port: int = DEFAULT_PORT  # 0: an ephemeral port, read back from the orchestrator
    bind: str = "127.0.0.1"
    drain_grace_s: float = 5.0
    log_level: str = "WARNING"
    log_format: str = "text"  # of every child: text or json (swarm.common.logs)
    ready_timeout_s: float = 60.0
    server_args: tuple[str, ...] = ()
    host_args: tuple[str, ...] = ()
    max_agents: int = 0  # 0: the host's default (no growth beyond agents_per_host)
    host_ids: HostIds = None
    restart: bool = True
    restart_delay_s: float = 0.1
    restart_max_delay_s: float = 10.0
    # Restart a dead orchestrator (same backoff, same port): only worth it with a journal
    # (`--state-dir`), as one without comes back having forgotten every task.
    restart_orchestrator: bool = False
    orchestrator_log_level: str | None = None
    host_log_level: str | None = None
    test_kinds: bool = False

    def __post_init__(self) -> None:
        if self.hosts < 0:
            raise ValueError("hosts must be >= 0")
        if self.agents_per_host < 1:
            raise ValueError("agents_per_host must be >= 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be within 0..65535")
        if self.drain_grace_s < 0 or self.ready_timeout_s <= 0:
            raise ValueError("drain_grace_s must be >= 0 and ready_timeout_s > 0")
        if self.host_ids not in HOST_ID_POLICIES:
            raise ValueError(f"host_ids must be one of {HOST_ID_POLICIES}")
        if not 0 < self.restart_delay_s <= self.restart_max_delay_s:
            raise ValueError("restarts need 0 < restart_delay_s <= restart_max_delay_s")

    def host_id(self, slot: int, base: str | None, restarts: int) -> str | None:
        """The --host-id of a slot's process after `restarts` restarts (None: the host picks)."""
        if base is None and self.host_ids is None:
            return None
        name = base or f"h{slot}"
        return f"{name}-r{restarts}" if self.host_ids == "generation" and restarts else name


class Phase(enum.Enum):
    STARTING = "starting"  # orchestrator and hosts spawned, not all hosts connected yet
    RUNNING = "running"  # every host connected once; on_ready has been called
    DRAINING = "draining"  # stop() or a lost orchestrator: the ordered shutdown runs
    KILLING = "killing"  # kill(): everything got SIGKILL
    STOPPED = "stopped"  # every child reaped


PHASE_EDGES: dict[Phase, frozenset[Phase]] = {
    Phase.STARTING: frozenset({Phase.RUNNING, Phase.DRAINING, Phase.KILLING}),
    Phase.RUNNING: frozenset({Phase.DRAINING, Phase.KILLING}),
    Phase.DRAINING: frozenset({Phase.KILLING, Phase.STOPPED}),
    Phase.KILLING: frozenset({Phase.STOPPED}),
    Phase.STOPPED: frozenset(),
}


def all_connected(status: task_pb2.ClusterStatus, pids: Iterable[int | None]) -> bool:
    """True when every slot has a live process and each of them is an ACTIVE host."""
    active = {h.pid for h in status.hosts if h.state == types_pb2.ACTIVE}
    wanted = list(pids)
    return all(p is not None and p in active for p in wanted)
