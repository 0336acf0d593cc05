"""HostService.Connect: one bidirectional stream per agent-host session.

The handler reads the hello, registers the host with the core, then runs a reader (every
message refreshes the lease; heartbeats, started notices, results, hand-backs) beside a writer
that, whenever woken, sends everything queued for the host since its last write: batches grow
with load and no timer is involved.
"""

from __future__ import annotations

import logging

import grpc
from swarm.server import host_wire
from swarm.server.hosts import HostView
from swarm.server.model import HostState, Rejected
from swarm.server.orchestrator import Orchestrator
from swarm.server.rpc import fail, refuse
from swarm.server.session import StreamSession
from swarm.server.streams import StreamSlots, first_message
from swarm.server.tenancy import Authority
from swarm.v1 import host_pb2

log = logging.getLogger("swarm.server.hosts")

MAX_ASSIGN_BATCH = 4096


class HostSession(StreamSession):
    def __init__(
        self,
        orch: Orchestrator,
        host: HostView,
        context: grpc.aio.ServicerContext,
        columns: bool = False,
    ) -> None:
        super().__init__(context, f"host-{host.id}")
        self.orch = orch
        self.host = host
        self.columns = columns  # the host asked for the column form (hello.columns)

    async def read(self) -> None:
        """Apply every message from the host to the core; return on a clean end of stream."""
        orch, core, host, config = self.orch, self.orch.core, self.host, self.orch.config
        while True:
            msg = await self.context.read()
            if msg is grpc.aio.EOF:
                return
            if self.closed is not None:
                return  # fenced: nothing more from this session counts
            try:
                # Checked whole before any of it is applied: an invalid message ends the stream
                # with INVALID_ARGUMENT below, and the host is lost as for a broken stream.
                which = msg.WhichOneof("msg")
                if which == "results":
                    results = host_wire.results_from_pb(msg.results)
                elif which == "started" or which == "returned":
                    batch = msg.started if which == "started" else msg.returned
                    attempts = host_wire.attempts_from_pb(batch.attempts, f"{which}.attempts")
                elif which == "heartbeat":
                    load, held = host_wire.heartbeat_from_pb(msg.heartbeat, host, config)
                elif which == "draining":
                    grace = host_wire.grace_from_pb(msg.draining)
            except Rejected as exc:
                await refuse(self.context, exc)
            now = orch.now()
            core.host_message(host, now)
            if which == "results":
                core.on_results(host, results, now)
                if orch.observer is not None:  # one sampled task per batch (server/metrics.py)
                    orch.observer.results(host, now)
            elif which == "started":
                core.on_started(host, attempts, now)
            elif which == "heartbeat":
                hb = msg.heartbeat
                if held is not None:
                    core.reconcile(host, hb.last_assign_seq, held, now)
                core.heartbeat(host, hb.capacity or host.capacity, load, now)
            elif which == "returned":
                core.on_returned(host, attempts, now)
            elif which == "draining":
                core.draining(host, grace, now)
                log.info(
                    "host %s is draining (grace %.1f s)",
                    host.id,
                    grace,
                    extra={"event": "host_draining", "host_id": host.id, "grace_s": grace},
                )
            orch.flush()

    async def _write_attempts(self, field: str, attempts: list[tuple[str, int]]) -> None:
        """An AttemptBatch message (`cancel` or `started_ok`) per MAX_ASSIGN_BATCH attempts:
        bounded by count, and so by bytes (a key is at most ~1.5 KB)."""
        for start in range(0, len(attempts), MAX_ASSIGN_BATCH):
            msg = host_pb2.OrchestratorMessage()
            add = getattr(msg, field).attempts.add
            for key, attempt in attempts[start : start + MAX_ASSIGN_BATCH]:
                add(task_id=key, attempt=attempt)
            await self.context.write(msg)

    async def write(self) -> None:
        """Send what the core queued for this host whenever woken, until the session closes."""
        core, host, context = self.orch.core, self.host, self.context
        while await self.woken():
            if host.cancels:
                await self._write_attempts("cancel", core.take_cancels(host))
            if host.started_ok:
                # After the cancels: a held attempt cancelled meanwhile is gone on the host.
                await self._write_attempts("started_ok", core.take_started_ok(host))
            grace = core.take_drain_request(host)
            if grace is not None:
                await context.write(
                    host_pb2.OrchestratorMessage(drain=host_pb2.DrainRequest(grace_s=grace))
                )
            while host.outbox:  # cut by count and by bytes (budgets.py)
                # An attempt past its reservation goes out once the new one is journaled.
                while host in core.gated_hosts:
                    core.gated_hosts.discard(host)
                    await self.orch.durable()
                batch, seq = core.take_assignments(host, MAX_ASSIGN_BATCH, self.orch.now())
                if self.orch.observer is not None:
                    self.orch.observer.sent(host, batch, self.orch.now())
                msg = host_pb2.OrchestratorMessage()
                host_wire.assignments_to_pb(batch, msg, self.columns)
                msg.assign.seq = seq
                await context.write(msg)


