"""`LocalSwarm`: a whole local swarm as a context manager, for scripts, demos, benchmarks, tests.

    from swarm.deploy.local import LocalSwarm

    with LocalSwarm(hosts=2, agents_per_host=100) as swarm:     # port 0: an ephemeral port
        run_workload(swarm.address)
        pid = swarm.kill_host(0)          # SIGKILL; the supervisor restarts it with backoff
        swarm.wait_hosts()                # until every slot's (new) process is ACTIVE again
    # here every child has drained and exited

The supervisor runs on an event loop of its own, in a thread of its own, so it never competes
with the caller's loop (a benchmark's client) and works the same from sync and async code
(`async with LocalSwarm(...)` only moves the blocking start and stop off the caller's loop).
That thread spawns every child and lives until all of them are reaped, which is what ties the
children to it (see `procs.orphan_guard`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import grpc
from swarm.deploy.spec import Phase, SwarmSpec, all_connected
from swarm.deploy.supervisor import Supervisor
from swarm.v1 import task_pb2, task_pb2_grpc

JOIN_MARGIN_S = 15.0  # beyond the spec's own deadlines, before we call the thread hung


class LocalSwarm:
    def __init__(
        self,
        hosts: int = 2,
        agents_per_host: int = 500,
        modules: Sequence[str] = (),
        port: int = 0,
        bind: str = "127.0.0.1",
        *,
        drain_grace_s: float = 5.0,
        log_dir: str | Path | None = None,
        log_level: str = "WARNING",
        env: dict[str, str] | None = None,
        server_args: Sequence[str] = (),
        host_args: Sequence[str] = (),
        ready_timeout_s: float = 60.0,
    ) -> None:
        self.spec = SwarmSpec(
            hosts=hosts,
            agents_per_host=agents_per_host,
            modules=tuple(modules),
            port=port,
            bind=bind,
            drain_grace_s=drain_grace_s,
            log_level=log_level,
            ready_timeout_s=ready_timeout_s,
            server_args=tuple(server_args),
            host_args=tuple(host_args),
        )
        # Children's output goes to files, so that a failure can show it: a directory we own
        # (removed on exit) unless the caller names one to keep.
        self._tmp = None if log_dir else tempfile.TemporaryDirectory(prefix="swarm-local-")
        self.log_dir = Path(log_dir) if log_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor = Supervisor(self.spec, log_dir=self.log_dir, env=env)
        self.exit_code: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._channel: grpc.Channel | None = None

    # ---- what callers read ----

    @property
    def address(self) -> str:
        address: str = self.supervisor.address
        return address

    @property
    def port(self) -> int:
        port: int = self.supervisor.port
        return port

    @property
    def orchestrator_pid(self) -> int | None:
        proc = self.supervisor.orchestrator
        return proc.pid if proc is not None else None

    @property
    def host_pids(self) -> list[int | None]:
        """The pid in each host slot now (None while a dead host waits for its restart)."""
        return self.supervisor.host_pids

    @property
    def restarts(self) -> list[int]:
        return [s.restarts for s in self.supervisor.slots]

    def logs(self, tail_chars: int = 4000) -> str:
        """The end of every child's log, for a failure message."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")[-tail_chars:]
            parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts)

    # ---- life ----

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a LocalSwarm starts once")
        self._thread = threading.Thread(target=self._main, name="swarm-supervisor", daemon=True)
        self._thread.start()
        self._ready.wait(self.spec.ready_timeout_s * 2 + JOIN_MARGIN_S)
        if self.supervisor.phase is not Phase.RUNNING:
            self._request("kill")
            self._join(JOIN_MARGIN_S)
            why = self.supervisor.failure or repr(self._error)
            logs = self.logs()
            self._cleanup()
            raise RuntimeError(f"the local swarm did not start: {why}\n{logs}")

    def _main(self) -> None:
        async def supervise() -> int:
            self._loop = asyncio.get_running_loop()
            return await self.supervisor.run(on_ready=lambda _: self._ready.set())

        try:
            self.exit_code = asyncio.run(supervise())
        except BaseException as exc:  # reported by start() or stop(), the thread just ends
            self._error = exc
        finally:
            self._ready.set()

    def _request(self, what: str) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            loop.call_soon_threadsafe(getattr(self.supervisor, what))
        except RuntimeError:  # the loop closed meanwhile: it has stopped already
            return

    def stop(self) -> int | None:
        """Drain the hosts, stop the orchestrator, wait for all of it; the supervisor's code."""
        self._request("stop")
        try:
            self._join(self.spec.drain_grace_s + JOIN_MARGIN_S)
        finally:
            self._cleanup()
        return self.exit_code

    def kill(self) -> None:
        """SIGKILL every child now and wait until they are reaped."""
        self._request("kill")
        try:
            self._join(JOIN_MARGIN_S)
        finally:
            self._cleanup()

    def _join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError(f"the supervisor did not stop within {timeout_s} s")

    def _cleanup(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalSwarm:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._error is not None and et is None:
            raise RuntimeError("the local swarm's supervisor failed") from self._error

    async def __aenter__(self) -> LocalSwarm:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # ---- faults and the orchestrator's view ----

    def kill_host(
        self, index: int, sig: signal.Signals = signal.SIGKILL, *, restart: bool = True
    ) -> int:
        """Signal the host in slot `index` (SIGKILL by default); returns its pid.

        A host that dies is restarted by the supervisor after its backoff, unless
        restart=False: then its slot stays empty (`kill_host(0, signal.SIGTERM, restart=False)`
        drains one host for good). SIGSTOP freezes a host instead (the orchestrator declares it
        lost after its lease), SIGCONT thaws it.
        """
        slot = self.supervisor.slots[index]
        pid = slot.pid
        if pid is None:
            raise ProcessLookupError(f"no host runs in slot {index} now")
        if not restart:
            slot.retired = True  # read by the supervisor's loop only after the process exits
        os.kill(pid, sig)
        return pid

    def status(self, timeout_s: float = 5.0) -> task_pb2.ClusterStatus:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address)
        stub = task_pb2_grpc.TaskServiceStub(self._channel)
        reply: task_pb2.ClusterStatus = stub.GetStatus(
            task_pb2.GetStatusRequest(), timeout=timeout_s
        )
        return reply

    def wait_hosts(self, timeout_s: float = 30.0) -> list[int]:
        """Wait until every slot (but retired ones) runs an ACTIVE host; their pids."""
        deadline = time.monotonic() + timeout_s
        while True:
            pids = self.supervisor.expected_pids
            if all_connected(self.status(), pids):
                return [p for p in pids if p is not None]
            if time.monotonic() > deadline:
                raise TimeoutError(f"hosts not all connected within {timeout_s} s: {pids}")
            time.sleep(0.02)
