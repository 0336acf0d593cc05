"""`InProcessSwarm`: an orchestrator and agent hosts inside the calling process, over real gRPC.

    from swarm.deploy.inproc import InProcessSwarm

    with InProcessSwarm(hosts=2, agents_per_host=50, modules=["my.handlers"]) as swarm:
        run_workload(swarm.address)             # 127.0.0.1, a port bound as 0
        i = swarm.add_host(agents=10, host_id="small")
        swarm.drain_host(i)                     # drain it and wait until it has left
    # here every host has stopped, the server is closed and the loop is gone

The rung between the no-I/O core tests and the process harness (`LocalSwarm`): the same
`Server` and `AgentHost` code on the same wire, without the process start-ups (it starts in
tens of milliseconds). What needs a process of its own stays on `LocalSwarm`: killing, freezing
(SIGSTOP) or cutting off a host, signals, a handler that ends its process (so in-process hosts
never serve the harmful built-in kinds, `crash` and `burn`: `handlers.load` leaves them out
unless asked, and nothing here asks).

Everything runs on one event loop in a thread of its own, so sync tests, the sync `Client`
(its own loop thread) and async tests (their own loop; `async with` only moves the blocking
start and stop off it) reach it the same way, over gRPC. grpc.aio serves several loops in one
process: its poller thread hands each completion to the loop that made the call, uvloop or
not (tests/test_inproc.py runs the SDK's loops beside this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from swarm.agent_host import handlers
from swarm.agent_host.host import AgentHost, HostConfig
from swarm.agent_host.lifecycle import Conn
from swarm.common.credentials import Credentials
from swarm.common.runtime import run
from swarm.deploy.view import OrchestratorView
from swarm.server.app import Server
from swarm.server.config import OrchestratorConfig
from swarm.server.journal_base import JournalBackend
from swarm.server.security import ServerSecurity
from swarm.v1 import task_pb2

T = TypeVar("T")


async def _cancel_the_rest() -> None:
    """Cancel what is left on the loop (a handler's own tasks, say), in rounds: a task may
    start another as it ends. asyncio.run cancels only one round and then closes the loop."""
    me = asyncio.current_task()
    for _ in range(10):
        rest = [t for t in asyncio.all_tasks() if t is not me]
        if not rest:
            return
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)


class InProcessSwarm(OrchestratorView):
    def __init__(
        self,
        hosts: int = 2,
        agents_per_host: int = 100,
        *,
        max_agents: int = 0,
        modules: Sequence[str] = (),
        config: OrchestratorConfig | None = None,
        drain_grace_s: float = 5.0,
        ready_timeout_s: float = 10.0,
        security: ServerSecurity | None = None,
        host_credentials: Credentials | None = None,
        credentials: Credentials | None = None,
        metrics_port: int | None = None,
        journal: JournalBackend | None = None,
    ) -> None:
        self.config = config or OrchestratorConfig()
        self.metrics_port = metrics_port  # the HTTP port (metrics, dashboard); None: off
        self.journal = journal  # the orchestrator's (server/journal_base.py); None: in memory
        # TLS and tokens: the server's, what its hosts present, what this harness's own
        # status channel presents (an admin token when authentication is on).
        self.security = security
        self.host_credentials = host_credentials
        self.credentials = credentials
        self.n_hosts = hosts
        self.agents_per_host = agents_per_host
        self.max_agents = max_agents
        self.modules = tuple(modules)
        self.drain_grace_s = drain_grace_s
        self.ready_timeout_s = ready_timeout_s
        self.server: Server | None = None
        # Slot i holds host h{i} (unless renamed); a drained host keeps its slot.
        self.hosts: list[AgentHost] = []
        self._runs: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._up = threading.Event()
        self._quit: asyncio.Event | None = None
        self._error: BaseException | None = None

    # ---- what callers read ----

    @classmethod
    def secured(
        cls, home: str | Path, hosts: int = 2, agents_per_host: int = 100, **options: Any
    ) -> InProcessSwarm:
        """TLS and tokens from a state directory (`swarm certs init`): the server's certificate
        and token file, the host join token for its hosts, the admin token for its own status
        channel, as `swarm up --state-dir` uses them."""
        return cls(
            hosts,
            agents_per_host,
            security=ServerSecurity.resolve(home=str(home), env={}),
            host_credentials=Credentials.resolve(home=Path(home), role="host", env={}),
            credentials=Credentials.resolve(home=Path(home), env={}),
            **options,
        )

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """The HTTP port's base URL ("http://127.0.0.1:PORT/"); needs metrics_port set."""
        observe = self.server.observe if self.server is not None else None
        if observe is None:
            raise RuntimeError("this swarm runs without an HTTP port: pass metrics_port=0")
        return observe.url

    def wait_hosts(self, n: int, timeout_s: float = 10.0) -> list[task_pb2.HostStatus]:
        """Poll GetStatus until exactly n hosts are ACTIVE; those hosts."""
        deadline = time.monotonic() + timeout_s
        while True:
            hosts = self.active_hosts()
            if len(hosts) == n:
                return hosts
            if time.monotonic() > deadline:
                raise TimeoutError(f"not {n} active hosts within {timeout_s} s: {len(hosts)}")
            time.sleep(0.005)

    # ---- life ----

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("an InProcessSwarm starts once")
        self._thread = threading.Thread(target=self._main, name="swarm-inproc", daemon=True)
        self._thread.start()
        # Start-up has its own deadline inside the loop; the margin only covers a hung thread.
        if not self._up.wait(self.ready_timeout_s + 5.0) or self._error is not None:
            error = self._error
            with contextlib.suppress(RuntimeError):
                self.stop()
            raise RuntimeError(f"the in-process swarm did not start: {error!r}") from error

    def _main(self) -> None:
        try:
            run(self._serve())  # uvloop, as in the processes; it is fine in a thread
        except BaseException as exc:  # start() or stop() reports it; the thread just ends
            self._error = exc
        finally:
            self._up.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._quit = asyncio.Event()
        self.server = Server(
            self.config,
            bind="127.0.0.1",
            port=0,
            security=self.security,
            metrics_port=self.metrics_port,
            journal=self.journal,
        )
        try:
            await self.server.start()
            async with asyncio.timeout(self.ready_timeout_s):
                for _ in range(self.n_hosts):
                    await self._add_host({}, None, wait=False)
                await asyncio.gather(*(h.life.wait_for(Conn.CONNECTED) for h in self.hosts))
            self._up.set()
            await self._quit.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        for host in self.hosts:
            host.stop()
        if self._runs:
            # stop() ends a host's run() at its next await; cancelling is only the backstop.
            _, pending = await asyncio.wait(self._runs, timeout=5.0)
            for task in pending:
                task.cancel()
        results = await asyncio.gather(*self._runs, return_exceptions=True)
        if self.server is not None:
            await self.server.stop(0.5)
        await _cancel_the_rest()
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"{len(failed)} in-process host(s) failed") from failed[0]

    def _call(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run `coro` on the swarm's loop and wait for its result here."""
        loop = self._loop
        if loop is None or self._thread is None or not self._thread.is_alive():
            coro.close()
            raise RuntimeError("the in-process swarm is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout_s)

    def stop(self) -> None:
        """Stop every host (no drain), close the server and the channel, end the loop."""
        loop, thread = self._loop, self._thread
        if loop is not None and self._quit is not None and thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed already: it has stopped
                loop.call_soon_threadsafe(self._quit.set)
        if thread is not None:
            thread.join(self.ready_timeout_s + 10.0)
            if thread.is_alive():
                raise RuntimeError("the in-process swarm did not stop")
        self.close_channel()
        error, self._error = self._error, None
        if error is not None:
            raise RuntimeError("the in-process swarm failed") from error

    def __enter__(self) -> InProcessSwarm:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        # A failing body's own error is the one to see; a host's failure is reported otherwise.
        with contextlib.suppress(*(() if et is None else (RuntimeError,))):
            self.stop()

    async def __aenter__(self) -> InProcessSwarm:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.__exit__, et, e, tb)

    # ---- hosts ----

    def add_host(
        self, *, modules: Sequence[str] | None = None, wait: bool = True, **overrides: Any
    ) -> int:
        """Start one more host; its slot index. `overrides` are HostConfig fields (agents,
        max_agents, host_id, drain_grace_s, idle_ttl_s, ...); modules are added to the swarm's.
        With wait=True (the default) it returns once the orchestrator has welcomed the host."""
        return self._call(self._add_host(overrides, modules, wait), self.ready_timeout_s + 1.0)

    async def _add_host(
        self, overrides: dict[str, Any], modules: Sequence[str] | None, wait: bool
    ) -> int:
        index = len(self.hosts)
        settings: dict[str, Any] = {
            "agents": self.agents_per_host,
            "max_agents": self.max_agents,
            "host_id": f"h{index}",
            "drain_grace_s": self.drain_grace_s,
            "credentials": self.host_credentials,
        }
        config = dataclasses.replace(HostConfig(address=self.address), **{**settings, **overrides})
        # A fresh HandlerSet per host: handlers are collected from the modules, not from a
        # process-wide registry, so hosts in one process never see each other's.
        handler_set = handlers.load([*self.modules, *(modules or ())])
        host = AgentHost(config, handler_set)
        self.hosts.append(host)
        self._runs.append(asyncio.create_task(host.run(), name=f"host-{config.host_id}"))
        if wait:
            async with asyncio.timeout(self.ready_timeout_s):
                await host.life.wait_for(Conn.CONNECTED)
        return index

    def drain_host(self, index: int, grace_s: float | None = None, timeout_s: float = 30.0) -> None:
        """Drain the host in slot `index` (as SIGTERM would) and wait until it has left."""

        async def drain() -> None:
            self.hosts[index].drain(grace_s)
            await asyncio.shield(self._runs[index])

        self._call(drain(), timeout_s)
