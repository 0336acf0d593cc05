"""TaskService: the client-facing API. Session is the fast path; the unary calls serve scripts
and clients in other languages."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import NoReturn

import grpc
from swarm.server import convert, limits
from swarm.server import status as status_views
from swarm.server.budgets import MAX_ITEM_BYTES, result_bytes
from swarm.server.clients import ClientOutbox
from swarm.server.keys import DEFAULT_NAMESPACE, task_key
from swarm.server.model import Rejected, TaskState
from swarm.server.orchestrator import Orchestrator
from swarm.server.rpc import END_KEY, fail, refuse, status_of
from swarm.server.session import StreamSession
from swarm.server.streams import StreamSlots, first_message
from swarm.server.tenancy import Authority
from swarm.v1 import task_pb2

log = logging.getLogger("swarm.server.tasks")

MAX_RESULT_BATCH = 4096
MAX_WAIT_S = 3600.0


# Why the orchestrator ends a Session stream (task.proto, Session): the status and the value of
# the `swarm-end` trailing metadata key it ends with, so a client can tell them apart.
TAKEN_OVER = "taken over by a newer session of the same client_id"
SHUTDOWN = "the orchestrator shut down"
# A durable orchestrator's graceful stop: its journal keeps every task, so reconnect as after a
# broken stream and pick them up from the next incarnation.
RESTARTING = "the orchestrator is stopping; its journal keeps your tasks"
_ENDINGS = {
    TAKEN_OVER: (grpc.StatusCode.ABORTED, "taken-over"),
    SHUTDOWN: (grpc.StatusCode.UNAVAILABLE, "shutdown"),
    RESTARTING: (grpc.StatusCode.UNAVAILABLE, "restarting"),
}


async def end_session(context: grpc.aio.ServicerContext, why: str) -> NoReturn:
    code, tag = _ENDINGS[why]
    context.set_trailing_metadata(((END_KEY, tag),))
    await fail(context, code, why)


class ClientSession(StreamSession):
    """One open Session stream: replies to its submit batches, then its results."""

    def __init__(
        self,
        orch: Orchestrator,
        outbox: ClientOutbox,
        namespace: str,
        context: grpc.aio.ServicerContext,
        *,
        column_results: bool = False,
    ) -> None:
        super().__init__(context, f"client-{outbox.client_id}")
        # How results are written (OpenSession.column_results).
        self.encode_results = (
            convert.results_to_columns if column_results else convert.results_to_pb
        )
        self.orch = orch
        self.outbox = outbox
        self.namespace = namespace
        self.replies: list[task_pb2.SubmitReply] = []

    async def read(self) -> None:
        orch, core, reader = self.orch, self.orch.core, self.orch.spec_reader
        ns = self.namespace
        plain = ns == DEFAULT_NAMESPACE  # ids are keys as they are: the hot path of acks
        while True:
            msg = await self.context.read()
            if msg is grpc.aio.EOF or self.closed is not None:
                return
            which = msg.WhichOneof("msg")
            if which == "submit":
                batch = msg.submit
                reply = task_pb2.SubmitReply(batch_id=batch.batch_id)
                try:
                    tasks, deps = reader.read_submit(batch, ns)
                    outcome = core.submit(tasks, deps, self.outbox.client_id, orch.now())
                except Rejected as exc:
                    reply.code = status_of(exc).value[0]
                    reply.message = exc.message
                    reply.field = exc.field
                else:
                    reply.accepted = outcome.accepted
                    if outcome.duplicates:
                        reply.duplicates.extend(outcome.duplicates)
                    if reader.picked_ids:
                        reply.task_ids.extend(t.id for t in tasks)
                self.replies.append(reply)  # this writer is woken after the flush below
            elif which == "ack":
                ids = list(msg.ack.task_ids)  # each id made a str once, then checked and used
                await self.check_ids(ids, "ack.task_ids")
                core.ack(self.outbox, ids if plain else [task_key(ns, i) for i in ids])
            elif which == "cancel":
                ids = list(msg.cancel.task_ids)
                await self.check_ids(ids, "cancel.task_ids")
                core.cancel([task_key(ns, i) for i in ids], orch.now())
            elif which == "open":
                pass  # a second open on one stream changes nothing
            # The hosts' writers first (flush wakes them): the assignment of a new task is what
            # on its result's path; the reply to its Submit is not.
            orch.flush()
            if which == "submit":
                self.wake()

    async def check_ids(self, ids: Sequence[str], field: str) -> None:
        """An invalid ack or cancel ends the stream with its status (there is no reply to
        carry it); nothing of it was applied."""
        try:
            convert.check_ids(ids, self.orch.config.max_ids, field)
        except Rejected as exc:
            await refuse(self.context, exc)

    async def write(self) -> None:
        orch, outbox, context = self.orch, self.outbox, self.context
        core = orch.core
        while await self.woken():
            # A submit is answered, and a result sent, only once journaled (checked before
            # each, as more may come in while one is written): an accepted task survives a
            # crash, and a result the client acks cannot be run and sent again.
            # A result goes out only after the reply to its batch (a client that let the
            # server pick ids learns them there). Each pass writes the replies pending at its
            # start, then the results queued by then: those are all of batches answered by
            # now. Results queued meanwhile wait for the next pass, behind the replies queued
            # meanwhile, so neither starves the other however fast batches come.
            while self.replies or (outbox.unsent and self.closed is None):
                replies, self.replies = self.replies, []
                ready = len(outbox.unsent)
                for reply in replies:
                    await orch.durable()
                    await context.write(task_pb2.ServerMessage(submitted=reply))
                # Stop the moment this session is replaced: the outbox's unsent list then
                # belongs to the client's new session, and a batch taken here would never
                # reach it.
                while ready > 0 and self.closed is None:
                    await orch.durable()
                    if self.closed is not None:
                        break
                    batch = core.take_results(outbox, min(ready, MAX_RESULT_BATCH))
                    ready -= len(batch)
                    msg = task_pb2.ServerMessage()
                    self.encode_results(batch, msg)
                    await context.write(msg)


def _reply_too_large(i: int, n: int) -> Rejected:
    """A unary reply is one message: results that would take it past the message limit are
    refused (Session streams them in batches instead)."""
    return Rejected(
        "RESOURCE_EXHAUSTED",
        "task_ids",
        f"the results up to task_ids[{i}] take the reply over {MAX_ITEM_BYTES} bytes: ask for "
        f"fewer of the {n} ids in one call, or read results through a Session",
    )


class TaskServicer:
    """Registered with add_TaskServiceServicer_to_server; streams use context.read/write."""

    def __init__(self, orch: Orchestrator, auth: Authority | None = None) -> None:
        self.orch = orch
        self.sessions = StreamSlots("Session", orch.config.max_session_streams)
        self.auth = auth or Authority()

    async def Session(self, request_iterator: object, context: grpc.aio.ServicerContext) -> None:
        async with self.sessions.hold(context):
            await self._session(context)

    async def _session(self, context: grpc.aio.ServicerContext) -> None:
        orch = self.orch
        first = await first_message(context, "open", orch.config.first_message_timeout_s)
        try:
            namespace = self.auth.namespace(context, first.open.namespace)
            client_id = first.open.client_id or f"c-{uuid.uuid4().hex}"
            convert.check_name(client_id, "open.client_id", convert.MAX_ID_CHARS)
            limits.admit_client(orch.core, client_id, orch.config)
            self.auth.claim_client(namespace, client_id, orch.core.clients)
        except Rejected as exc:
            await refuse(context, exc)
        if orch.shutting_down:
            await end_session(context, SHUTDOWN)
        previous = orch.client_sessions.pop(client_id, None)
        if previous is not None:
            previous.close(TAKEN_OVER)
        outbox = orch.core.attach_client(client_id, orch.now())
        session = ClientSession(
            orch, outbox, namespace, context, column_results=first.open.column_results
        )
        orch.client_sessions[client_id] = session
        opened = task_pb2.SessionOpened(
            client_id=client_id,
            pending_results=len(outbox.unsent),
            max_batch=orch.config.max_batch,
            column_depends_on=True,
        )
        await context.write(task_pb2.ServerMessage(opened=opened))
        session.wake()
        try:
            await session.run()
            if session.closed is not None:
                await end_session(context, session.closed)
        finally:
            if orch.client_sessions.get(client_id) is session:
                del orch.client_sessions[client_id]
                orch.core.detach_client(outbox, orch.now())

    def _known(self, ids: Sequence[str], ns: str) -> list[str]:
        """The keys of the named tasks: at most max_ids valid ids (checked in one pass before
        any lookup), every one known, else NOT_FOUND naming the first unknown as task_ids[i]."""
        convert.check_ids(ids, self.orch.config.max_ids)
        keys = [task_key(ns, i) for i in ids]
        table = self.orch.core.tasks
        for i, key in enumerate(keys):
            if key not in table:
                raise Rejected("NOT_FOUND", f"task_ids[{i}]", f"unknown task {ids[i]!r}")
        return keys

    async def Submit(
        self, request: task_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.SubmitResponse:
        orch = self.orch
        try:
            ns = self.auth.namespace(context, request.namespace)
            if request.client_id:
                convert.check_name(request.client_id, "client_id", convert.MAX_ID_CHARS)
                limits.admit_client(orch.core, request.client_id, orch.config)
                self.auth.claim_client(ns, request.client_id, orch.core.clients)
            tasks, deps = orch.spec_reader.read(request.tasks, ns)
            outcome = orch.core.submit(tasks, deps, request.client_id, orch.now())
        except Rejected as exc:
            await refuse(context, exc)
        orch.flush()
        await orch.durable()
        return task_pb2.SubmitResponse(
            task_ids=[t.id for t in tasks], duplicates=outcome.duplicates
        )

    async def Wait(
        self, request: task_pb2.WaitRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.WaitResponse:
        try:
            ns = self.auth.namespace(context, request.namespace)
            timeout = request.timeout_s
            if not 0 <= timeout <= MAX_WAIT_S:
                raise Rejected("INVALID_ARGUMENT", "timeout_s", f"must be within 0..{MAX_WAIT_S}")
            keys = self._known(request.task_ids, ns)
        except Rejected as exc:
            await refuse(context, exc)
        done = await self.orch.wait_for(keys, timeout or MAX_WAIT_S, request.any)
        await self.orch.durable()  # final states are answered once they are kept
        response = task_pb2.WaitResponse()
        size = 0
        for i, task in enumerate(done):
            size += result_bytes(task)
            if size > MAX_ITEM_BYTES:
                await refuse(context, _reply_too_large(i, len(done)))
            convert.result_to_pb(task, response.results.add())
        return response

    async def Cancel(
        self, request: task_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.CancelResponse:
        orch = self.orch
        try:
            ns = self.auth.namespace(context, request.namespace)
            convert.check_ids(request.task_ids, orch.config.max_ids)
        except Rejected as exc:
            await refuse(context, exc)
        # Answered per task: the known ones are cancelled, an unknown one (never submitted, or
        # forgotten after the retention window) is TASK_STATE_UNSPECIFIED. No status for the
        # call as a whole, so one stale id does not keep the others running.
        keys = [task_key(ns, i) for i in request.task_ids]
        states = orch.core.cancel(keys, orch.now())
        orch.flush()
        return task_pb2.CancelResponse(states=[int(s or 0) for s in states])  # type: ignore[misc]

    async def GetTasks(
        self, request: task_pb2.GetTasksRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.GetTasksResponse:
        try:
            keys = self._known(request.task_ids, self.auth.namespace(context, request.namespace))
        except Rejected as exc:
            await refuse(context, exc)
        response = task_pb2.GetTasksResponse()
        table = self.orch.core.tasks
        size = 0
        for i, key in enumerate(keys):
            task = table[key]
            info = response.tasks.add(
                task_id=task.id, kind=task.kind, state=task.state, attempt=task.attempts
            )
            if task.host_id:
                info.host_id = task.host_id
            if task.state.final:
                size += result_bytes(task)
                if size > MAX_ITEM_BYTES:
                    await refuse(context, _reply_too_large(i, len(request.task_ids)))
                convert.result_to_pb(task, info.result)
        return response

    async def GetStatus(
        self, request: task_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.ClusterStatus:
        orch, core = self.orch, self.orch.core
        try:
            grant = self.auth.grant(context)
        except Rejected as exc:
            await refuse(context, exc)
        now = orch.now()
        status = task_pb2.ClusterStatus(
            uptime_s=now - orch.started_at, stale_results=core.counters.stale_results
        )
        for host in sorted(core.hosts.values(), key=lambda h: h.id):
            h, load = host.hello, host.load
            running = sum(1 for t in host.inflight.values() if t.state is TaskState.RUNNING)
            status.hosts.add(
                host_id=h.host_id,
                pid=h.pid,
                hostname=h.hostname,
                state=host.state,
                kinds=sorted(h.kinds),
                agents=host.capacity,
                max_agents=h.max_capacity,
                running=running,
                assigned=len(host.inflight) - running,
                free=max(0, host.free()),
                loop_lag_ms=load.loop_lag_ms,
                cpu_percent=load.cpu_percent,
                rss_bytes=load.rss_bytes,
                tasks_done=host.done,
                last_seen_ago_s=now - host.last_seen,
                local_queue=load.local_queue,
            )
        for outbox in core.clients.values():
            if not self.auth.visible_client(grant, outbox.client_id):
                continue
            status.clients.add(
                client_id=outbox.client_id,
                connected=outbox.connected,
                unacked_results=len(outbox.pending),
            )
        status.hosts_lost = core.counters.hosts_lost
        for kind, (queued, waiting) in sorted(status_views.waiting_kinds(core).items()):
            status.queues.add(kind=kind, queued=queued, waiting_for_host=waiting)
        counts = status_views.state_counts(core)
        status.tasks.CopyFrom(task_pb2.TaskCounts(**{s.name.lower(): n for s, n in counts.items()}))
        return status

    async def DrainHost(
        self, request: task_pb2.DrainHostRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.DrainHostResponse:
        orch = self.orch
        grace = request.grace_s or 30.0
        try:
            convert.check_name(request.host_id, "host_id", convert.MAX_ID_CHARS)
            if not 0 < grace <= MAX_WAIT_S:  # NaN fails the comparison: refused too
                raise Rejected("INVALID_ARGUMENT", "grace_s", f"must be within 0..{MAX_WAIT_S}")
            host = orch.core.hosts.get(request.host_id)
            if host is None:
                raise Rejected("NOT_FOUND", "host_id", f"no live host {request.host_id!r}")
        except Rejected as exc:
            await refuse(context, exc)
        orch.core.request_drain(host, grace, orch.now())
        orch.flush()
        return task_pb2.DrainHostResponse(state=host.state)  # type: ignore[arg-type]
