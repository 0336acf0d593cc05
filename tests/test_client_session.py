"""The client's Session stream without a server: a scripted gRPC call stands in for the wire.

The fake is of gRPC's call object, not of any Swarm component: what is tested is the SDK's own
batching, window, acks, refusals and reconnects, driven message by message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc
import pytest
from swarm.client import (
    DeadlineExceeded,
    JsonCodec,
    Rejected,
    TaskCancelled,
    TaskFailed,
    TaskFuture,
    Unavailable,
    _session,
)
from swarm.client._future import gather
from swarm.client._session import ACK_BATCH, Session
from swarm.client._waiting import as_completed
from swarm.v1 import task_pb2, types_pb2


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


async def until(check: Callable[[], object], what: str = "", timeout_s: float = 5.0) -> None:
    """Poll `check()` until it is truthy, giving the loop turns, or fail after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    turns = 0
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or check}")
        turns += 1
        await asyncio.sleep(0 if turns < 1000 else 0.001)


class FakeCall:
    """A Session call: records writes, answers `open`, and reads what the test feeds it."""

    def __init__(self, max_batch: int, column_deps: bool = False) -> None:
        self.max_batch = max_batch
        self.column_deps = column_deps  # what SessionOpened.column_depends_on says
        self.writes: list[task_pb2.ClientMessage] = []
        self.inbox: asyncio.Queue[task_pb2.ServerMessage | BaseException] = asyncio.Queue()
        self.gate: asyncio.Event | None = None  # while set to an unset Event, writes stall
        self.cancelled = False

    async def write(self, msg: task_pb2.ClientMessage) -> None:
        if self.cancelled:
            raise asyncio.InvalidStateError("RPC already finished")
        self.writes.append(msg)
        if msg.WhichOneof("msg") == "open":
            opened = task_pb2.SessionOpened(
                client_id=msg.open.client_id,
                max_batch=self.max_batch,
                column_depends_on=self.column_deps,
            )
            self.inbox.put_nowait(task_pb2.ServerMessage(opened=opened))
        if self.gate is not None:
            await self.gate.wait()

    async def read(self) -> task_pb2.ServerMessage:
        item = await self.inbox.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> None:
        self.cancelled = True

    # -- what the tests look at and feed -----------------------------------------------

    def of(self, which: str) -> list[Any]:
        return [getattr(m, which) for m in self.writes if m.WhichOneof("msg") == which]

    def batches(self) -> list[list[str]]:
        return [ids_of(b) for b in self.of("submit")]

    def accept_all(self) -> None:
        for b in self.of("submit"):
            reply = task_pb2.SubmitReply(batch_id=b.batch_id, accepted=len(ids_of(b)))
            self.inbox.put_nowait(task_pb2.ServerMessage(submitted=reply))

    def refuse(self, batch: int, code: int, field: str) -> None:
        reply = task_pb2.SubmitReply(
            batch_id=self.of("submit")[batch].batch_id, code=code, message="no", field=field
        )
        self.inbox.put_nowait(task_pb2.ServerMessage(submitted=reply))

    def results(self, ids: list[str], state: int = types_pb2.SUCCEEDED) -> None:
        msg = task_pb2.ServerMessage()
        for task_id in ids:
            r = msg.results.results.add(task_id=task_id, state=state, output=task_id.encode())  # type: ignore[arg-type]
            if state != types_pb2.SUCCEEDED:
                r.error.reason = (  # type: ignore[assignment]
                    types_pb2.CANCELLED_BY_CLIENT
                    if state == types_pb2.CANCELLED
                    else types_pb2.HANDLER_ERROR
                )
                r.error.type = "RuntimeError"
                r.error.message = "boom"
        self.inbox.put_nowait(msg)

    def column_results(self, ids: list[str]) -> None:
        """Succeeded results in the column form a session asks for (OpenSession)."""
        msg = task_pb2.ServerMessage()
        batch = msg.results
        batch.ok_ids.extend(ids)
        batch.ok_outputs.extend(i.encode() for i in ids)
        batch.ok_attempts.extend([1] * len(ids))
        batch.ok_host_ids.extend(["h0"] * len(ids))
        self.inbox.put_nowait(msg)

    def break_with(self, code: grpc.StatusCode) -> None:
        self.inbox.put_nowait(
            grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="cut")
        )


