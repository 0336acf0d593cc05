"""Task futures, and waiting on many of them without a coroutine or callback per task.

A `TaskFuture` is a plain object, not an `asyncio.Future`: the session resolves thousands of them
per result batch by setting two attributes each. An `asyncio.Future` is made only when somebody
actually waits on one that is not done yet, so `gather` over a large batch suspends about once per
result batch, not once per task.

The per-task loops of the SDK's hot path live here beside the class (`new_futures`,
`node_futures`, `resolve_ok`, `wake`, `batch_extent`, `columns`): where a C compiler is at
hand, setup.py compiles this module with mypyc, which makes a future a C struct and these loops
C, about a fifth of their cost in Python. Everything here is also the pure Python that runs
without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, Protocol

from swarm.client._codec import Codec, encode_payload
from swarm.client._errors import DeadlineExceeded, SwarmError, result_error
from swarm.v1 import types_pb2

_SUCCEEDED = types_pb2.SUCCEEDED
_FAILED = types_pb2.FAILED

Listener = Callable[["TaskFuture"], None]


class _Owner(Protocol):
    codec: Codec

    def request_cancel(self, task_ids: list[str]) -> None: ...


class TaskFuture:
    """The handle on one submitted task: await it for the task's output.

    ```python
    fut = await client.submit("echo", b"hi")
    print(fut.id)                        # the task id, chosen by the SDK (or by you: id=...)
    out = await fut                      # b"hi"; raises a TaskError subclass if the task failed
    out = await fut.result(timeout=5.0)  # the same, or DeadlineExceeded after 5 s
    fut.cancel()                         # asks the orchestrator to cancel it
    ```

    Outputs mirror payloads: a bytes payload gives the raw output bytes; a Python value (or no
    payload) gives the output decoded by the client's codec (unless `decode=` said otherwise).
    Cancelling a coroutine that awaits a future does not cancel the task. The SDK makes them;
    they are not meant to be subclassed (compiled, the class cannot be).
    """

    __slots__ = (
        "_attempts",
        "_decode",
        "_error",
        "_host_id",
        "_listeners",
        "_opts",
        "_output",
        "_owner",
        "_payload",
        "_result",
        "_state",
        "_waiter",
        "id",
        "kind",
    )

    def __init__(
        self,
        owner: _Owner,
        task_id: str,
        kind: str,
        payload: bytes,
        decode: bool,
        opts: dict[str, Any] | None,
    ) -> None:
        self._owner = owner
        self.id = task_id
        self.kind = kind
        # What resubmission needs; both dropped when the task finishes.
        self._payload: bytes | None = payload
        self._opts = opts  # extra TaskSpec fields (depends_on, priority, ...), shared read-only
        self._decode = decode
        # The final result, set by the session (`_resolve_*`): its TaskState (0 until then);
        # _output, _attempts and _host_id from then on; _result, the TaskResult with the error,
        # only for a task that did not succeed. Unset slots until then: nothing to store per task.
        self._state = 0
        self._output: bytes
        self._attempts: int
        self._host_id: str
        self._result: types_pb2.TaskResult
        self._error: BaseException | None = None  # a local failure: refused, unreachable, closed
        self._waiter: asyncio.Future[None] | None = None
        self._listeners: list[Listener] | None = None

    def __repr__(self) -> str:
        if self._state:
            state = types_pb2.TaskState.Name(self._state)
        else:
            state = "error" if self._error is not None else "pending"
        return f"<TaskFuture {self.id} {self.kind} {state}>"

    def done(self) -> bool:
        """True once the task has its final result (or failed locally, e.g. was refused)."""
        return self._state != 0 or self._error is not None

    @property
    def host_id(self) -> str:
        """The host whose attempt produced the result; "" until done or when none ran it."""
        return self._host_id if self._state else ""

    @property
    def attempts(self) -> int:
        """How many attempts ran; 0 until done."""
        return self._attempts if self._state else 0

    @property
    def output(self) -> bytes:
        """The raw output bytes of a succeeded task, never decoded.

        Raises like `result()` when the task failed, and `asyncio.InvalidStateError` when it is
        not done yet.
        """
        return self._final()

    def cancel(self) -> bool:
        """Ask the orchestrator to cancel the task; False when it had already finished.

        The future then ends with `TaskCancelled` (or with the task's result, if it finished
        first). Returns at once; the request travels batched on the client's stream.
        """
        if self.done():
            return False
        self._owner.request_cancel([self.id])
        return True

    async def result(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - as in concurrent.futures
    ) -> Any:
        """Wait for the task (up to `timeout` seconds) and return its output.

        Raises the task's `TaskError` subclass when it failed or was cancelled, and
        `DeadlineExceeded` when `timeout` passed first (the task itself goes on).
        """
        if not self.done():
            if timeout is None:
                await self._wait()
            else:
                try:
                    async with asyncio.timeout(timeout):
                        await self._wait()
                except TimeoutError:
                    raise DeadlineExceeded(
                        f"task {self.id} had not finished after {timeout} s"
                    ) from None
        return self._value()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

    # -- machinery shared with the session and the waiting helpers ----------------------------

    async def _wait(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.cancelled():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        # Shielded: one awaiter being cancelled must not cancel the others' shared waiter.
        await asyncio.shield(waiter)

    def _final(self) -> bytes:
        """The output of a succeeded task; else raises its error (or that it is not done)."""
        state = self._state
        if state == _SUCCEEDED:
            return self._output
        if self._error is not None:
            raise self._error
        if not state:
            raise asyncio.InvalidStateError(f"task {self.id} is not done")
        raise result_error(self._result)

    def _succeeded(self) -> bool:
        return self._state == _SUCCEEDED

    def _resolve_row(self, result: types_pb2.TaskResult) -> None:
        """Finish with a TaskResult message (row form, or a failure)."""
        self._attempts = result.attempts
        self._host_id = result.host_id
        if result.state == _SUCCEEDED:
            self._output = result.output
        else:
            self._result = result
        self._state = result.state or _FAILED  # a result without a state is no success
        self._payload = None

    def _value(self) -> Any:
        output = self._final()
        if not self._decode:
            return output
        codec = self._owner.codec
        try:
            return codec.decode(output)
        except (ValueError, TypeError) as exc:
            raise SwarmError(
                f"task {self.id} ({self.kind}) succeeded, but its output is not valid for "
                f"{type(codec).__name__} ({exc}). Its payload was not bytes, so its output is "
                "decoded; submit with decode=False for the raw bytes (or read `fut.output`)"
            ) from exc

    def _notify(self) -> None:
        """Wake whoever waits; called after `_result` or `_error` is set."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        listeners = self._listeners
        if listeners is not None:
            self._listeners = None
            for listener in listeners:
                listener(self)

    def _fail(self, error: BaseException) -> None:
        if not self.done():
            self._error = error
            self._payload = self._opts = None
            self._notify()


