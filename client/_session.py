"""One client's Session stream: submissions out, results in, batched without timers; reconnects.

Three coroutines, all owned here: the runner (opens the stream, supervises the other two, and
reopens with backoff), the writer and the reader. The writer sleeps until something is queued,
then writes everything queued since its last write, at most `max_batch` tasks per message; while
a write is in flight more work piles up and goes in the next message. So an idle client sends one
task per message (lowest latency) and a busy one sends large batches (fewest messages).

Every task stays in `_inflight` from submission to its result. On reconnect the session is
reopened under the same client_id and every unfinished task is resubmitted by id, in submission
order: the orchestrator lists those it already has as duplicates and (re)delivers their results,
so futures survive a broken stream. Results are acknowledged in batches; unacknowledged results
are redelivered after a reconnect, and a result for a task no longer in flight is only acked.

The window bounds unfinished tasks: a producer awaits `acquire` until results free credits.
"""

from __future__ import annotations

import asyncio
import logging
import re
from itertools import chain
from operator import attrgetter
from typing import Any

import grpc
from swarm.client._codec import Codec
from swarm.client._errors import SwarmError, Unavailable, rpc_error, status_error
from swarm.client._flow import AckHolds, Window
from swarm.client._future import (
    TaskFuture,
    batch_extent,
    columns,
    index,
    resolve_ok,
    unsent,
    wake,
)
from swarm.common.backoff import (
    RECONNECT_INITIAL_S,
    RECONNECT_MAX_S,
    RECONNECT_STABLE_S,
    Backoff,
)
from swarm.common.grpc_options import BATCH_BYTES
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

log = logging.getLogger("swarm.client")

# Tasks per submit message: at most this, and at most the orchestrator's `max_batch` (`opened`).
# The orchestrator accepts a message whole before it assigns any task of it, so a message of
# 10,000 keeps the hosts idle while all of it is read and checked; with a thousand the first
# run while the rest are read, and a message's own cost is still ~0.1 µs per task.
SUBMIT_BATCH = 1000
# A task spec's fields besides its payload (id, kind, options, framing), counted per task.
_SPEC_OVERHEAD = 1024
# Acks wait until this many have gathered (or the client closes): an ack message costs as much as
# a result message, and an unacked result only costs the orchestrator memory until then.
ACK_BATCH = 1024
# Status codes after which the stream is reopened; any other ends the session for good.
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
# Trailing metadata key naming why the orchestrator ended a Session on purpose (task.proto).
END_KEY = "swarm-end"
_ID = attrgetter("id")
_TASK_FIELD = re.compile(r"^tasks\[(\d+)\](?:\.depends_on\[(\d+)\])?")


class _Disconnected(Exception):
    """The stream ended without a gRPC error (EOF, or written to after it finished)."""