def ids_of(batch: task_pb2.SubmitBatch) -> list[str]:
    """The task ids of a submit batch in either form (task.proto, SubmitBatch)."""
    return list(batch.ids) if batch.ids else [t.id for t in batch.tasks]


class FakeStub:
    """Hands out a new FakeCall per Session() call, as a channel would per stream."""

    def __init__(self, max_batch: int = 1000, column_deps: bool = False) -> None:
        self.calls: list[FakeCall] = []
        self.max_batch = max_batch
        self.column_deps = column_deps

    def Session(self) -> FakeCall:
        call = FakeCall(self.max_batch, self.column_deps)
        self.calls.append(call)
        return call


def new_session(stub: FakeStub, window: int = 100_000) -> Session:
    session = Session(
        stub,  # type: ignore[arg-type]
        address="fake:1",
        client_id="client-x",
        namespace="default",
        codec=JsonCodec(),
        window=window,
        open_timeout_s=5,
        reconnect_timeout_s=5,
    )
    session.start()
    return session


def futures(
    session: Session, n: int, prefix: str = "t", deps: dict[int, list[str]] | None = None
) -> list[TaskFuture]:
    return [
        TaskFuture(
            session,
            f"{prefix}{i}",
            "echo",
            b"p",
            False,
            {"depends_on": deps[i]} if deps and i in deps else None,
        )
        for i in range(n)
    ]


async def submit(session: Session, futs: list[TaskFuture], with_deps: bool = False) -> None:
    await session.window.acquire(len(futs), whole=True)
    session.enqueue(futs, with_deps=with_deps)


def scenario(body: Callable[[FakeStub, Session], Awaitable[None]], **kw: Any) -> None:
    async def go() -> None:
        stub = FakeStub(kw.pop("max_batch", 1000), kw.pop("column_deps", False))
        session = new_session(stub, **kw)
        try:
            await body(stub, session)
        finally:
            await session.close(0.1)

    run(go())


# -- batching --------------------------------------------------------------------------------


@pytest.mark.parametrize("column_deps", [True, False])
def test_a_graph_of_one_kind_goes_in_columns_where_the_server_reads_them(
    column_deps: bool,
) -> None:
    """Dependencies ride in the column form (dep_counts, depends_on) only when SessionOpened
    says the server reads them; else the batch is in rows, each with its depends_on."""

    async def body(stub: FakeStub, session: Session) -> None:
        await until(lambda: stub.calls and stub.calls[0].writes)
        await until(lambda: session._column_deps is column_deps)
        futs = futures(session, 4, deps={1: ["t0"], 3: ["t1", "t2"]})
        await submit(session, futs, with_deps=True)
        call = stub.calls[0]
        await until(lambda: call.of("submit"))
        (batch,) = call.of("submit")
        if column_deps:
            assert not batch.tasks
            assert (list(batch.ids), batch.kind) == (["t0", "t1", "t2", "t3"], "echo")
            assert list(batch.dep_counts) == [0, 1, 0, 2]
            assert list(batch.depends_on) == ["t0", "t1", "t2"]
        else:
            assert not batch.ids and not batch.dep_counts and not batch.depends_on
            assert [(t.id, list(t.depends_on)) for t in batch.tasks] == [
                ("t0", []),
                ("t1", ["t0"]),
                ("t2", []),
                ("t3", ["t1", "t2"]),
            ]

    scenario(body, column_deps=column_deps)


def test_opens_with_the_client_id_then_sends_one_task_per_message_when_idle() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        a, b = futures(session, 2)
        await submit(session, [a])
        await until(lambda: stub.calls)
        call = stub.calls[0]
        await until(lambda: call.batches() == [["t0"]])
        await submit(session, [b])
        await until(lambda: call.batches() == [["t0"], ["t1"]])
        assert call.writes[0].open.client_id == "client-x"
        assert call.writes[0].open.namespace == "default"

    scenario(body)