async def gather(futures: Iterable[TaskFuture], *, return_exceptions: bool = False) -> list[Any]:
    """The outputs of `futures`, in order, once all are done.

    With `return_exceptions=True` a failed task's error takes its place in the list instead of
    being raised. Waits on one not-done future at a time, so a batch of results costs one wake-up.
    """
    futures = list(futures)
    for fut in futures:
        if not fut._state and fut._error is None:  # not done()
            await fut._wait()
    if not return_exceptions:
        # Raw bytes of a success inline (the bulk case); anything else through _value.
        return [
            fut._output if fut._state == _SUCCEEDED and not fut._decode else fut._value()
            for fut in futures
        ]
    out: list[Any] = []
    for fut in futures:
        try:
            out.append(fut._value())
        except SwarmError as exc:
            out.append(exc)
    return out


# -- the per-task loops of the session and of `map` (compiled with the class) ---------------------


def new_futures(
    owner: _Owner,
    kind: str,
    ids: list[str],
    payloads: list[Any],
    codec: Codec,
    decode: bool | None,
    opts: dict[str, Any] | None,
    first: int,
) -> list[TaskFuture]:
    """One future per (id, payload): bytes go as they are, anything else through `codec` (an
    encoding error names `payloads[first + i]`)."""
    futs: list[TaskFuture] = []
    for task_id, payload in zip(ids, payloads, strict=True):
        if type(payload) is bytes:
            data: bytes = payload
            decodes = False
        else:
            data, decodes = encode_payload(codec, payload, f"payloads[{first + len(futs)}]")
        if decode is not None:
            decodes = decode
        futs.append(TaskFuture(owner, task_id, kind, data, decodes, opts))
    return futs


