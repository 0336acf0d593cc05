"""One agent-host process: its stream to the orchestrator, heartbeats, reconnects and drain.

    host = AgentHost(HostConfig(address="127.0.0.1:50051"), handlers.load(["my.handlers"]))
    await host.run()   # until drained: host.drain() (SIGTERM at the entry point) ends it

The connection's lifecycle is one state (agent_host/lifecycle.py: NEW, CONNECTING, CONNECTED,
BACKOFF, DRAINING, DRAINED, STOPPED) whose edges are checked against one table. After the
hello, a session is an agent_host/stream.py `Stream`: three loops under one supervisor, and the
drain sequence. A broken stream starts a new session after a backoff; its hello lists the
attempts still running, and the orchestrator cancels those it has fenced off (after its own
restart, it adopts those it can instead: their results go on the new session).

Exit (`run()` returning, or raising): the handlers are cancelled and awaited for at most
HANDLER_EXIT_WAIT_S, so their `finally` blocks run; then the @on_shutdown hooks run with the
resources the @on_startup hooks filled, also when the host stops on an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import grpc
import psutil
from swarm.agent_host.executor import Executor
from swarm.agent_host.handlers import HandlerSet, run_shutdown
from swarm.agent_host.lifecycle import Conn, Lifecycle
from swarm.agent_host.outbox import Outbox
from swarm.agent_host.stream import Stream
from swarm.common.backoff import (
    RECONNECT_INITIAL_S,
    RECONNECT_MAX_ALLOWED_S,
    RECONNECT_MAX_S,
    RECONNECT_STABLE_S,
    Backoff,
)
from swarm.common.credentials import Credentials
from swarm.common.grpc_options import CHANNEL_OPTIONS
from swarm.v1 import host_pb2, host_pb2_grpc

log = logging.getLogger("swarm.agent_host")

HANDLER_EXIT_WAIT_S = 5.0  # on exit, cancelled handlers get this long to run their `finally`


@dataclass(frozen=True, slots=True)
class HostConfig:
    address: str
    host_id: str = ""  # default: hostname-pid
    agents: int = 500  # the pool starts (and shrinks back to) this size
    max_agents: int = 0  # the pool grows to this under queued work; 0: same as agents
    drain_grace_s: float = 10.0
    threads: int = 32  # for plain-def handlers
    reconnect_max_s: float = RECONNECT_MAX_S  # jittered exponential backoff up to this
    idle_ttl_s: float = 30.0
    credentials: Credentials | None = None  # CA to trust, join token or host certificate
    # Ask for the column form of assignments and results (host.proto); False: rows only, as a
    # host that does not know the column form (tests use it to keep that form working).
    columns: bool = True

    def __post_init__(self) -> None:
        if self.agents < 1:
            raise ValueError("agents must be >= 1")
        if self.max_agents and self.max_agents < self.agents:
            raise ValueError("max_agents must be >= agents")
        if self.drain_grace_s < 0:
            raise ValueError("drain_grace_s must be >= 0")
        if not RECONNECT_INITIAL_S <= self.reconnect_max_s <= RECONNECT_MAX_ALLOWED_S:
            raise ValueError(
                f"reconnect_max_s must be within {RECONNECT_INITIAL_S}..{RECONNECT_MAX_ALLOWED_S}"
            )


class AgentHost:
    def __init__(self, config: HostConfig, handlers: HandlerSet) -> None:
        self.config = config
        self.handlers = handlers
        self.host_id = config.host_id or f"{socket.gethostname()}-{os.getpid()}"
        self.outbox = Outbox(self._wake)
        self.executor: Executor | None = None
        self.heartbeat_interval_s = 0.5
        self.life = Lifecycle(f"host {self.host_id}")
        self.sessions = 0  # sessions opened so far: the next hello's session number
        self.drain_grace: float | None = None  # once a drain is asked for
        self._stream: Stream | None = None  # the open session's, while one runs
        self._session_task: asyncio.Task[None] | None = None
        self._connected_at: float | None = None  # loop time of this session's welcome
        self._leaving = asyncio.Event()  # cuts a reconnect backoff short (stop or drain)
        self.lag_ms = 0.0
        self.proc = psutil.Process()  # for the heartbeat's cpu and memory

    @property
    def state(self) -> Conn:
        return self.life.state

    def _wake(self) -> None:
        if self._stream is not None:
            self._stream.wake.set()

    # ---- life ----

    async def run(self) -> None:
        """Start up, keep a session open until a drain completes or stop() is called, then
        shut down in this order: handlers cancelled and awaited (bounded), shutdown hooks."""
        resources: dict[str, Any] = {}
        try:
            for hook in self.handlers.startup:
                await hook(resources)
            c = self.config
            self.executor = Executor(
                self.handlers,
                self.outbox,
                min_agents=c.agents,
                max_agents=c.max_agents or c.agents,
                resources=resources,
                threads=c.threads,
                idle_ttl_s=c.idle_ttl_s,
            )
            self.executor.accepting = self.drain_grace is None
            try:
                await self._connect_loop()
            finally:
                await self.executor.aclose(HANDLER_EXIT_WAIT_S)
        finally:
            if not self.life.stopped:
                self.life.to(Conn.STOPPED)
            await run_shutdown(self.handlers.shutdown, resources)

    async def _connect_loop(self) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        # A session that stayed up RECONNECT_STABLE_S was healthy: the next retry is quick again;
        # one that breaks right after its welcome (a flapping link) backs off like a refusal.
        backoff = Backoff(RECONNECT_INITIAL_S, c.reconnect_max_s, stable_s=RECONNECT_STABLE_S)
        creds = c.credentials or Credentials()  # none: loopback plaintext
        async with creds.aio_channel(c.address, CHANNEL_OPTIONS) as channel:
            stub = creds.bind(host_pb2_grpc.HostServiceStub(channel))
            while not self.life.stopped:
                self.life.to(Conn.CONNECTING)
                self._connected_at = None
                try:
                    await self._one_session(stub)
                    if self.life.state is Conn.DRAINED:
                        return  # drained and said goodbye
                except grpc.aio.AioRpcError as exc:
                    log.warning(
                        "host %s: stream to %s failed: %s",
                        *(self.host_id, c.address, exc.code().name),
                        extra={
                            "event": "host_stream_failed",
                            "host_id": self.host_id,
                            "address": c.address,
                            "code": exc.code().name,
                        },
                    )
                except Exception:
                    # A bug in one session must not take the agents' work down with it.
                    log.exception(
                        "host %s: session failed; reconnecting",
                        self.host_id,
                        extra={"event": "host_session_failed", "host_id": self.host_id},
                    )
                if self.life.stopped:
                    return
                if self.drain_grace is not None:
                    # No orchestrator to hand work back to or report to: it requeues what
                    # this host held when it sees the loss, so leaving now loses nothing.
                    log.warning(
                        "host %s: draining without an orchestrator; leaving",
                        self.host_id,
                        extra={"event": "host_left_alone", "host_id": self.host_id},
                    )
                    return
                self.life.to(Conn.BACKOFF)
                up = self._connected_at
                delay = backoff.next(0.0 if up is None else loop.time() - up)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._leaving.wait(), delay)

    async def _one_session(self, stub: host_pb2_grpc.HostServiceStub) -> None:
        """Run a session as a task of its own, so that stop() can cut it short anywhere."""
        task = self._session_task = asyncio.create_task(self._run_session(stub), name="session")
        try:
            await asyncio.wait({task})
        finally:
            self._session_task = None
            if not task.done():  # run() itself is being cancelled
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not task.cancelled():
            task.result()  # the session's error, if it failed

    def stop(self) -> None:
        """Leave now, without draining (a second Ctrl-C)."""
        if self.life.stopped:
            return
        self.life.to(Conn.STOPPED)
        self._leaving.set()
        # Cancelled here, at once, so that no session code runs on past STOPPED.
        for t in (*(self._stream.loops if self._stream else ()), self._session_task):
            if t is not None:
                t.cancel()

    def drain(self, grace_s: float | None = None) -> None:
        """Stop taking work, finish what runs within the grace period, hand back the rest, leave.
        Asked for in any state; the drain sequence runs once a session does (`_drain`)."""
        if self.drain_grace is None:
            self.drain_grace = self.config.drain_grace_s if grace_s is None else grace_s
            if self.executor is not None:
                self.executor.accepting = False
            self._leaving.set()  # not connected: stop waiting to reconnect
            self._wake()

    # ---- one session ----

    async def _run_session(self, stub: host_pb2_grpc.HostServiceStub) -> None:
        ex = self.executor
        assert ex is not None
        call = stub.Connect()
        try:
            self.sessions += 1
            hello = host_pb2.HostHello(
                host_id=self.host_id,
                pid=os.getpid(),
                hostname=socket.gethostname(),
                kinds=self.handlers.kinds,
                capacity=ex.capacity,
                max_capacity=ex.max_agents,
                session=self.sessions,
                columns=self.config.columns,
                running=[
                    host_pb2.Attempt(task_id=j.key, attempt=j.attempt) for j in ex.running_jobs()
                ],
            )
            self.outbox.reset()
            ex.drop_unstarted()  # fenced with the last session: they run elsewhere
            await call.write(host_pb2.HostMessage(hello=hello))
            first = await call.read()
            if first is grpc.aio.EOF or first.WhichOneof("msg") != "welcome":
                raise ConnectionError("the orchestrator did not welcome this host")
            self.heartbeat_interval_s = first.welcome.heartbeat_interval_s or 0.5
            self.outbox.use_columns(first.welcome.columns)
            self.life.to(Conn.CONNECTED)
            self._connected_at = asyncio.get_running_loop().time()
            stream = self._stream = Stream(self, call, ex)
            log.info(
                "host %s connected (session %d, %d agents)",
                *(self.host_id, self.sessions, ex.capacity),
                extra={
                    "event": "host_connected",
                    "host_id": self.host_id,
                    "session": self.sessions,
                    "agents": ex.capacity,
                },
            )
            try:
                await stream.run()
            finally:
                self._stream = None
        finally:
            call.cancel()
