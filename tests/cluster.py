"""Real clusters for tests and benchmarks: an orchestrator process and agent-host processes.

    with Cluster(hosts=2, agents=100) as c:
        c.address                        # "127.0.0.1:PORT", the port bound as 0 and read back
        c.kill_host(0)                   # SIGKILL; c.stop_host(0) / c.cont_host(0): SIGSTOP/SIGCONT
        c.wait_hosts(2)                  # poll GetStatus until 2 hosts are ACTIVE

Every process is started in its own process group and killed on exit, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from swarm.bench.procs import read_port
from swarm.deploy.orphan import tied, tied_env
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], timeout_s: float = 10.0, interval_s: float = 0.01, what: str = ""
) -> T:
    """Poll `check` until it returns neither None nor False; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        last = check()
        if last is not None and last is not False:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or check} (last: {last!r})")
        time.sleep(interval_s)


class Cluster:
    def __init__(
        self,
        hosts: int = 2,
        agents: int = 100,
        *,
        max_agents: int = 0,
        modules: Sequence[str] = (),
        server_args: Sequence[str] = (),
        host_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        respawn: bool = False,
    ) -> None:
        self.n_hosts = hosts
        self.agents = agents
        self.max_agents = max_agents
        self.modules = list(modules)
        self.server_args = list(server_args)
        self.host_args = list(host_args)
        root = str(Path(__file__).resolve().parent.parent)  # so hosts can load tests.* handlers
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
        self.env = tied_env({**self.env, **(env or {})})  # children die with this process
        self.server: subprocess.Popen[bytes] | None = None
        self.hosts: list[subprocess.Popen[bytes]] = []
        self.port = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="swarm-test-")
        self._channel: grpc.Channel | None = None
        # respawn: a supervisor thread restarts any host process that exits, as `swarm up` does.
        self.respawn = respawn
        self.restarts = 0
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._host_args: list[list[str]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Cluster:
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
        self.server = self._spawn(
            tied(
                "swarm.server",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--log-level",
                "WARNING",
                *self.server_args,
            ),
            "orchestrator",
        )
        self.port = eventually(lambda: read_port(port_file), 20, what="port")
        for _ in range(self.n_hosts):
            self.add_host()
        self.wait_hosts(self.n_hosts)
        if self.respawn:
            self._supervisor = threading.Thread(target=self._supervise, daemon=True)
            self._supervisor.start()

    def _supervise(self) -> None:
        while not self._closing.wait(0.01):
            for i, proc in enumerate(self.hosts):
                if proc.poll() is not None and not self._closing.is_set():
                    self.hosts[i] = self._spawn(self._host_args[i], f"host{i}")
                    self.restarts += 1

    def add_host(self, *extra: str) -> subprocess.Popen[bytes]:
        args = [
            *tied("swarm.agent_host"),
            "--connect",
            self.address,
            "--agents",
            str(self.agents),
            "--host-id",
            f"h{len(self.hosts)}",
        ]
        if self.max_agents:
            args += ["--max-agents", str(self.max_agents)]
        for m in self.modules:
            args += ["--module", m]
        full = [*args, *self.host_args, *extra]
        proc = self._spawn(full, f"host{len(self.hosts)}")
        self.hosts.append(proc)
        self._host_args.append(full)
        return proc

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        with open(Path(self._tmp.name) / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )

    def log(self, name: str) -> str:
        path = Path(self._tmp.name) / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- the orchestrator's view ----

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address)
        return self._channel

    @property
    def stub(self) -> task_pb2_grpc.TaskServiceStub:
        return task_pb2_grpc.TaskServiceStub(self.channel)

    def status(self) -> task_pb2.ClusterStatus:
        return self.stub.GetStatus(task_pb2.GetStatusRequest(), timeout=5)

    def active_hosts(self) -> list[task_pb2.HostStatus]:
        return [h for h in self.status().hosts if h.state == types_pb2.ACTIVE]

    def wait_hosts(self, n: int, timeout_s: float = 30.0) -> list[task_pb2.HostStatus]:
        def ready() -> list[task_pb2.HostStatus] | None:
            hosts = self.active_hosts()
            return hosts if len(hosts) == n else None

        return eventually(ready, timeout_s, 0.02, what=f"{n} active hosts")

    # ---- faults ----

    def kill_host(self, i: int) -> None:
        self.hosts[i].send_signal(signal.SIGKILL)
        self.hosts[i].wait(5)

    def stop_host(self, i: int) -> None:
        self.hosts[i].send_signal(signal.SIGSTOP)

    def cont_host(self, i: int) -> None:
        self.hosts[i].send_signal(signal.SIGCONT)

    def close(self) -> None:
        self._closing.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        if self._channel is not None:
            self._channel.close()
        for proc in [*self.hosts, *([self.server] if self.server else [])]:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._tmp.cleanup()