def test_a_busy_stream_coalesces_everything_queued_in_chunks_of_max_batch() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, 2501)
        await until(lambda: stub.calls)
        call = stub.calls[0]
        call.gate = asyncio.Event()  # the next write stalls, as on a slow stream
        await submit(session, futs[:1])
        await until(lambda: len(call.batches()) == 1)
        for i in range(1, 2501, 100):  # many small submissions while the write is in flight
            await submit(session, futs[i : i + 100])
        call.gate.set()
        await until(lambda: sum(map(len, call.batches())) == 2501)
        assert [len(b) for b in call.batches()] == [1, 1000, 1000, 500]
        assert [i for b in call.batches() for i in b] == [f.id for f in futs]

    scenario(body, max_batch=1000)


def test_a_submit_message_holds_at_most_a_thousand_tasks_where_the_server_allows_more() -> None:
    """The orchestrator accepts a message whole before it assigns any of it: the SDK keeps its
    messages at SUBMIT_BATCH, so the first tasks of a large map or graph run sooner."""

    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, 2500)
        await submit(session, futs)
        await until(lambda: stub.calls)
        call = stub.calls[0]
        await until(lambda: sum(map(len, call.batches())) == 2500)
        assert [len(b) for b in call.batches()] == [1000, 1000, 500]
        assert [i for b in call.batches() for i in b] == [f.id for f in futs]

    scenario(body, max_batch=10_000)


def test_results_resolve_futures_and_acks_go_in_batches() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, ACK_BATCH + 10)
        await submit(session, futs)
        await until(lambda: stub.calls)
        call = stub.calls[0]
        await until(lambda: call.batches())
        call.accept_all()
        call.results([f.id for f in futs[:10]])
        assert await gather(futs[:10]) == [f.id.encode() for f in futs[:10]]
        assert call.of("ack") == []  # ten acks wait for more
        call.results([f.id for f in futs[10:]])
        await until(lambda: call.of("ack"))
        assert len(call.of("ack")[0].task_ids) == ACK_BATCH + 10
        assert session.window.free == session.window.size

    scenario(body)


def test_plain_tasks_of_one_kind_go_in_column_form_the_others_in_rows() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        plain = futures(session, 3, "p")
        await submit(session, plain)
        await until(lambda: stub.calls)
        call = stub.calls[0]
        assert call.writes[0].open.column_results is True
        await until(lambda: len(call.batches()) == 1)
        [batch] = call.of("submit")
        assert list(batch.ids) == ["p0", "p1", "p2"] and list(batch.payloads) == [b"p"] * 3
        assert batch.kind == "echo" and not batch.tasks
        with_opts = futures(session, 2, "d", deps={1: ["d0"]})
        await submit(session, with_opts, with_deps=True)
        await until(lambda: len(call.batches()) == 2)
        rows = call.of("submit")[1]
        assert not rows.ids and [t.id for t in rows.tasks] == ["d0", "d1"]
        assert list(rows.tasks[1].depends_on) == ["d0"]

    scenario(body)


def test_column_results_resolve_futures_beside_row_results_in_one_batch() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, 4)
        await submit(session, futs)
        await until(lambda: stub.calls)
        call = stub.calls[0]
        await until(lambda: call.batches())
        call.accept_all()
        call.column_results(["t0", "t2", "unknown"])
        call.results(["t1"], types_pb2.FAILED)
        assert await gather(futs[::2][:2]) == [b"t0", b"t2"]
        assert futs[0].host_id == "h0" and futs[0].attempts == 1 and futs[0].output == b"t0"
        with pytest.raises(TaskFailed):
            await futs[1]
        assert not futs[3].done() and futs[3].host_id == "" and futs[3].attempts == 0
        assert session.window.free == session.window.size - 1
        assert set(session._acks) == {"t0", "t2", "unknown", "t1"}  # every result is acked

    scenario(body)


def test_close_flushes_pending_acks() -> None:
    async def go() -> None:
        stub = FakeStub()
        session = new_session(stub)
        [fut] = futures(session, 1)
        await submit(session, [fut])
        await until(lambda: stub.calls and stub.calls[0].batches())
        stub.calls[0].accept_all()
        stub.calls[0].results([fut.id])
        await fut
        await session.close(5)
        assert [list(a.task_ids) for a in stub.calls[0].of("ack")] == [[fut.id]]

    run(go())


