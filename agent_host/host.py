"""One agent-host process: its stream to the orchestrator, heartbeats, reconnects and drain.

    host = AgentHost(HostConfig(address="127.0.0.1:50051"), handlers.load(["my.handlers"]))
    await host.run()   # until drained: host.drain() (SIGTERM at the entry point) ends it

The connection's lifecycle is one state (agent_host/lifecycle.py: NEW, CONNECTING, CONNECTED,
BACKOFF, DRAINING, DRAINED, STOPPED) whose edges are checked against one table. Per session
three loops run under one supervisor (`_run_session`), which waits on them with FIRST_COMPLETED
and cancels the rest: the reader applies assignments and cancels, the writer sends whatever the
outbox gathered since its last write (and, once a drain is asked for, runs the drain sequence,
`_drain`), the beat loop marks a heartbeat due. A broken stream starts a new session after a
backoff; its hello lists the attempts still running, and the orchestrator cancels those it has
fenced off.

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
from dataclasses import dataclass, field
from typing import Any

import grpc
import psutil
from swarm.agent_host.executor import Executor, Job
from swarm.agent_host.handlers import HandlerSet, run_shutdown
from swarm.agent_host.lifecycle import Conn, Lifecycle
from swarm.agent_host.outbox import Outbox
from swarm.common.grpc_options import CHANNEL_OPTIONS
from swarm.v1 import host_pb2, host_pb2_grpc

log = logging.getLogger("swarm.agent_host")

BACKOFF_MIN_S = 0.05
HANDLER_EXIT_WAIT_S = 5.0  # on exit, cancelled handlers get this long to run their `finally`
SERVER_END_WAIT_S = 5.0  # after our goodbye, the orchestrator ends the call within this


@dataclass(frozen=True, slots=True)
class HostConfig:
    address: str
    host_id: str = ""  # default: hostname-pid
    agents: int = 500  # the pool starts (and shrinks back to) this size
    max_agents: int = 0  # the pool grows to this under queued work; 0: same as agents
    drain_grace_s: float = 10.0
    threads: int = 32  # for plain-def handlers
    reconnect_max_s: float = 2.0
    idle_ttl_s: float = 30.0

    def __post_init__(self) -> None:
        if self.agents < 1:
            raise ValueError("agents must be >= 1")
        if self.max_agents and self.max_agents < self.agents:
            raise ValueError("max_agents must be >= agents")
        if self.drain_grace_s < 0:
            raise ValueError("drain_grace_s must be >= 0")


def jobs_from_pb(batch: host_pb2.AssignBatch) -> list[Job]:
    jobs: list[Job] = []
    append = jobs.append
    for a in batch.tasks:
        job = Job(a.task_id, a.attempt, a.kind, a.payload, a.timeout_s)
        job.report_start = a.report_start
        if a.deps:
            job.deps = [(d.task_id, d.output) for d in a.deps]
        if a.labels:
            job.labels = dict(a.labels)
        append(job)
    return jobs


@dataclass
class _Session:
    call: Any
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    beat_due: bool = True
    loops: list[asyncio.Task[None]] = field(default_factory=list)
    said_goodbye: bool = False  # our end of stream is written: the server ends the call next


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
        self._session: _Session | None = None
        self._session_task: asyncio.Task[None] | None = None
        self._leaving = asyncio.Event()  # cuts a reconnect backoff short (stop or drain)
        self._last_assign_seq = 0
        self.lag_ms = 0.0
        self._proc = psutil.Process()

    @property
    def state(self) -> Conn:
        return self.life.state

    def _wake(self) -> None:
        if self._session is not None:
            self._session.wake.set()

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
        backoff = BACKOFF_MIN_S
        async with grpc.aio.insecure_channel(c.address, options=CHANNEL_OPTIONS) as channel:
            stub = host_pb2_grpc.HostServiceStub(channel)
            while not self.life.stopped:
                self.life.to(Conn.CONNECTING)
                try:
                    await self._one_session(stub)
                    if self.life.state is Conn.DRAINED:
                        return  # drained and said goodbye
                    backoff = BACKOFF_MIN_S
                except grpc.aio.AioRpcError as exc:
                    log.warning(
                        "host %s: stream to %s failed: %s", self.host_id, c.address, exc.code().name
                    )
                except Exception:
                    # A bug in one session must not take the agents' work down with it.
                    log.exception("host %s: session failed; reconnecting", self.host_id)
                if self.life.stopped:
                    return
                if self.drain_grace is not None:
                    # No orchestrator to hand work back to or report to: it requeues what
                    # this host held when it sees the loss, so leaving now loses nothing.
                    log.warning("host %s: draining without an orchestrator; leaving", self.host_id)
                    return
                self.life.to(Conn.BACKOFF)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._leaving.wait(), backoff)
                backoff = min(backoff * 2, c.reconnect_max_s)

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
        for t in (*(self._session.loops if self._session else ()), self._session_task):
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
                running=[
                    host_pb2.Attempt(task_id=j.key, attempt=j.attempt) for j in ex.running_jobs()
                ],
            )
            self.outbox.reset()
            self._last_assign_seq = 0
            await call.write(host_pb2.HostMessage(hello=hello))
            first = await call.read()
            if first is grpc.aio.EOF or first.WhichOneof("msg") != "welcome":
                raise ConnectionError("the orchestrator did not welcome this host")
            self.heartbeat_interval_s = first.welcome.heartbeat_interval_s or 0.5
            self.life.to(Conn.CONNECTED)
            session = self._session = _Session(call)
            log.info(
                "host %s connected (session %d, %d agents)",
                self.host_id,
                self.sessions,
                ex.capacity,
            )
            session.loops = loops = [
                asyncio.create_task(self._read(call), name="host-read"),
                asyncio.create_task(self._write(session), name="host-write"),
                asyncio.create_task(self._beat(session), name="host-beat"),
            ]
            try:
                done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                if session.said_goodbye and not loops[1].done():
                    # The reader saw the server end the call first: the writer sees it next.
                    await loops[1]
            finally:
                self._session = None
                for t in loops:
                    t.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
        finally:
            call.cancel()

    async def _read(self, call: Any) -> None:
        ex = self.executor
        assert ex is not None
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                return
            which = msg.WhichOneof("msg")
            if which == "assign":
                jobs = jobs_from_pb(msg.assign)
                self._last_assign_seq = msg.assign.seq
                if self.drain_grace is None:
                    ex.submit(jobs)
                else:
                    self.outbox.returned.extend((j.key, j.attempt) for j in jobs)
                    self._wake()
            elif which == "cancel":
                ex.cancel([(a.task_id, a.attempt) for a in msg.cancel.attempts])
            elif which == "drain":
                self.drain(msg.drain.grace_s)

    async def _write(self, session: _Session) -> None:
        """Send what the outbox gathered whenever woken; once a drain is asked for, the drain
        sequence takes the stream over (one writer: a gRPC stream takes one write at a time)."""
        while self.drain_grace is None:
            await session.wake.wait()
            session.wake.clear()
            if self.drain_grace is None:
                await self._flush(session)
        await self._drain(session)

    async def _flush(self, session: _Session) -> None:
        call, outbox, ex = session.call, self.outbox, self.executor
        assert ex is not None
        beat = None
        if session.beat_due or outbox.capacity_changed:
            session.beat_due = outbox.capacity_changed = False
            # Snapshot first: every result finished before it is in the batch written next,
            # ahead of the heartbeat, so reconciliation never mistakes one for lost.
            beat = self._heartbeat()
        announced = ex.take_announcing()
        started = outbox.take_started(ex.unreported_starts() if beat is not None else [])
        for msg in (outbox.take_results(), started, outbox.take_returned(), beat):
            if msg is not None:
                await call.write(msg)
        if announced:
            ex.run_announced(announced)

    async def _drain(self, session: _Session) -> None:
        """The drain sequence, in this order:
        1. stop taking work (the reader hands back assignments that still arrive);
        2. tell the orchestrator `draining`, so that it assigns nothing more here;
        3. hand back the queue that has not started;
        4. let what runs finish within the grace period, sending results as they come;
        5. past the grace period, hand back what still runs and cancel it;
        6. flush the last results and hand-backs;
        7. half-close the stream: our goodbye;
        8. wait for the server to end the call (it has seen everything then): DRAINED.
        """
        call, outbox, ex = session.call, self.outbox, self.executor
        grace = self.drain_grace
        assert ex is not None and grace is not None
        loop = asyncio.get_running_loop()
        self.life.to(Conn.DRAINING)
        ex.accepting = False  # 1
        await call.write(host_pb2.HostMessage(draining=host_pb2.Draining(grace_s=grace)))  # 2
        outbox.returned.extend((j.key, j.attempt) for j in ex.take_queue())  # 3
        log.info("host %s draining: %d running, grace %.1f s", self.host_id, ex.busy, grace)
        deadline = loop.time() + grace
        timer = loop.call_at(deadline, session.wake.set)
        try:
            while True:  # 4
                await self._flush(session)
                if not ex.busy or loop.time() >= deadline:
                    break
                await session.wake.wait()
                session.wake.clear()
        finally:
            timer.cancel()
        if ex.busy:  # 5: to run elsewhere
            outbox.returned.extend((j.key, j.attempt) for j in ex.running_jobs())
            ex.cancel_running()
        await self._flush(session)  # 6
        session.said_goodbye = True
        await call.done_writing()  # 7
        await asyncio.wait_for(call.code(), SERVER_END_WAIT_S)  # 8
        self.life.to(Conn.DRAINED)

    async def _beat(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        self._proc.cpu_percent(None)
        while True:
            interval = self.heartbeat_interval_s
            t0 = loop.time()
            await asyncio.sleep(interval)
            self.lag_ms = max(0.0, (loop.time() - t0 - interval) * 1000.0)
            ex = self.executor
            if ex is not None and ex.maybe_shrink(loop.time()):
                self.outbox.capacity_changed = True
            session.beat_due = True
            session.wake.set()

    def _heartbeat(self) -> host_pb2.HostMessage:
        ex = self.executor
        assert ex is not None
        with self._proc.oneshot():
            cpu = self._proc.cpu_percent(None)
            rss = self._proc.memory_info().rss
        hb = host_pb2.Heartbeat(
            running=ex.busy,
            free=len(ex.idle),
            local_queue=len(ex.queue),
            capacity=ex.capacity,
            loop_lag_ms=self.lag_ms,
            cpu_percent=cpu,
            rss_bytes=rss,
            tasks_done=ex.done,
            last_assign_seq=self._last_assign_seq,
        )
        add = hb.held.add
        for job in ex.running.values():
            if not job.cancelled:
                add(task_id=job.key, attempt=job.attempt)
        for job in (*ex.queue, *ex.announcing):
            add(task_id=job.key, attempt=job.attempt)
        return host_pb2.HostMessage(heartbeat=hb)
