"""The processes a benchmark runs against: one orchestrator and agent hosts on loopback.

    with BenchSwarm(hosts=2, agents=500) as swarm:
        swarm.address                    # "127.0.0.1:PORT": bound as port 0 and read back
        swarm.kill_host(0)               # SIGKILL the process that runs the agents
        swarm.lost_events()              # when the orchestrator declared hosts lost (its log)

With `restart=True` a host that dies is started again under a new id after the `swarm up`
supervisor's backoff, so a failover benchmark sees the capacity come back as it would there.
Every process runs in its own process group and is killed on exit: nothing is left behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from swarm.deploy.orphan import tied, tied_env
from swarm.deploy.procs import RestartBackoff
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

T = TypeVar("T")

# The orchestrator's lines when it stops counting a host: lost (server/core.py, `host_lost`), or
# left, which is meant for a clean goodbye (server/host_service.py).
_GONE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \S+ (?:WARNING|INFO) host (\S+) "
    r"(?:\(pid \d+\) lost: (.*); (\d+) tasks requeued|(left))"
)


def poll(check: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.01) -> T:
    """Call `check` until it returns something truthy; raise TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what}")
        time.sleep(interval_s)


def read_port(path: Path) -> int | None:
    """The port a process wrote to `path` (atomically), or None while there is none yet."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


@dataclass(frozen=True, slots=True)
class LostEvent:
    """One "host ... lost" (or "host ... left") line of the orchestrator's log."""

    at: float  # wall-clock seconds (the log's millisecond resolution)
    host_id: str
    why: str  # "left" for the clean-goodbye path
    requeued: int | None  # None on the "left" path, which does not say


def parse_lost(log_text: str) -> list[LostEvent]:
    events = []
    for line in log_text.splitlines():
        m = _GONE.match(line)
        if m is not None:
            stamp = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
            at = stamp + int(m.group(2)) / 1000
            requeued = None if m.group(5) is None else int(m.group(5))
            events.append(LostEvent(at, m.group(3), m.group(4) or "left", requeued))
    return events


class BenchSwarm:
    def __init__(
        self,
        hosts: int = 2,
        agents: int = 500,
        *,
        max_agents: int = 0,
        modules: Sequence[str] = ("swarm.bench.handlers",),
        server_args: Sequence[str] = (),
        restart: bool = False,
    ) -> None:
        self.n_hosts = hosts
        self.agents = agents
        self.max_agents = max_agents
        self.modules = list(modules)
        self.server_args = list(server_args)
        self.restart = restart
        self.port = 0
        self.server: subprocess.Popen[bytes] | None = None
        self.hosts: list[subprocess.Popen[bytes]] = []  # the live process of each slot
        self.restarts = 0
        self._lock = threading.Lock()
        self._closing = False
        self._closed = threading.Event()  # wakes supervisors out of their backoff
        self._watchers: list[threading.Thread] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="swarm-bench-")
        self._channel: grpc.Channel | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> BenchSwarm:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        port_file = Path(self._tmp.name) / "port"
        server_cmd = ["swarm.server", "--port", "0", "--port-file", str(port_file)]
        self.server = self._spawn([*server_cmd, "--log-level", "INFO", *self.server_args], "orch")
        try:
            self.port = poll(lambda: read_port(port_file), 30, "port")
        except TimeoutError as exc:
            raise RuntimeError(f"the orchestrator did not start: {self.log()[-2000:]}") from exc
        for i in range(self.n_hosts):
            self.hosts.append(self._spawn_host(i, 0))
            if self.restart:
                watcher = threading.Thread(target=self._supervise, args=(i,), daemon=True)
                watcher.start()
                self._watchers.append(watcher)
        self.wait_hosts(self.n_hosts)

    def _spawn_host(self, slot: int, generation: int) -> subprocess.Popen[bytes]:
        host_id = f"h{slot}" + (f"-r{generation}" if generation else "")
        args = ["swarm.agent_host", "--connect", self.address, "--host-id", host_id]
        args += ["--agents", str(self.agents)]
        if self.max_agents:
            args += ["--max-agents", str(self.max_agents)]
        for module in self.modules:
            args += ["--module", module]
        return self._spawn(args, host_id)

    def _supervise(self, slot: int) -> None:
        """Start the slot's host again whenever it dies, with the `swarm up` supervisor's
        backoff (0.1 s after a host that ran a while), until the swarm closes."""
        backoff = RestartBackoff()
        generation = 0
        while True:
            started = time.monotonic()
            self.hosts[slot].wait()
            if self._closed.wait(backoff.delay_after(time.monotonic() - started)):
                return
            with self._lock:
                if self._closing:
                    return
                generation += 1
                self.restarts += 1
                self.hosts[slot] = self._spawn_host(slot, generation)

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        """Start `python -m args[0] ...`, tied: it dies with this process, even a killed one."""
        log = open(Path(self._tmp.name) / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        env = tied_env({**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            return subprocess.Popen(
                tied(*args),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()

    @property
    def server_pid(self) -> int:
        assert self.server is not None, "not started"
        return self.server.pid

    def host_pids(self) -> dict[str, int]:
        """The current host process of each slot, by name ("host0", ...)."""
        return {f"host{i}": proc.pid for i, proc in enumerate(self.hosts)}

    def log(self, name: str = "orch") -> str:
        path = Path(self._tmp.name) / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def lost_events(self) -> list[LostEvent]:
        return parse_lost(self.log("orch"))

    # ---- the orchestrator's view ----

    def status(self) -> task_pb2.ClusterStatus:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address)
        stub = task_pb2_grpc.TaskServiceStub(self._channel)
        status: task_pb2.ClusterStatus = stub.GetStatus(task_pb2.GetStatusRequest(), timeout=5)
        return status

    def wait_hosts(self, n: int, timeout_s: float = 30.0) -> None:
        def ready() -> bool:
            return sum(h.state == types_pb2.ACTIVE for h in self.status().hosts) == n

        poll(ready, timeout_s, f"{n} active hosts", 0.02)

    # ---- faults ----

    def kill_host(self, slot: int) -> float:
        """SIGKILL the slot's host process; returns the wall-clock time of the kill."""
        return self._signal(slot, signal.SIGKILL)

    def stop_host(self, slot: int) -> float:
        """SIGSTOP (a hung host: its socket stays open); returns the wall-clock time."""
        return self._signal(slot, signal.SIGSTOP)

    def cont_host(self, slot: int) -> float:
        return self._signal(slot, signal.SIGCONT)

    def _signal(self, slot: int, sig: signal.Signals) -> float:
        with self._lock:
            proc = self.hosts[slot]
            at = time.time()
            proc.send_signal(sig)
        return at

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._closed.set()
        if self._channel is not None:
            self._channel.close()
        procs = [*self.hosts, *([self.server] if self.server else [])]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for watcher in self._watchers:
            watcher.join(10)
        self._tmp.cleanup()