def node_futures(
    nodes: Sequence[Any],
    owner: _Owner,
    inflight: dict[str, TaskFuture],
    codec: Codec,
    picked: list[str],
) -> tuple[dict[Any, TaskFuture], list[TaskFuture]]:
    """`graph_futures`' loop over a graph's nodes (`_graph.Node`, read by attribute; each
    dependency already checked by `Graph.add` to be an earlier node, a future or an id):
    each node's future, and the fresh ones in order. A node with an explicit id in flight gets
    that future; one without an id takes `picked[node.index]`."""
    futs: dict[Any, TaskFuture] = {}
    fresh: list[TaskFuture] = []
    for node in nodes:
        task_id: str | None = node.id
        if task_id is not None:
            existing = inflight.get(task_id)
            if existing is not None:
                futs[node] = existing
                continue
        payload = node.payload
        if type(payload) is bytes:
            data: bytes = payload
            decodes = False
        else:
            data, decodes = encode_payload(codec, payload, f"nodes[{node.index}].payload")
        opts: dict[str, Any] | None = node.options or None
        deps: tuple[Any, ...] = node.depends_on
        if deps:
            ids: list[str] = []
            for d in deps:
                if isinstance(d, str):
                    ids.append(d)
                elif isinstance(d, TaskFuture):
                    ids.append(d.id)
                else:
                    ids.append(futs[d].id)
            opts = {**opts, "depends_on": ids} if opts else {"depends_on": ids}
        decode: bool | None = node.decode
        fut = TaskFuture(
            owner,
            task_id or picked[node.index],
            node.kind,
            data,
            decodes if decode is None else decode,
            opts,
        )
        futs[node] = fut
        fresh.append(fut)
    return futs, fresh


def index(inflight: dict[str, TaskFuture], futures: list[TaskFuture]) -> None:
    """Add `futures` to `inflight` by id."""
    for fut in futures:
        inflight[fut.id] = fut


def resolve_ok(
    inflight: dict[str, TaskFuture],
    ids: Sequence[str],
    outputs: Sequence[bytes],
    attempts: Sequence[int],
    host_ids: Sequence[str],
) -> list[TaskFuture]:
    """Finish the futures of succeeded results (ResultBatch's columns), taking them out of
    `inflight`; those done. An id not in flight (a redelivered result) is skipped."""
    done: list[TaskFuture] = []
    for task_id, output, n, host_id in zip(ids, outputs, attempts, host_ids, strict=True):
        fut = inflight.pop(task_id, None)
        if fut is None:
            continue
        fut._output = output
        fut._attempts = n
        fut._host_id = host_id
        fut._state = _SUCCEEDED
        fut._payload = None
        done.append(fut)
    return done


def wake(done: list[TaskFuture]) -> None:
    """Wake whoever waits on any of these just-finished futures."""
    for fut in done:
        if fut._waiter is not None or fut._listeners is not None:
            fut._notify()


def batch_extent(
    outbox: list[TaskFuture], max_batch: int, max_bytes: int, overhead: int, column_deps: bool
) -> tuple[int, bool, bool]:
    """How many of the outbox's first tasks make the next submit batch: at most `max_batch`,
    payloads (plus `overhead` each, plus their dependencies) within `max_bytes`, at least one.
    And whether they fit the column form (one kind, no options but dependencies the server
    reads as columns), and whether any has dependencies."""
    n = min(max_batch, len(outbox))
    size = 0
    kind = outbox[0].kind
    plain = True
    deps = False
    for i in range(n):
        fut = outbox[i]
        payload = fut._payload
        opts = fut._opts
        size += (len(payload) if payload is not None else 0) + overhead
        if opts is not None:
            if "depends_on" in opts:
                for dep in opts["depends_on"]:
                    size += 4 * len(dep) + 8
                deps = True
                if len(opts) > 1 or not column_deps:
                    plain = False
            else:
                plain = False
        if fut.kind != kind:
            plain = False
        if size > max_bytes and i:
            return i, plain, deps
    return n, plain, deps


def columns(sent: list[TaskFuture]) -> tuple[list[str], list[bytes]]:
    """The id and payload columns of a batch of not-yet-finished futures."""
    ids: list[str] = []
    payloads: list[bytes] = []
    for fut in sent:
        ids.append(fut.id)
        payload = fut._payload
        payloads.append(payload if payload is not None else b"")
    return ids, payloads


def unsent(chunk: list[TaskFuture]) -> list[TaskFuture]:
    """Those of `chunk` still to send (a future finished while queued, by a redelivered
    result, has dropped its payload)."""
    return [fut for fut in chunk if fut._payload is not None]