# -- futures ---------------------------------------------------------------------------------


def test_failed_and_cancelled_results_raise_and_as_completed_yields_in_finishing_order() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        a, b, c = futs = futures(session, 3)
        await submit(session, futs)
        await until(lambda: stub.calls)
        call = stub.calls[0]
        await until(lambda: call.batches())
        assert c.cancel() is True
        await until(lambda: call.of("cancel"))
        assert list(call.of("cancel")[0].task_ids) == ["t2"]
        call.results(["t1"], types_pb2.FAILED)
        call.results(["t2"], types_pb2.CANCELLED)
        call.results(["t0"])
        order = [f.id async for f in as_completed(futs, timeout=5)]
        assert order == ["t1", "t2", "t0"]
        assert await a == b"t0" and a.output == b"t0"
        with pytest.raises(TaskFailed, match="RuntimeError: boom"):
            await b
        with pytest.raises(TaskCancelled):
            await c
        assert c.cancel() is False
        results = await gather(futs, return_exceptions=True)
        assert results[0] == b"t0"
        assert isinstance(results[1], TaskFailed) and isinstance(results[2], TaskCancelled)

    scenario(body)


def test_result_timeout_and_a_cancelled_waiter_leave_the_task_alone() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        [fut] = futures(session, 1)
        await submit(session, [fut])
        with pytest.raises(DeadlineExceeded):
            await fut.result(timeout=0.01)
        waiter = asyncio.create_task(fut.result())
        other = asyncio.create_task(fut.result())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        with pytest.raises(DeadlineExceeded):
            async for _ in as_completed([fut], timeout=0.01):
                pass
        assert not fut.done() and stub.calls[0].of("cancel") == []
        stub.calls[0].results([fut.id])
        assert await other == fut.id.encode()  # the shared waiter survived the cancelled one

    scenario(body)


def test_the_window_makes_a_fast_producer_wait() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, 3)
        await submit(session, futs[:2])
        third = asyncio.create_task(submit(session, futs[2:]))
        await until(lambda: stub.calls and stub.calls[0].batches())
        await asyncio.sleep(0)
        assert not third.done() and session.window.free == 0
        stub.calls[0].results(["t0"])
        await third
        assert session.window.free == 0 and "t2" in session.inflight

    scenario(body, window=2)


# -- refusals --------------------------------------------------------------------------------


def test_a_refused_batch_fails_the_named_task_and_its_dependents_and_resends_the_rest() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, 4, deps={1: ["t0"], 3: ["t1"]})
        await submit(session, futs, with_deps=True)
        await until(lambda: stub.calls)
        call = stub.calls[0]
        await until(lambda: call.batches())
        call.refuse(0, 3, "tasks[0].kind")
        await until(lambda: len(call.batches()) == 2)
        assert call.batches()[1] == ["t2"]  # t0 refused; t1 and t3 depend on it
        for fut in (futs[0], futs[1], futs[3]):
            with pytest.raises(Rejected) as info:
                await fut
            assert info.value.field == "tasks[0].kind"
        assert session.window.free == session.window.size - 1

    scenario(body)


def test_a_batch_refused_without_a_task_index_fails_whole() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, 3)
        await submit(session, futs)
        await until(lambda: stub.calls)
        call = stub.calls[0]
        await until(lambda: call.batches())
        call.refuse(0, 8, "tasks")
        results = await gather(futs, return_exceptions=True)
        assert all(type(r).__name__ == "Backpressure" for r in results)

    scenario(body)


def test_a_dependent_of_an_innocent_resent_task_is_resent_not_failed() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        first = futures(session, 2)  # t0 bad, t1 innocent
        [later] = futures(session, 1, prefix="u", deps={0: ["t1"]})
        await until(lambda: stub.calls)
        call = stub.calls[0]
        await submit(session, first)
        await until(lambda: len(call.batches()) == 1)
        await submit(session, [later], with_deps=True)
        await until(lambda: len(call.batches()) == 2)
        call.refuse(0, 3, "tasks[0].payload")
        call.refuse(1, 3, "tasks[0].depends_on[0]")  # t1 was not accepted yet when u0 came
        await until(lambda: sum(map(len, call.batches())) == 5)
        assert [i for b in call.batches()[2:] for i in b] == ["t1", "u0"]
        assert not later.done()

    scenario(body)


