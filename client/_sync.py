"""`Client`: the blocking face of the SDK for scripts and notebooks.

Not a second implementation: it runs one `AsyncClient` on a private event loop in a daemon thread
and hands each call over with `run_coroutine_threadsafe`. Calling it from inside a running event
loop would block that loop (or deadlock, if it is the client's own), so it refuses with a clear
error instead.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from typing import Any, Self, TypeVar

from swarm.client._admin import TaskInfo
from swarm.client._client import AsyncClient
from swarm.client._errors import DeadlineExceeded
from swarm.client._future import TaskFuture
from swarm.client._graph import Graph, Node
from swarm.client._progress import Progress
from swarm.client._types import ClusterStatus, Vote

T = TypeVar("T")


def _refuse_in_running_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"swarm.client.Client.{what}() blocks, and it was called from inside a running event "
        "loop, which it would stall or deadlock. In async code use the async client instead: "
        "`async with swarm.client.AsyncClient() as client: fut = await client.submit(...)`."
    )


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class SyncTaskFuture:
    """The blocking handle on one task, as returned by `Client.submit` and `Client.map`.

    ```python
    fut = client.submit("echo", b"hi")
    fut.result(timeout=5)     # b"hi", or raises the task's error / DeadlineExceeded
    ```
    """

    __slots__ = ("_client", "_fut")

    def __init__(self, client: Client, fut: TaskFuture) -> None:
        self._client = client
        self._fut = fut

    def __repr__(self) -> str:
        return repr(self._fut).replace("<TaskFuture", "<SyncTaskFuture", 1)

    @property
    def id(self) -> str:
        """The task id."""
        return self._fut.id

    @property
    def kind(self) -> str:
        """The task's kind (handler name)."""
        return self._fut.kind

    @property
    def host_id(self) -> str:
        """The host that produced the result; "" until done."""
        return self._fut.host_id

    @property
    def attempts(self) -> int:
        """How many attempts ran; 0 until done."""
        return self._fut.attempts

    def done(self) -> bool:
        """True once the task has its final result."""
        return self._fut.done()

    def result(self, timeout: float | None = None) -> Any:
        """Block until the task finishes (up to `timeout` s) and return its output."""
        return self._client._call("result", self._fut.result(timeout))

    def cancel(self) -> bool:
        """Ask the orchestrator to cancel the task; False if it had already finished."""
        if self._fut.done():
            return False
        self._client._loop_of().call_soon_threadsafe(self._fut.cancel)
        return True


