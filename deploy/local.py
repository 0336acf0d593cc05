"""`LocalSwarm`: a whole local swarm as a context manager, for scripts, demos, benchmarks, tests.

    from swarm.deploy.local import LocalSwarm

    with LocalSwarm(hosts=2, agents_per_host=100) as swarm:     # port 0: an ephemeral port
        run_workload(swarm.address)
        swarm.kill_host(0)                # SIGKILL; the supervisor restarts it with backoff
        swarm.wait_hosts()                # until every slot's (new) process is ACTIVE again
    # here every child has drained and exited

It runs the supervisor of `swarm up` (supervisor.py), so what tests and benchmarks exercise is
what users run; what differs between them is options. A test swarm, say:

    LocalSwarm(hosts=2, agents_per_host=20, host_ids="slot", restart=False, on_exit="kill")

names its hosts `h0`, `h1`, leaves a dead host dead, and SIGKILLs everything on exit rather
than drain. `add_host(..., wrap=ns.exec_args)` adds a host with other arguments, or inside a
network namespace; `kill_host`/`stop_host`/`cont_host` inject faults and return when they did.

The supervisor runs on an event loop of its own, in a thread of its own, so it never competes
with the caller's loop (a benchmark's client) and works the same from sync and async code
(`async with LocalSwarm(...)` only moves the blocking start and stop off the caller's loop).
That thread spawns every child and lives until all of them are reaped, which is what ties the
children to it (see `orphan.py`); so `add_host` hands its spawn to that loop too.
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
from typing import Literal

from swarm.deploy.events import LostEvent, parse_lost
from swarm.deploy.procs import Wrap, poll
from swarm.deploy.spec import HostIds, Phase, SwarmSpec, all_connected
from swarm.deploy.supervisor import Supervisor
from swarm.deploy.view import OrchestratorView

JOIN_MARGIN_S = 15.0  # beyond the spec's own deadlines, before we call the thread hung


class LocalSwarm(OrchestratorView):
    """An orchestrator and `hosts` agent hosts, supervised; see the module's docstring.

    Beyond SwarmSpec's fields (which the arguments of the same names fill): `log_dir` keeps the
    children's logs (default: a temporary directory, removed on exit); `env` is merged into the
    children's environment, after `pythonpath` (directories put first on their PYTHONPATH, where
    handler modules live); `on_exit="kill"` makes leaving the `with` block SIGKILL everything
    instead of the ordered drain, for tests that must not wait for running tasks.
    """

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
        max_agents: int = 0,
        host_ids: HostIds = None,
        restart: bool = True,
        restart_delay_s: float = 0.1,
        restart_max_delay_s: float = 10.0,
        orchestrator_log_level: str | None = None,
        host_log_level: str | None = None,
        pythonpath: Sequence[str | Path] = (),
        on_exit: Literal["stop", "kill"] = "stop",
        test_kinds: bool = False,
        restart_orchestrator: bool = False,
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
            max_agents=max_agents,
            host_ids=host_ids,
            restart=restart,
            restart_delay_s=restart_delay_s,
            restart_max_delay_s=restart_max_delay_s,
            orchestrator_log_level=orchestrator_log_level,
            host_log_level=host_log_level,
            test_kinds=test_kinds,
            restart_orchestrator=restart_orchestrator,
        )
        if on_exit not in ("stop", "kill"):
            raise ValueError("on_exit must be 'stop' or 'kill'")
        self.on_exit = on_exit
        env = dict(env or {})
        if pythonpath:
            rest = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (*map(str, pythonpath), rest) if p)
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
    def env(self) -> dict[str, str]:
        """The children's environment: for a process a test starts next to them."""
        return dict(self.supervisor.env)

    @property
    def orchestrator_pid(self) -> int | None:
        proc = self.supervisor.orchestrator
        return proc.pid if proc is not None else None

    @property
    def host_pids(self) -> list[int | None]:
        """The pid in each host slot now (None while a dead host waits for its restart)."""
        return self.supervisor.host_pids

    def pids(self) -> dict[str, int]:
        """Every live child by name ("orchestrator", "host0", ...): for a CPU meter."""
        out = {"orchestrator": self.orchestrator_pid} if self.orchestrator_pid else {}
        out.update({f"host{i}": p for i, p in enumerate(self.host_pids) if p is not None})
        return out

    @property
    def restarts(self) -> list[int]:
        """How often each slot's host was restarted."""
        return [s.restarts for s in self.supervisor.slots]

    def log(self, name: str = "orchestrator") -> str:
        """One child's log so far: "orchestrator", or "host0", "host1"... (a slot's, across
        its restarts)."""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, tail_chars: int = 4000) -> str:
        """The end of every child's log, for a failure message."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")[-tail_chars:]
            parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts)

    def lost_events(self) -> list[LostEvent]:
        """When the orchestrator declared hosts lost (or saw them leave, at INFO), by its log."""
        return parse_lost(self.log("orchestrator"))

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
        self.close_channel()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalSwarm:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill() if self.on_exit == "kill" else self.stop()
        if self._error is not None and et is None:
            raise RuntimeError("the local swarm's supervisor failed") from self._error

    async def __aenter__(self) -> LocalSwarm:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.kill if self.on_exit == "kill" else self.stop)

    # ---- more hosts, faults ----

    def add_host(
        self,
        *extra_args: str,
        host_id: str | None = None,
        wrap: Wrap | None = None,
        timeout_s: float = 30.0,
    ) -> int:
        """Start one more host, in a slot of its own; returns the slot's index once it is spawned.

        `extra_args` go to the host after the swarm's own (the last --agents wins); `wrap` runs
        it elsewhere, e.g. `wrap=ns.exec_args` inside a network namespace. The spawn happens on
        the supervisor's thread, so that the child is tied to it like the others; the supervisor
        restarts it (if the swarm restarts hosts) and reaps it on stop.
        """
        loop = self._loop
        if loop is None or self.supervisor.phase is not Phase.RUNNING:
            raise RuntimeError("add_host needs a running swarm")
        job = self.supervisor.add_host(extra_args, host_id=host_id, wrap=wrap)
        slot = asyncio.run_coroutine_threadsafe(job, loop).result(timeout_s)
        return slot.index

    def kill_host(
        self, index: int, sig: signal.Signals = signal.SIGKILL, *, restart: bool = True
    ) -> float:
        """Signal the host in slot `index` (SIGKILL by default); returns the wall-clock time of
        the signal, which is what a detection time is measured from.

        A host that dies is restarted by the supervisor after its backoff if the swarm restarts
        hosts, unless restart=False: then its slot stays empty (`kill_host(0, signal.SIGTERM,
        restart=False)` drains one host for good). Read `host_pids[index]` first for the pid.
        """
        slot = self.supervisor.slots[index]
        pid = slot.pid
        if pid is None:
            raise ProcessLookupError(f"no host runs in slot {index} now")
        if not restart:
            slot.retired = True  # read by the supervisor's loop only after the process exits
        at = time.time()
        os.kill(pid, sig)
        return at

    def stop_host(self, index: int) -> float:
        """SIGSTOP: a hung host (its socket stays open, so only the lease finds it)."""
        return self.kill_host(index, signal.SIGSTOP)

    def cont_host(self, index: int) -> float:
        return self.kill_host(index, signal.SIGCONT)

    def host_exit(self, pid: int, timeout_s: float = 10.0) -> int:
        """Wait until the host process `pid` has exited and been reaped; its exit code."""

        def code() -> list[int] | None:
            found = [s.exits[pid] for s in self.supervisor.slots if pid in s.exits]
            return found or None

        return poll(code, timeout_s, f"host process {pid} to exit")[0]

    # ---- the orchestrator's view ----

    def wait_hosts(self, n: int | None = None, timeout_s: float = 30.0) -> list[int]:
        """Wait until every slot (but retired ones) runs an ACTIVE host, or with `n`, until
        exactly `n` hosts are ACTIVE (hosts started elsewhere count too); their pids."""

        def ready() -> tuple[list[int]] | None:  # a tuple: truthy even when no host is wanted
            if n is not None:
                active = self.active_hosts()
                return ([h.pid for h in active],) if len(active) == n else None
            pids = self.supervisor.expected_pids
            if all_connected(self.status(), pids):
                return ([p for p in pids if p is not None],)
            return None

        what = f"{n} active hosts" if n is not None else "every slot's host connected"
        return poll(ready, timeout_s, f"{what} ({self.host_pids})", 0.02)[0]
