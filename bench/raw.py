"""A TaskService.Session stream driven directly with batched messages, without the SDK.

It is the benchmarks' second client: what the protocol allows, to hold the SDK's figures
against, and the one that counts what arrives on the wire (a result delivered twice is seen
here, where the SDK would hide it).

    async with RawSession(address) as s:
        await s.submit("echo", ["a", "b"], [b"1", b"2"])
        await s.wait_all(["a", "b"], timeout_s=10)
        s.results["a"].output                      # b"1"
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any

import grpc
from swarm.common.grpc_options import CHANNEL_OPTIONS
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

SUCCEEDED = types_pb2.SUCCEEDED


class RawSession:
    def __init__(
        self,
        address: str,
        *,
        client_id: str = "",
        batch: int = 1000,
        on_results: Callable[[float, Sequence[types_pb2.TaskResult]], None] | None = None,
    ) -> None:
        self.address = address
        self.on_results = on_results  # called with each batch and its arrival (perf_counter)
        self.client_id = client_id
        self.batch = batch
        self.results: dict[str, types_pb2.TaskResult] = {}
        self.duplicates = 0
        self.last_result_at = 0.0  # perf_counter() when the newest result arrived
        self.accepted: set[int] = set()  # batch ids the orchestrator answered as accepted
        self._batches = 0
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._arrived = asyncio.Event()
        self._failure: BaseException | None = None
        self.column_deps = False  # SessionOpened.column_depends_on

    async def __aenter__(self) -> RawSession:
        self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        stub = task_pb2_grpc.TaskServiceStub(self._channel)
        self._call = stub.Session()
        await self._call.write(
            task_pb2.ClientMessage(open=task_pb2.OpenSession(client_id=self.client_id))
        )
        first = await self._call.read()
        if first is grpc.aio.EOF or first.WhichOneof("msg") != "opened":
            raise RuntimeError(f"the session did not open: {first!r}")
        self.client_id = first.opened.client_id
        self.column_deps = first.opened.column_depends_on
        self._reader = asyncio.create_task(self._read(), name="raw-session-read")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            await self._channel.close()

    async def _read(self) -> None:
        results, call = self.results, self._call
        try:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    raise ConnectionError("the orchestrator ended the session")
                which = msg.WhichOneof("msg")
                if which == "results":
                    batch = msg.results.results
                    ack = task_pb2.ClientMessage()
                    ack.ack.task_ids.extend(r.task_id for r in batch)
                    for r in batch:
                        if r.task_id in results:
                            self.duplicates += 1
                        else:
                            results[r.task_id] = r
                    self.last_result_at = time.perf_counter()
                    if self.on_results is not None:
                        self.on_results(self.last_result_at, batch)
                    self._arrived.set()
                    async with self._write_lock:
                        await call.write(ack)
                elif which == "submitted":
                    s = msg.submitted
                    if s.code != 0:
                        raise RuntimeError(f"batch refused: {s.code} {s.field}: {s.message}")
                    self.accepted.add(s.batch_id)
                    self._arrived.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failure = exc
            self._arrived.set()

    async def submit(
        self,
        kind: str,
        ids: Sequence[str],
        payloads: Sequence[bytes],
        deps: Sequence[Sequence[str]] | None = None,
        priority: int = 0,
    ) -> list[int]:
        """Send the tasks in messages of up to `batch` tasks each; their batch ids (numbered
        on from this session's last, so `accepted` tells which were answered)."""
        call, step = self._call, self.batch
        sent = []
        for start in range(0, len(ids), step):
            self._batches += 1
            sent.append(self._batches)
            msg = task_pb2.ClientMessage()
            msg.submit.batch_id = self._batches
            add = msg.submit.tasks.add
            end = min(len(ids), start + step)
            if not priority and (deps is None or self.column_deps):
                # The column form (task.proto, SubmitBatch), dependencies included where the
                # server reads them there: no message per task on either side.
                b = msg.submit
                b.kind = kind
                b.ids.extend(ids[start:end])
                b.payloads.extend(payloads[start:end])
                if deps is not None:
                    chunk = deps[start:end]
                    b.dep_counts.extend(map(len, chunk))
                    b.depends_on.extend(chain.from_iterable(chunk))
            elif deps is None:
                for i in range(start, end):
                    add(id=ids[i], kind=kind, payload=payloads[i], priority=priority)
            else:
                for i in range(start, end):
                    add(
                        id=ids[i],
                        kind=kind,
                        payload=payloads[i],
                        depends_on=deps[i],
                        priority=priority,
                    )
            async with self._write_lock:
                await call.write(msg)
        return sent

    async def cancel(self, ids: Sequence[str]) -> None:
        """Ask for these tasks to be cancelled; each one's final result comes as usual."""
        msg = task_pb2.ClientMessage()
        msg.cancel.task_ids.extend(ids)
        async with self._write_lock:
            await self._call.write(msg)

    async def wait_count(self, n: int, timeout_s: float) -> bool:
        """Wait until `n` distinct results are in; False at the deadline."""
        return await self._wait(lambda: len(self.results) >= n, timeout_s)

    async def wait_accepted(self, batch_ids: Iterable[int], timeout_s: float) -> bool:
        """Wait until these batches were answered as accepted; False at the deadline."""
        want = set(batch_ids)
        return await self._wait(lambda: want <= self.accepted, timeout_s)

    async def _wait(self, done: Callable[[], bool], timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not done():
            if self._failure is not None:
                raise RuntimeError("the session failed") from self._failure
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return done()
        return True

    async def run(
        self,
        kind: str,
        ids: Sequence[str],
        payloads: Sequence[bytes],
        deps: Sequence[Sequence[str]] | None = None,
        timeout_s: float = 120.0,
    ) -> tuple[list[bytes], float]:
        """Submit, wait for every result; the outputs in order and the wall time in seconds.

        Raises when a task failed or a result is missing at the deadline.
        """
        want = len(self.results) + len(ids)
        t0 = time.perf_counter()
        await self.submit(kind, ids, payloads, deps)
        if not await self.wait_count(want, timeout_s):
            raise TimeoutError(f"{want - len(self.results)} results missing after {timeout_s} s")
        wall = self.last_result_at - t0
        return [output_of(self.results[i]) for i in ids], wall


def output_of(result: types_pb2.TaskResult) -> bytes:
    if result.state != SUCCEEDED:
        e = result.error
        raise RuntimeError(f"task {result.task_id} ended {result.state}: {e.type}: {e.message}")
    return result.output
