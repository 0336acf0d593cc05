"""The supervisor of a local swarm: one orchestrator process and N agent-host processes.

    sup = Supervisor(SwarmSpec(hosts=2, port=0))
    code = await sup.run(on_ready=print_address)   # returns once stopped; sup.stop() drains

One coroutine, `run`, owns everything: it starts the orchestrator, keeps one task per host slot
(each restarts its host with backoff when it dies), waits for stop, and shuts down in this order:

1. SIGTERM to every host: each stops taking work, finishes what runs within its grace period,
   hands back the rest and leaves (the orchestrator is still there to take it back);
2. SIGKILL to any host still alive after the grace period (plus a margin);
3. SIGTERM to the orchestrator, SIGKILL if it has not left within a few seconds.

`kill()` skips the order and SIGKILLs everything (a second Ctrl-C). `add_host()` opens one more
slot while it runs (a test's host with other arguments, or inside a network namespace); it is
supervised and reaped like the others. The synchronous face for scripts, benchmarks and tests
is `LocalSwarm` in `local.py`: they all run this one supervisor, the one `swarm up` runs.

Run it on the stdlib asyncio loop, not uvloop: the supervisor's work is a few events a minute,
and stdlib spawns children with vfork/exec, while libuv always forks, running gRPC's fork
handlers (and their warnings) in every process that has a channel open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from swarm.common.backoff import Backoff
from swarm.common.credentials import Credentials
from swarm.deploy.procs import Wrap, read_port, restart_backoff, send, spawn
from swarm.deploy.spec import PHASE_EDGES, Phase, SwarmSpec, all_connected
from swarm.v1 import task_pb2, task_pb2_grpc

log = logging.getLogger("swarm.deploy.supervisor")

STOP_MARGIN_S = 3.0  # beyond the drain grace, before stragglers are killed
ORCHESTRATOR_STOP_S = 5.0  # its own stop takes about a second
ORPHANED_HOSTS_S = 1.0  # how long hosts get to leave once the orchestrator is already gone
POLL_S = 0.02  # how often start-up polls the port file and the host list


_WILDCARD = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}


class SupervisorError(RuntimeError):
    """The swarm could not start or lost its orchestrator."""


@dataclass(slots=True)
class HostSlot:
    """One host position: the process in it changes on every restart, the slot does not."""

    index: int
    backoff: Backoff = field(default_factory=restart_backoff)
    host_id: str | None = None  # the base of its --host-id; None: as the spec's policy says
    extra_args: tuple[str, ...] = ()  # after the spec's host_args (argparse: the last one wins)
    wrap: Wrap | None = None
    proc: asyncio.subprocess.Process | None = None
    started_at: float | None = None
    restarts: int = 0
    last_exit: int | None = None
    exits: dict[int, int] = field(default_factory=dict)  # pid -> exit code, of every process
    retired: bool = False  # once its process exits, the slot stays empty (no restart)
    spawned: asyncio.Event = field(default_factory=asyncio.Event)  # its first process started

    @property
    def pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None and proc.returncode is None else None


class Supervisor:
    def __init__(
        self,
        spec: SwarmSpec,
        *,
        log_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        credentials: Credentials | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.log_dir = log_dir  # None: children write to this process's stderr
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        # What the status channel presents; None: what `env` gives a client (SWARM_*).
        self.credentials = credentials
        self.clock = clock
        self.phase = Phase.STARTING
        self.orchestrator: asyncio.subprocess.Process | None = None
        self.slots = [self._slot(i) for i in range(spec.hosts)]
        self.port = 0
        self.orchestrator_restarts = 0
        self._port_file: Path | None = None
        self.failure: str | None = None  # why it stopped on its own; None after a requested stop
        self._stop = asyncio.Event()
        self._keepers: list[asyncio.Task[None]] = []
        self._tasks: asyncio.TaskGroup | None = None  # run()'s, while it runs

    def _slot(
        self,
        index: int,
        host_id: str | None = None,
        extra_args: tuple[str, ...] = (),
        wrap: Wrap | None = None,
    ) -> HostSlot:
        s = self.spec
        backoff = restart_backoff(s.restart_delay_s, s.restart_max_delay_s)
        return HostSlot(index, backoff, host_id, extra_args, wrap)

    @property
    def address(self) -> str:
        # A wildcard bind is reachable on loopback, which is where our hosts connect.
        host = _WILDCARD.get(self.spec.bind, self.spec.bind)
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{self.port}"

    @property
    def host_pids(self) -> list[int | None]:
        """The pid in each slot now: None while a host waits for its restart, or is retired."""
        return [s.pid for s in self.slots]

    @property
    def expected_pids(self) -> list[int | None]:
        """The pids that should be connected hosts: every slot's but the retired ones."""
        return [s.pid for s in self.slots if not s.retired]

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _move(self, to: Phase) -> None:
        if to not in PHASE_EDGES[self.phase]:
            raise RuntimeError(f"supervisor cannot go from {self.phase.name} to {to.name}")
        self.phase = to

    # ---- requests (call them on the supervisor's loop) ----

    def stop(self) -> None:
        """Begin the ordered shutdown; `run` returns once it is done. Idempotent."""
        self._stop.set()

    def kill(self) -> None:
        """SIGKILL every child now, for a second Ctrl-C or a test that must not wait."""
        if self.phase in (Phase.KILLING, Phase.STOPPED):
            return
        self._move(Phase.KILLING)
        self._stop.set()
        for proc in (*(s.proc for s in self.slots), self.orchestrator):
            send(proc, signal.SIGKILL)

    def signal_host(
        self, index: int, sig: signal.Signals = signal.SIGKILL, *, restart: bool = True
    ) -> int | None:
        """Signal the host in slot `index`; the pid signalled, or None when none runs there.

        With restart=False the slot is retired: once that process exits it stays empty
        (SIGTERM then drains one host for good, as a scale-down would).
        """
        slot = self.slots[index]
        if not restart:
            slot.retired = True
        proc = slot.proc
        return proc.pid if proc is not None and send(proc, sig) else None

    async def add_host(
        self,
        extra_args: Sequence[str] = (),
        *,
        host_id: str | None = None,
        wrap: Wrap | None = None,
    ) -> HostSlot:
        """Open one more slot and start its host; returns once that process is spawned.

        Call it on the supervisor's loop (it spawns, and spawning ties the child to this
        thread). The slot is restarted, stopped and reaped like those of the spec.
        """
        if self._tasks is None or self.stopping:
            raise SupervisorError("hosts can be added only while the swarm runs")
        slot = self._slot(len(self.slots), host_id, tuple(extra_args), wrap)
        self.slots.append(slot)
        keeper = self._tasks.create_task(self._keep_host(slot), name=f"host-slot-{slot.index}")
        self._keepers.append(keeper)
        spawned = asyncio.ensure_future(slot.spawned.wait())
        await asyncio.wait([spawned, keeper], return_when=asyncio.FIRST_COMPLETED)
        spawned.cancel()
        if not slot.spawned.is_set():
            raise SupervisorError(f"host slot {slot.index} ended before it started")
        return slot

    # ---- the supervisor ----

    async def run(self, on_ready: Callable[[Supervisor], None] | None = None) -> int:
        """Start, call `on_ready` once every host has connected, supervise until stopped.

        Returns 0 after a requested stop, 1 when the swarm failed to start or lost its
        orchestrator (`self.failure` says why). Nothing is left running when it returns.
        """
        tmp = Path(tempfile.mkdtemp(prefix="swarm-up-"))
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = tg
                try:
                    await self._start_orchestrator(tmp / "port")
                    tg.create_task(self._watch_orchestrator(), name="watch-orchestrator")
                    self._keepers = [
                        tg.create_task(self._keep_host(s), name=f"host-slot-{s.index}")
                        for s in self.slots
                    ]
                    if await self._wait_ready():
                        self._move(Phase.RUNNING)
                        if on_ready is not None:
                            on_ready(self)
                        await self._stop.wait()
                except (SupervisorError, OSError) as exc:
                    self.failure = str(exc)
                finally:
                    await self._shutdown()
                    self._tasks = None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if self.failure is not None:
            log.error("local swarm stopped: %s", self.failure)
        return 0 if self.failure is None else 1

    def _args(self, level: str | None, *args: str) -> list[str]:
        spec = self.spec
        return [*args, "--log-level", level or spec.log_level, "--log-format", spec.log_format]

    def _log(self, name: str) -> Path | None:
        return None if self.log_dir is None else self.log_dir / f"{name}.log"

    async def _start_orchestrator(self, port_file: Path) -> None:
        s = self.spec
        self._port_file = port_file
        await asyncio.to_thread(port_file.unlink, missing_ok=True)  # a restart: the new one
        # A restart takes the port of the first start: hosts and clients reconnect to it.
        listen_port = self.port or s.port
        args = self._args(
            s.orchestrator_log_level,
            *("--bind", s.bind, "--port", str(listen_port), "--port-file", str(port_file)),
            *s.server_args,
        )
        proc = self.orchestrator = await spawn(
            "swarm.server", args, env=self.env, log=self._log("orchestrator"), quiet_stdout=True
        )
        deadline = self.clock() + s.ready_timeout_s
        while not self.stopping:
            port = await asyncio.to_thread(read_port, port_file)
            if port:
                self.port = port
                return
            if proc.returncode is not None:
                raise SupervisorError(
                    f"the orchestrator exited with {proc.returncode} before listening on "
                    f"{s.bind}:{s.port} (is the port in use?)"
                )
            if self.clock() > deadline:
                raise SupervisorError(
                    f"the orchestrator did not listen within {s.ready_timeout_s} s"
                )
            await self._pause(POLL_S)

    async def _watch_orchestrator(self) -> None:
        """Restart a dead orchestrator with backoff on the same port (spec.restart_orchestrator,
        with a journal), else end the swarm loudly: one without a journal would come back
        having forgotten every task. Exit code 2 (bad flags, an unreadable journal) is never
        restarted: it would fail the same way again."""
        s = self.spec
        backoff = restart_backoff(s.restart_delay_s, s.restart_max_delay_s)
        while True:
            proc, started = self.orchestrator, self.clock()
            assert proc is not None and self._port_file is not None
            code = await proc.wait()
            if self.stopping:
                return
            if not s.restart_orchestrator or code == 2:
                self.failure = f"the orchestrator exited unexpectedly with {code}"
                self._stop.set()
                return
            delay = backoff.next(self.clock() - started)
            self.orchestrator_restarts += 1
            log.warning(
                "the orchestrator (pid %d) exited with %d; restart %d in %.1f s on port %d",
                proc.pid,
                code,
                self.orchestrator_restarts,
                delay,
                self.port,
            )
            await self._pause(delay)
            if self.stopping:
                return
            try:
                await self._start_orchestrator(self._port_file)
            except (SupervisorError, OSError) as exc:
                self.failure = str(exc)
                self._stop.set()
                return

    def _host_args(self, slot: HostSlot) -> list[str]:
        s = self.spec
        host_id = s.host_id(slot.index, slot.host_id, slot.restarts)
        return self._args(
            s.host_log_level,
            *("--connect", self.address, "--agents", str(s.agents_per_host)),
            *("--drain-grace", str(s.drain_grace_s)),
            *(("--host-id", host_id) if host_id is not None else ()),
            *(("--max-agents", str(s.max_agents)) if s.max_agents else ()),
            *(a for m in s.modules for a in ("--module", m)),
            *(("--unsafe-test-kinds",) if s.test_kinds else ()),
            *s.host_args,
            *slot.extra_args,
        )

    async def _keep_host(self, slot: HostSlot) -> None:
        while not self.stopping and not slot.retired:
            try:
                proc = await spawn(
                    "swarm.agent_host",
                    self._host_args(slot),
                    env=self.env,
                    log=self._log(f"host{slot.index}"),
                    wrap=slot.wrap,
                )
            except OSError as exc:  # fds or memory exhausted: as good as a crash at start
                log.warning("host slot %d: cannot start: %s", slot.index, exc)
                await self._pause(slot.backoff.next(0.0))
                continue
            slot.proc, slot.started_at = proc, self.clock()
            slot.spawned.set()
            if self.stopping:  # stop() came while it was being spawned
                send(proc, signal.SIGKILL if self.phase is Phase.KILLING else signal.SIGTERM)
            slot.last_exit = slot.exits[proc.pid] = await proc.wait()
            if not self.spec.restart:
                slot.retired = True  # a swarm without restarts: the slot stays empty
            if self.stopping or slot.retired:
                return
            delay = slot.backoff.next(self.clock() - slot.started_at)
            slot.restarts += 1
            log.warning(
                "host %d (pid %d) exited with %d; restart %d in %.1f s",
                slot.index,
                proc.pid,
                slot.last_exit,
                slot.restarts,
                delay,
            )
            await self._pause(delay)

    async def _wait_ready(self) -> bool:
        """Poll GetStatus until every slot's process is an ACTIVE host; False if stopped first."""
        deadline = self.clock() + self.spec.ready_timeout_s
        creds = self.credentials or Credentials.resolve(env=self.env)
        async with creds.aio_channel(self.address) as channel:
            stub = creds.bind(task_pb2_grpc.TaskServiceStub(channel))
            while not self.stopping:
                try:
                    status = await stub.GetStatus(task_pb2.GetStatusRequest(), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    log.debug("GetStatus: %s", exc.code().name)
                else:
                    if all_connected(status, self.expected_pids):
                        return True
                if self.clock() > deadline:
                    raise SupervisorError(
                        f"{len(self.slots)} hosts did not all connect within "
                        f"{self.spec.ready_timeout_s} s: {self.host_pids}"
                    )
                await self._pause(POLL_S)
        return False

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _shutdown(self) -> None:
        self._stop.set()
        if self.phase is not Phase.KILLING:
            self._move(Phase.DRAINING)
        for slot in self.slots:
            send(slot.proc, signal.SIGTERM)
        orch = self.orchestrator
        # Without an orchestrator there is nothing to finish work for, or to hand it back to.
        wait_s = (
            self.spec.drain_grace_s + STOP_MARGIN_S
            if orch is not None and orch.returncode is None
            else ORPHANED_HOSTS_S
        )
        if self._keepers:
            _, late = await asyncio.wait(self._keepers, timeout=wait_s)
            if late:
                log.warning("%d hosts did not drain in time; killing them", len(late))
                for slot in self.slots:
                    send(slot.proc, signal.SIGKILL)
                await asyncio.wait(late)
        if orch is not None:
            send(orch, signal.SIGTERM)
            try:
                await asyncio.wait_for(orch.wait(), ORCHESTRATOR_STOP_S)
            except TimeoutError:
                send(orch, signal.SIGKILL)
                await orch.wait()
        self._move(Phase.STOPPED)