class HostServicer:
    """Registered with add_HostServiceServicer_to_server; the stream uses context.read/write."""

    def __init__(self, orch: Orchestrator, auth: Authority | None = None) -> None:
        self.orch = orch
        self.streams = StreamSlots("Connect", orch.config.max_host_streams)
        self.auth = auth or Authority()

    async def Connect(self, request_iterator: object, context: grpc.aio.ServicerContext) -> None:
        async with self.streams.hold(context):
            await self._connect(context)

    async def _connect(self, context: grpc.aio.ServicerContext) -> None:
        orch = self.orch
        first = await first_message(context, "hello", orch.config.first_message_timeout_s)
        try:
            hello = host_wire.hello_from_pb(first.hello, orch.config)
        except Rejected as exc:
            await refuse(context, exc)
        try:
            self.auth.claim_host(context, hello.host_id)  # before the core sees the id
        except Rejected as exc:
            await refuse(context, exc)
        host = orch.core.host_joined(hello, orch.now())
        columns = first.hello.columns
        session = HostSession(orch, host, context, columns)
        orch.host_sessions[host] = session
        log.info(
            "host %s joined: pid %d on %s, %d agents, kinds %s",
            hello.host_id,
            hello.pid,
            hello.hostname,
            hello.capacity,
            sorted(hello.kinds),
            extra={"event": "host_joined", "host_id": hello.host_id, "pid": hello.pid},
        )
        welcome = host_pb2.Welcome(
            heartbeat_interval_s=orch.config.heartbeat_interval_s,
            lease_s=orch.config.lease_s,
            orchestrator_id=orch.instance_id,
            columns=columns,
        )
        await context.write(host_pb2.OrchestratorMessage(welcome=welcome))
        orch.flush()
        session.wake()
        ended = False  # the stream ended without an error: the host closed it, or died
        try:
            ended = await session.run()
        finally:
            now = orch.now()
            orch.host_sessions.pop(host, None)
            # Only a drained host says goodbye. A process that dies (SIGKILL, a crashing
            # handler) often shows as a plain end of stream as well, since its kernel closes
            # the socket: that is a loss, or a poison task would never be blamed for it.
            if ended and host.state is HostState.DRAINING:
                orch.core.host_left(host, now)
                log.info("host %s left", host.id, extra={"event": "host_left", "host_id": host.id})
            elif host.live:
                if session.bug is not None:
                    why = "a bug in the orchestrator ended its session"
                else:
                    why = "its stream ended without a drain" if ended else "its stream broke"
                orch.core.host_lost(host, now, why)
            orch.flush()
        if session.closed is not None:
            await fail(context, grpc.StatusCode.UNAVAILABLE, f"host session {session.closed}")