class Session:
    """The stream of one client. `AsyncClient` owns it; nothing else should touch it."""

    def __init__(
        self,
        stub: task_pb2_grpc.TaskServiceAsyncStub,
        *,
        address: str,
        client_id: str,
        namespace: str,
        codec: Codec,
        window: int,
        open_timeout_s: float,
        reconnect_timeout_s: float,
    ) -> None:
        self.codec = codec
        self.client_id = client_id
        self._stub = stub
        self._address = address
        self._namespace = namespace
        self._open_timeout_s = open_timeout_s
        self._reconnect_timeout_s = reconnect_timeout_s
        self._max_batch = SUBMIT_BATCH
        # The server reads dependencies in the column form (SessionOpened.column_depends_on).
        self._column_deps = False
        self.inflight: dict[str, TaskFuture] = {}  # submitted, no final result yet
        self._outbox: list[TaskFuture] = []  # not yet written on the current stream
        self._batches: dict[int, list[TaskFuture]] = {}  # written, awaiting `submitted`
        self._batch_seq = 0
        self._acks: list[str] = []
        self._cancels: list[str] = []
        self._cancelling: set[str] = set()  # cancel requested, no result yet: resent on reconnect
        self._requeued: set[str] = set()  # innocent tasks of a refused batch, not yet re-accepted
        self._holds = AckHolds()
        self.window = Window(window)
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()  # nothing queued and no batch awaiting its reply
        self.failure: SwarmError | None = None  # set once the session has given up for good
        self.opens = 0  # how many times a stream was opened (1 + reconnects)
        self._closing = False  # close() is flushing: send every ack, however few
        self._runner: asyncio.Task[None] | None = None

    # -- used by the client ---------------------------------------------------------------

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"swarm-session-{self.client_id}")

    def enqueue(self, futures: list[TaskFuture], *, with_deps: bool = False) -> None:
        """Queue futures (window credits already taken) for the writer; `with_deps` when any of
        them has `depends_on`."""
        index(self.inflight, futures)
        if with_deps:
            self._holds.pin(futures)
        self._outbox += futures
        self._flushed.clear()
        self._wake.set()

    def request_cancel(self, task_ids: list[str]) -> None:
        self._cancels += task_ids
        self._cancelling.update(task_ids)
        self._flushed.clear()
        self._wake.set()

    async def close(self, timeout_s: float) -> None:
        """Send what is queued (within `timeout_s`), end the stream, fail unfinished futures."""
        runner = self._runner
        self._closing = True
        if runner is not None and self.failure is None:
            if not self._settled():
                self._flushed.clear()
            self._wake.set()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._flushed.wait()
            except TimeoutError:
                log.warning("closing with tasks not yet acknowledged by the orchestrator")
        if runner is not None:
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        self._give_up(Unavailable("the client was closed before the task finished"))

    # -- the runner -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # Reset after a stream that stayed open RECONNECT_STABLE_S: a flapping one backs off.
        backoff = Backoff(RECONNECT_INITIAL_S, RECONNECT_MAX_S, stable_s=RECONNECT_STABLE_S)
        down_since: float | None = None
        while True:
            opens = self.opens
            started = loop.time()
            call = self._stub.Session()
            try:
                await self._serve(call)
                error: SwarmError = Unavailable("the orchestrator ended the stream")
            except grpc.aio.AioRpcError as exc:
                error = rpc_error(exc)
                ended = self._ended_by_orchestrator(exc)
                if ended is not None:
                    log.warning("session %s: %s", self.client_id, ended)
                    self._give_up(ended)
                    return
                if exc.code() not in TRANSIENT_CODES:
                    self._give_up(error)
                    return
            except (_Disconnected, TimeoutError) as exc:
                error = Unavailable(f"stream lost: {exc or type(exc).__name__}")
            except Exception as exc:
                self._give_up(SwarmError(f"client session crashed: {exc!r}"))
                raise
            finally:
                call.cancel()
            now = loop.time()
            opened = self.opens != opens
            if opened or down_since is None:  # it was up: a fresh outage
                down_since = now
            if now - down_since >= self._reconnect_timeout_s:
                self._give_up(Unavailable(_unreachable(self._address, self._reconnect_timeout_s)))
                return
            delay = backoff.next(now - started if opened else 0.0)
            log.info("session %s lost (%s); reconnecting in %.2f s", self.client_id, error, delay)
            await asyncio.sleep(delay)

    async def _serve(self, call: Any) -> None:
        """Open the session on `call`, resubmit what is unfinished, then run reader and writer."""
        opening = task_pb2.ClientMessage()
        opening.open.client_id = self.client_id
        opening.open.namespace = self._namespace
        opening.open.column_results = True
        await call.write(opening)
        async with asyncio.timeout(self._open_timeout_s):
            reply = await call.read()
        if reply is grpc.aio.EOF or reply.WhichOneof("msg") != "opened":
            raise _Disconnected("the orchestrator did not open the session")
        self._max_batch = min(reply.opened.max_batch or SUBMIT_BATCH, SUBMIT_BATCH)
        self._column_deps = reply.opened.column_depends_on
        self.opens += 1
        # Everything unfinished goes again, in submission order (dependencies first).
        self._batches.clear()
        self._requeued.clear()
        self._outbox = list(self.inflight.values())
        self._cancels = list(self._cancelling)
        if self._outbox or self._cancels:
            self._flushed.clear()
        self._wake.set()
        reader = asyncio.create_task(self._reader(call), name="swarm-session-reader")
        writer = asyncio.create_task(self._writer(call), name="swarm-session-writer")
        try:
            done, _ = await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
        # The reader's error says more (the status) than the writer's; prefer it.
        for task in (reader, writer):
            if task in done and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error

    def _ended_by_orchestrator(self, exc: grpc.aio.AioRpcError) -> SwarmError | None:
        """The error for a stream the orchestrator ended on purpose (task.proto, Session:
        trailing metadata `swarm-end`), after which reconnecting cannot bring the tasks back."""
        ending = dict(exc.trailing_metadata() or ()).get(END_KEY)
        if ending == "shutdown":
            return Unavailable(
                f"the orchestrator at {self._address} shut down (a graceful stop, e.g. Ctrl-C on "
                "`swarm up`) before the task finished; it keeps no tasks across a restart, so "
                "submit the task again once it is back",
                code=exc.code(),
            )
        if ending == "taken-over":
            return Unavailable(
                f"the session of client {self.client_id!r} was taken over by a newer session "
                "under the same client_id (is another client using that id?); its results go "
                "to that session now",
                code=exc.code(),
            )
        return None

    # -- writer and reader ----------------------------------------------------------------

    def _acks_due(self) -> bool:
        return len(self._acks) >= ACK_BATCH or (self._closing and bool(self._acks))

    def _settled(self) -> bool:
        """Nothing left to write and no batch awaiting its reply (what `close` waits for)."""
        return not (self._outbox or self._cancels or self._batches or self._acks_due())

    async def _writer(self, call: Any) -> None:
        # Submissions and cancels first: they are what a caller waits on; acks can lag.
        wake = self._wake
        while True:
            if not (self._outbox or self._cancels or self._acks_due()):
                if self._settled():
                    self._flushed.set()
                wake.clear()
                await wake.wait()
                continue
            try:
                if self._cancels:
                    msg = task_pb2.ClientMessage()
                    msg.cancel.namespace = self._namespace
                    msg.cancel.task_ids.extend(self._cancels)
                    self._cancels = []
                    await call.write(msg)
                if self._outbox:
                    await call.write(self._next_batch())
                if self._acks_due():
                    msg = task_pb2.ClientMessage()
                    msg.ack.task_ids.extend(self._acks)
                    self._acks = []
                    await call.write(msg)
            except asyncio.InvalidStateError as exc:  # the call finished under us
                raise _Disconnected(str(exc)) from exc

    def _next_batch(self) -> task_pb2.ClientMessage:
        """The next submit batch: at most max_batch tasks, and payloads within BATCH_BYTES (at
        least one task), so that no batch is over the message limit (grpc_options.py). Tasks of
        one kind without options (what `map` makes) go in the column form (task.proto,
        SubmitBatch): three repeated fields filled in protobuf's C code, no message per task;
        and so do such tasks with dependencies (a graph's), where the server reads those too."""
        outbox = self._outbox
        n, plain, deps = batch_extent(
            outbox, self._max_batch, BATCH_BYTES, _SPEC_OVERHEAD, self._column_deps
        )
        if len(outbox) <= n:
            chunk, self._outbox = outbox, []
        else:
            chunk = outbox[:n]
            del outbox[:n]
        self._batch_seq += 1
        msg = task_pb2.ClientMessage()
        batch = msg.submit
        batch.batch_id = self._batch_seq
        # Finished while queued (a redelivered result): not sent.
        sent = unsent(chunk)
        if plain and sent:
            ids, payloads = columns(sent)
            batch.kind = sent[0].kind
            batch.ids.extend(ids)
            batch.payloads.extend(payloads)
            if deps:
                lists = [fut._opts["depends_on"] if fut._opts else () for fut in sent]
                batch.dep_counts.extend(map(len, lists))
                batch.depends_on.extend(chain.from_iterable(lists))
        else:
            add = batch.tasks.add
            for fut in sent:
                opts = fut._opts
                if opts is None:
                    add(id=fut.id, kind=fut.kind, payload=fut._payload)
                else:
                    add(id=fut.id, kind=fut.kind, payload=fut._payload, **opts)
        self._batches[self._batch_seq] = sent
        return msg

    async def _reader(self, call: Any) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                raise _Disconnected("the orchestrator ended the stream")
            which = msg.WhichOneof("msg")
            if which == "results":
                batch = msg.results
                if batch.ok_ids:
                    self._on_columns(batch)
                if batch.results:
                    self._on_results(batch.results)
            elif which == "submitted":
                self._on_submitted(msg.submitted)

    def _on_columns(self, batch: types_pb2.ResultBatch) -> None:
        """Succeeded results in column form (types.proto, ResultBatch): each column is read
        into a list in protobuf's C code, then one plain loop resolves the futures."""
        ids = list(batch.ok_ids)
        holds = self._holds
        if holds:
            self._acks += holds.acks_of(ids)
        else:
            self._acks += ids
        # An id no longer in flight was redelivered after a reconnect, or is not ours to wait for.
        done = resolve_ok(
            self.inflight,
            ids,
            list(batch.ok_outputs),
            list(batch.ok_attempts),
            list(batch.ok_host_ids),
        )
        self._resolved(done)

    def _on_results(self, results: Any) -> None:
        """Results in row form: failures, and every result from a server without columns."""
        pop = self.inflight.pop
        acks = self._acks
        holds = self._holds
        done: list[TaskFuture] = []
        for result in results:
            task_id = result.task_id
            if not (holds and holds.hold(task_id)):
                acks.append(task_id)
            fut = pop(task_id, None)
            if fut is None:  # redelivered after a reconnect, or not ours to wait for
                continue
            fut._resolve_row(result)
            done.append(fut)
        self._resolved(done)

    def _resolved(self, done: list[TaskFuture]) -> None:
        """These futures just got their result: wake their waiters, free their credits."""
        wake(done)
        if self._cancelling:
            self._cancelling.difference_update(map(_ID, done))
        if done:
            self.window.release(len(done))
        if self._acks_due():
            self._flushed.clear()
            self._wake.set()

    def _on_submitted(self, reply: task_pb2.SubmitReply) -> None:
        futures = self._batches.pop(reply.batch_id, None)
        if futures is None or reply.code == 0:
            if futures and self._requeued:
                self._requeued.difference_update(fut.id for fut in futures)
            if futures and self._holds:
                self._unpin(futures)
            if self._settled():
                self._flushed.set()
            return
        error = status_error(reply.code, reply.message, field=reply.field)
        refused = self._refused_ids(futures, reply.field)
        retry: list[TaskFuture] = []
        failed = 0
        for fut in futures:
            if refused is None or fut.id in refused:
                if self.inflight.pop(fut.id, None) is not None:
                    self._unpin([fut])
                    fut._fail(error)
                    failed += 1
            else:
                retry.append(fut)
        log.debug(
            "batch %d refused (%s): %d failed, %d resent", reply.batch_id, error, failed, len(retry)
        )
        # The refused batch changed nothing: resend the innocent part, in submission order (the
        # order of `inflight`) among whatever else waits, so dependencies still go first.
        if retry:
            queued = {id(fut) for fut in self._outbox}
            queued.update(id(fut) for fut in retry)
            self._outbox = [fut for fut in self.inflight.values() if id(fut) in queued]
        self._requeued.update(fut.id for fut in retry)
        self.window.release(failed)
        self._wake.set()

    def _refused_ids(self, futures: list[TaskFuture], field: str) -> set[str] | None:
        """Ids to fail for a batch refused at `field`: the named task and its dependents in the
        batch; None for all of them. When the named dependency is an innocent task of an earlier
        refused batch, being resent, the naming task is resent too (the empty set)."""
        match = _TASK_FIELD.match(field)
        if match is None or int(match.group(1)) >= len(futures):
            return None
        bad = futures[int(match.group(1))]
        if match.group(2) is not None and bad._opts is not None:
            deps = bad._opts.get("depends_on", ())
            index = int(match.group(2))
            if index < len(deps) and deps[index] in self._requeued:
                return set()
        refused = {bad.id}
        for fut in futures:
            deps = fut._opts.get("depends_on") if fut._opts is not None else None
            if deps and not refused.isdisjoint(deps):
                refused.add(fut.id)
        return refused

    def _unpin(self, futures: list[TaskFuture]) -> None:
        """These futures were accepted (or refused): their dependencies may be acked now."""
        self._acks += self._holds.unpin(futures)
        if self._acks_due():
            self._flushed.clear()
            self._wake.set()

    def _give_up(self, error: SwarmError) -> None:
        if self.failure is None:
            self.failure = error
        futures = list(self.inflight.values())
        self.inflight.clear()
        self._outbox.clear()
        self._batches.clear()
        self._holds.clear()
        for fut in futures:
            fut._fail(error)
        self.window.fail(self.failure)
        self._flushed.set()


def _unreachable(address: str, timeout_s: float) -> str:
    return (
        f"lost the Swarm orchestrator at {address} and could not reconnect within "
        f"{timeout_s:g} s; is it still running?"
    )