class Client:
    """The blocking client: the same surface as `AsyncClient`, for scripts and notebooks.

    ```python
    from swarm.client import Client

    with Client("127.0.0.1:50051") as client:
        futs = client.map("echo", [b"a", b"b"])
        print(client.gather(futs))                   # [b'a', b'b']
        for fut in client.as_completed(futs):
            print(fut.id, fut.result())
    ```

    Keyword options are those of `AsyncClient`. Do not call it from async code: it raises
    `RuntimeError` there; use `AsyncClient`.
    """

    def __init__(self, address: str | None = None, **options: Any) -> None:
        self._async = AsyncClient(address, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """The orchestrator's address."""
        return self._async.address

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        """Start the private loop thread and connect; raises `Unavailable` when unreachable."""
        _refuse_in_running_loop("connect")
        if self._loop is not None:
            return
        loop = _new_loop()
        thread = threading.Thread(target=loop.run_forever, name="swarm-client", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._call("connect", self._async.connect())
        except BaseException:
            self._stop_loop()
            raise

    def close(self) -> None:
        """Flush, disconnect and stop the private loop thread."""
        _refuse_in_running_loop("close")
        if self._loop is None:
            return
        try:
            self._call("close", self._async.close())
        finally:
            self._stop_loop()

    def submit(
        self,
        kind: str,
        payload: object = None,
        *,
        id: str | None = None,
        depends_on: Iterable[SyncTaskFuture | str] = (),
        priority: int = 0,
        timeout: float | None = None,
        max_retries: int | None = None,
        labels: Mapping[str, str] | None = None,
        decode: bool | None = None,
    ) -> SyncTaskFuture:
        """Submit one task; see `AsyncClient.submit`."""
        deps = [d._fut if isinstance(d, SyncTaskFuture) else d for d in depends_on]
        coro = self._async.submit(
            kind, payload, id=id, depends_on=deps, priority=priority, timeout=timeout,
            max_retries=max_retries, labels=labels, decode=decode,
        )  # fmt: skip
        return SyncTaskFuture(self, self._call("submit", coro))

    def map(self, kind: str, payloads: Iterable[object], **options: Any) -> list[SyncTaskFuture]:
        """Submit one task per payload; see `AsyncClient.map`."""
        futs = self._call("map", self._async.map(kind, payloads, **options))
        return [SyncTaskFuture(self, f) for f in futs]

    def submit_graph(self, graph: Graph) -> dict[Node, SyncTaskFuture]:
        """Submit a whole `Graph`; see `AsyncClient.submit_graph`."""
        futs = self._call("submit_graph", self._async.submit_graph(graph))
        return {node: SyncTaskFuture(self, f) for node, f in futs.items()}

    def gather(
        self, futures: Iterable[SyncTaskFuture], *, return_exceptions: bool = False
    ) -> list[Any]:
        """The outputs of `futures` in order; see `AsyncClient.gather`."""
        inner = [f._fut for f in futures]
        return self._call("gather", self._async.gather(inner, return_exceptions=return_exceptions))

    def as_completed(
        self,
        futures: Iterable[SyncTaskFuture],
        *,
        timeout: float | None = None,
        progress: Progress = False,
    ) -> Iterator[SyncTaskFuture]:
        """Yield `futures` as they finish; raises `DeadlineExceeded` after `timeout` s.
        `progress=True` (or a label): a bar on stderr, as `AsyncClient.as_completed` draws."""
        _refuse_in_running_loop("as_completed")
        wrappers = {f._fut: f for f in futures}
        done: queue.SimpleQueue[TaskFuture] = queue.SimpleQueue()
        stop = threading.Event()

        async def feed() -> None:
            async for fut in self._async.as_completed(wrappers, progress=progress):
                done.put(fut)
                if stop.is_set():
                    return

        loop = self._loop_of()
        feeding = asyncio.run_coroutine_threadsafe(feed(), loop)
        deadline = None if timeout is None else loop.time() + timeout
        try:
            for _ in range(len(wrappers)):
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    yield wrappers[done.get(timeout=remaining)]
                except queue.Empty:
                    raise DeadlineExceeded(
                        f"tasks had not all finished after {timeout} s"
                    ) from None
        finally:
            stop.set()
            feeding.cancel()

    def cancel(self, *tasks: SyncTaskFuture | str) -> dict[str, str]:
        """Cancel tasks by future or id; see `AsyncClient.cancel`."""
        ids = [t.id if isinstance(t, SyncTaskFuture) else t for t in tasks]
        return self._call("cancel", self._async.cancel(*ids))

    def get(self, *ids: str) -> list[TaskInfo]:
        """Tasks by id; see `AsyncClient.get`."""
        return self._call("get", self._async.get(*ids))

    def wait(self, *ids: str, timeout: float | None = None, any: bool = False) -> list[TaskInfo]:
        """Wait on tasks by id; see `AsyncClient.wait`."""
        return self._call("wait", self._async.wait(*ids, timeout=timeout, any=any))

    def drain_host(self, host_id: str, grace_s: float = 0.0) -> str:
        """Drain a host; see `AsyncClient.drain_host`."""
        return self._call("drain_host", self._async.drain_host(host_id, grace_s))

    def status(self) -> ClusterStatus:
        """Hosts, agents, load and queue depths; see `AsyncClient.status`."""
        return self._call("status", self._async.status())

    def scatter_gather(
        self,
        kind: str,
        payloads: Iterable[object],
        reduce_kind: str,
        reduce_payload: object = None,
        **options: Any,
    ) -> SyncTaskFuture:
        """Map, then reduce over every output; see `AsyncClient.scatter_gather`."""
        coro = self._async.scatter_gather(kind, payloads, reduce_kind, reduce_payload, **options)
        return SyncTaskFuture(self, self._call("scatter_gather", coro))

    def vote(self, kind: str, payload: object = None, **options: Any) -> Vote:
        """Replicated voting; see `AsyncClient.vote`."""
        return self._call("vote", self._async.vote(kind, payload, **options))

    # -- plumbing -------------------------------------------------------------------------

    def _loop_of(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the client is not connected: use `with Client() as client:`")
        return self._loop

    def _call(self, what: str, coro: Coroutine[Any, Any, T]) -> T:
        try:
            _refuse_in_running_loop(what)
            loop = self._loop_of()
        except RuntimeError:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