# -- acks wait for dependents ----------------------------------------------------------------


def test_a_dependency_ack_waits_until_its_dependent_is_accepted() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        [a] = futures(session, 1)
        [b] = futures(session, 1, prefix="b", deps={0: ["t0"]})
        await until(lambda: stub.calls)
        call = stub.calls[0]
        call.gate = asyncio.Event()
        await submit(session, [a])
        await until(lambda: call.batches())
        await submit(session, [b], with_deps=True)
        call.results(["t0"])  # a finishes before b's batch has even been written
        await a
        assert "t0" not in session._acks
        call.gate.set()
        await until(lambda: len(call.batches()) == 2)
        call.accept_all()
        await until(lambda: "t0" in session._acks)

    scenario(body)


# -- reconnects ------------------------------------------------------------------------------


def test_a_broken_stream_reopens_with_the_same_id_and_resubmits_unfinished_tasks() -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, 3)
        await submit(session, futs)
        await until(lambda: stub.calls and stub.calls[0].batches())
        first = stub.calls[0]
        first.accept_all()
        first.results(["t1"])
        await futs[1]
        futs[2].cancel()
        await until(lambda: first.of("cancel"))
        first.break_with(grpc.StatusCode.UNAVAILABLE)
        await until(lambda: len(stub.calls) == 2 and stub.calls[1].batches(), "reconnect")
        second = stub.calls[1]
        assert second.writes[0].open.client_id == "client-x"
        assert second.batches() == [["t0", "t2"]]
        assert [list(c.task_ids) for c in second.of("cancel")] == [["t2"]]
        second.results(["t0", "t1"])  # t1 again: redelivered, only acked
        second.results(["t2"], types_pb2.CANCELLED)
        assert await futs[0] == b"t0"
        with pytest.raises(TaskCancelled):
            await futs[2]
        assert session.opens == 2 and session.inflight == {}

    scenario(body)


def test_a_permanent_error_fails_everything_and_later_submits(monkeypatch: Any) -> None:
    async def body(stub: FakeStub, session: Session) -> None:
        futs = futures(session, 2)
        await submit(session, futs)
        await until(lambda: stub.calls and stub.calls[0].batches())
        stub.calls[0].break_with(grpc.StatusCode.PERMISSION_DENIED)
        results = await gather(futs, return_exceptions=True)
        assert all(r.code is grpc.StatusCode.PERMISSION_DENIED for r in results)
        with pytest.raises(type(results[0])):
            await session.window.acquire(1)

    scenario(body)


def test_giving_up_after_the_reconnect_timeout_fails_futures_with_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_session, "RECONNECT_INITIAL_S", 0.001)

    class DeadStub(FakeStub):
        def Session(self) -> FakeCall:
            call = super().Session()
            call.break_with(grpc.StatusCode.UNAVAILABLE)
            return call

    async def go() -> None:
        stub = DeadStub()
        session = Session(
            stub,  # type: ignore[arg-type]
            address="fake:1",
            client_id="c",
            namespace="default",
            codec=JsonCodec(),
            window=10,
            open_timeout_s=1,
            reconnect_timeout_s=0.05,
        )
        session.start()
        [fut] = futures(session, 1)
        await submit(session, [fut])
        with pytest.raises(Unavailable, match="could not reconnect"):
            await fut.result(timeout=10)
        assert len(stub.calls) > 1
        await session.close(1)

    run(go())


def test_close_fails_unfinished_futures() -> None:
    async def go() -> None:
        stub = FakeStub()
        session = new_session(stub)
        [fut] = futures(session, 1)
        await submit(session, [fut])
        await until(lambda: stub.calls and stub.calls[0].batches())
        stub.calls[0].accept_all()
        await session.close(1)
        with pytest.raises(Unavailable, match="closed"):
            await fut

    run(go())
