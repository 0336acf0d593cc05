"""Runs assignments on agents: the host's hot path.

A task goes to an idle agent. An `async def` handler is started eagerly, inside the call that
received it: if it finishes without suspending (a no-op, a cache hit) that is all. A handler
that really awaits is driven by the executor itself, not by an asyncio.Task of its own: its Job
registers itself as the done-callback of the future the handler awaits and steps the coroutine
when it completes, as a Task would (`Executor._step`). That saves the Task, its registry entry,
its wake-up wrapper and its context per in-flight task (W6: ~600 of ~2,000 bytes). While it
steps, the Job is asyncio's current task (`asyncio.current_task()` returns it), and it offers
the part of the Task API that asyncio's own helpers use on their current task (`cancel`,
`cancelling`, `uncancel`), so `asyncio.timeout`, `asyncio.TaskGroup` and `asyncio.wait_for`
work inside handlers. Plain `def` handlers run in a thread pool. Results are appended to
`Outbox`, which the stream writer sends in batches.

The pool grows toward max_agents while tasks queue with no idle agent, and shrinks back to
min_agents after idle_ttl_s without a queue; `capacity` is what heartbeats report.

Whatever user code raises (any BaseException, SystemExit and a CancelledError nobody asked for
included) or returns that cannot be encoded ends that attempt as a HANDLER_ERROR, described best
effort (agent_host/errors.py), and frees its agent: only a real process death ends a host.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging

# asyncio's own hooks for code that runs a coroutine without a Task (as other event loops'
# task implementations do): they make `asyncio.current_task()` name the Job while it steps.
from asyncio.tasks import _enter_task, _leave_task
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from swarm.agent_host.context import Agent, TaskContext
from swarm.agent_host.errors import call_def_handler, describe
from swarm.agent_host.handlers import HandlerSet
from swarm.agent_host.outbox import Outbox
from swarm.common.grpc_options import MAX_OUTPUT_BYTES

log = logging.getLogger("swarm.agent_host")

# FailureReason numbers of swarm.v1 (kept here so the hot path needs no enum lookups).
HANDLER_ERROR = 1
TIMEOUT = 2
NO_HANDLER = 6


class Job(TaskContext):
    """One attempt of one task on this host. It is also the handler's TaskContext (one object
    per in-flight task, not two) and, while its async handler runs, the stand-in for the
    asyncio.Task it does not have (module docstring)."""

    __slots__ = (
        "cancel_requests",
        "cancelled",
        "context",
        "coro",
        "executor",
        "future",
        "must_cancel",
        "payload",
        "report_start",
        "reported",
        "timed_out",
        "timeout_s",
    )

    def __init__(self, key: str, attempt: int, kind: str, payload: bytes, timeout_s: float) -> None:
        self.key = key
        self.attempt = attempt
        self.kind = kind
        self.payload = payload
        self.timeout_s = timeout_s
        self._deps = None  # the dependencies' ids and outputs, set by the stream
        self._labels = None
        self.agent: Agent | None = None  # type: ignore[assignment]  # set when it starts
        self.resources = _NO_RESOURCES
        # What to cancel: the future the async handler awaits now (None while it is being
        # stepped or is about to be), or a sync handler's thread-pool future.
        self.future: asyncio.Future[Any] | None = None
        self.coro: Any = None  # the async handler's coroutine while it is in flight
        # Its own contextvars context, once a step of its handler set a ContextVar (None until
        # then: its steps run in a fresh copy of the host's, see Executor._run_step).
        self.context: contextvars.Context | None = None
        self.executor: Executor | None = None  # set when it starts
        self.cancel_requests = 0  # Task.cancelling(): cancel() calls not yet uncancel()ed
        self.must_cancel = False  # a cancel() that found no future to cancel: thrown next step
        self.cancelled = False  # fenced or cancelled by the orchestrator: report nothing
        self.timed_out = False
        self.report_start = False  # run only once the orchestrator confirms its started notice
        self.reported = False  # its start was told to the orchestrator

    def __call__(self, future: asyncio.Future[Any]) -> None:
        """The done-callback of the future the handler awaits: step it (Task.__wakeup)."""
        executor = self.executor
        if executor is None or self.coro is None or future is not self.future:
            return  # the coroutine ended meanwhile
        self.future = None
        try:
            future.result()
        except BaseException as exc:  # its outcome goes into the coroutine, as a Task does it
            executor._step(self, exc)
        else:
            executor._step(self, None)

    # -- the part of asyncio.Task's API that asyncio.timeout and TaskGroup use -------------

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the handler as Task.cancel does: the future it awaits, else its next step."""
        if self.coro is None:
            return False
        self.cancel_requests += 1
        future = self.future
        if future is not None and future.cancel(msg):
            return True
        self.must_cancel = True
        return True

    def cancelling(self) -> int:
        return self.cancel_requests

    def uncancel(self) -> int:
        if self.cancel_requests > 0:
            self.cancel_requests -= 1
        return self.cancel_requests

    def done(self) -> bool:
        return self.coro is None

    def get_name(self) -> str:
        return f"swarm-task-{self.key}"

    def get_coro(self) -> Any:
        return self.coro

    # -- what the stream sets: dependencies (ids and outputs, context.py), labels ----------

    def set_deps(self, ids: list[str], outputs: list[bytes]) -> None:
        self._deps = (ids, outputs)

    @property
    def labels(self) -> dict[str, str]:
        return self._labels or _NO_LABELS

    @labels.setter
    def labels(self, labels: dict[str, str] | None) -> None:
        self._labels = labels


_NOTHING = object()  # the handler returned nothing yet (it yielded)

# Shared by every job until it starts, and by every task without labels: read-only in practice.
_NO_RESOURCES: dict[str, Any] = {}
_NO_LABELS: dict[str, str] = {}


def _same_context(a: contextvars.Context, b: contextvars.Context) -> bool:
    """Whether a copy of `b` still holds what `b` holds (a few variables: a short loop)."""
    if len(a) != len(b):
        return False
    for var, value in a.items():  # noqa: SIM110 - a plain loop: all() of a generator costs more
        if b.get(var, _NOTHING) is not value:
            return False
    return True


def encode_output(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    # Any other value, str included, is JSON: what the SDK's default codec decodes.
    return json.dumps(value, separators=(",", ":")).encode()


class Executor:
    def __init__(
        self,
        handlers: HandlerSet,
        outbox: Outbox,
        *,
        min_agents: int = 500,
        max_agents: int | None = None,
        resources: dict[str, Any] | None = None,
        threads: int = 32,
        idle_ttl_s: float = 30.0,
    ) -> None:
        self.handlers = handlers.handlers
        self.outbox = outbox
        self.resources: dict[str, Any] = resources if resources is not None else {}
        self.min_agents = min_agents
        self.max_agents = max(max_agents or min_agents, min_agents)
        self.idle_ttl_s = idle_ttl_s
        self._next_agent = 0
        self.idle: list[Agent] = []
        self.capacity = 0
        self.spawn(min_agents)
        self.queue: deque[Job] = deque()
        # report_start jobs, by key: announced (or to be), held until the orchestrator confirms
        # it applied their started notice (`confirm`). Not started, so they hold no agent.
        self.held: dict[str, Job] = {}
        self.running: dict[str, Job] = {}
        self.done = 0
        self.accepting = True
        self._pool: ThreadPoolExecutor | None = None
        self._threads = threads
        self._last_busy = 0.0
        self._grew = False  # grew since the last shrink check: counts as busy
        self._pumping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # The host's contextvars context. Each handler step runs in a copy of it (O(1)), so what
        # a handler sets is seen by it alone, as with a Task of its own; a Job keeps its copy
        # only once a step changed it (a Task would keep one per task, ~70 bytes each).
        self._context = contextvars.copy_context()
        # The context the loop runs the Jobs' wake-ups in: another one, as a context cannot be
        # entered twice and each wake-up enters `_context` for the step itself.
        self._wake_context = contextvars.copy_context()
        # The timeout timers of running jobs with a timeout_s (most have none: no slot per Job).
        self._timers: dict[Job, asyncio.TimerHandle] = {}
        # Async handlers being waited for (cancel_running): a future of each one's end.
        self._ended: dict[Job, asyncio.Future[None]] = {}

    # ---- agents ----

    def spawn(self, n: int) -> None:
        start = self._next_agent
        self.idle.extend(map(Agent, range(start, start + n)))
        self._next_agent = start + n
        self.capacity += n

    def maybe_shrink(self, now: float) -> bool:
        """Drop idle agents beyond min_agents once nothing has queued for idle_ttl_s."""
        if self.queue or self._grew:
            self._last_busy = now
            self._grew = False
            return False
        excess = min(self.capacity - self.min_agents, len(self.idle))
        if excess <= 0 or now - self._last_busy < self.idle_ttl_s:
            return False
        del self.idle[len(self.idle) - excess :]
        self.capacity -= excess
        return True

    @property
    def busy(self) -> int:
        return len(self.running)

    # ---- work in ----

    def submit(self, jobs: list[Job]) -> None:
        for job in jobs:
            if job.report_start:
                # The writer sends its started notice next; it runs once confirmed (`confirm`).
                self.held[job.key] = job
                self.outbox.announce(job.key, job.attempt)
            else:
                self.queue.append(job)
        backlog = len(self.queue) - len(self.idle)
        if backlog > 0 and self.capacity < self.max_agents:
            self.spawn(min(backlog, self.max_agents - self.capacity))
            self.outbox.capacity_changed = True
            self._grew = True
        if not self._pumping:
            self._pump()

    def cancel(self, attempts: list[tuple[str, int]]) -> None:
        """Abort attempts the orchestrator no longer wants: their results would be stale."""
        for key, attempt in attempts:
            job = self.running.get(key)
            if job is not None and job.attempt == attempt:
                job.cancelled = True
                self._abort(job)  # finishing synchronously right now: dropped by `cancelled`
                continue
            held = self.held.get(key)
            if held is not None and held.attempt == attempt:
                held.cancelled = True
                del self.held[key]
                continue
            for queued in self.queue:
                if queued.key == key and queued.attempt == attempt:
                    queued.cancelled = True
                    self.queue.remove(queued)
                    break

    def unreported_starts(self) -> list[tuple[str, int]]:
        """Running jobs whose start the orchestrator has not been told of; marks them told.
        Derived from `running` at heartbeat time, so a task that ends sooner costs nothing."""
        out = [(j.key, j.attempt) for j in self.running.values() if not j.reported]
        for job in self.running.values():
            job.reported = True
        return out

    def confirm(self, attempts: list[tuple[str, int]]) -> None:
        """The orchestrator applied the started notices of these held jobs: queue them to run.
        A written notice alone is not enough: it dies with a process that dies right after
        (os._exit), and the orchestrator would not blame the task for that death. Attempts no
        longer held (cancelled, handed back, from a broken session) are ignored."""
        held, queue = self.held, self.queue
        for key, attempt in attempts:
            job = held.get(key)
            if job is not None and job.attempt == attempt:
                del held[key]
                job.reported = True
                queue.append(job)
        if self.accepting and not self._pumping:
            self._pump()

    def drop_unstarted(self) -> list[Job]:
        """A new session: every job not started yet, held or queued, was fenced when the last
        session ended (the orchestrator lost this host and requeued them elsewhere), and no
        confirmation can come for a held one: none of them may run. Running ones go in the
        hello, and the orchestrator cancels them. A stale queued job left here would also sit
        in the heartbeat's `held` beside a current attempt of the same task."""
        jobs = [*self.held.values(), *self.queue]
        for job in jobs:
            job.cancelled = True
        self.held.clear()
        self.queue.clear()
        return jobs

    def take_queue(self) -> list[Job]:
        """Everything not started, held jobs included (for a drain's hand-back)."""
        jobs = [*self.held.values(), *self.queue]
        self.held.clear()
        self.queue.clear()
        return jobs

    # ---- running ----

    def _start(self, job: Job, agent: Agent) -> None:
        job.agent = agent
        self.running[job.key] = job
        h = self.handlers.get(job.kind)
        if h is None:
            self._error(
                job, NO_HANDLER, "NoHandler", f"no handler for kind {job.kind!r} on this host", ""
            )
            return
        job.resources = self.resources
        job.executor = self
        if not h.is_async:
            self._start_sync(job, h.fn)
            return
        try:
            job.coro = h.fn(job, job.payload)  # the Job is the handler's TaskContext
        except BaseException as exc:  # it raised before its first await
            self._failed(job, exc)
            return
        self._step(job, None)
        if job.timeout_s and job.coro is not None:
            loop = asyncio.get_running_loop()
            self._timers[job] = loop.call_later(job.timeout_s, self._time_out, job)

    def _step(self, job: Job, exc: BaseException | None) -> None:
        """Run the handler to its next await (Task.__step), as asyncio's current task; then
        wait for what it awaits, or report how it ended."""
        loop = self._loop or self._bind_loop()
        coro = job.coro
        if job.must_cancel:
            job.must_cancel = False
            if not isinstance(exc, asyncio.CancelledError):
                exc = asyncio.CancelledError()
        # No Task is current here: the wake-ups run as loop callbacks, and `_pump`, where the
        # eager first steps run, leaves the Task it was called in for the whole batch.
        _enter_task(loop, job)  # type: ignore[arg-type]
        ended: BaseException | None = None
        value: Any = _NOTHING
        yielded: Any = None
        try:
            fn, arg = (coro.send, None) if exc is None else (coro.throw, exc)
            yielded = self._run_step(job, fn, arg)
        except StopIteration as stop:
            value = stop.value
        except BaseException as error:  # SystemExit too: user code must not end the host
            ended = error
        finally:
            _leave_task(loop, job)  # type: ignore[arg-type]
        if ended is not None:
            job.coro = None
            if isinstance(ended, asyncio.CancelledError):
                self._cancelled(job, ended)
            else:
                self._failed(job, ended)
        elif value is not _NOTHING:
            job.coro = None
            self._succeeded(job, value)
        elif yielded is None:  # a bare yield (sleep(0)): step again on the next turn
            loop.call_soon(self._step, job, None, context=self._wake_context)
        elif getattr(yielded, "_asyncio_future_blocking", None):
            yielded._asyncio_future_blocking = False
            job.future = yielded
            yielded.add_done_callback(job, context=self._wake_context)
            if job.must_cancel and yielded.cancel():
                job.must_cancel = False
        else:  # what a Task says of it, thrown into the handler on the next turn
            bad = RuntimeError(f"a handler yielded {yielded!r}, which is not a future")
            loop.call_soon(self._step, job, bad, context=self._wake_context)

    def _run_step(self, job: Job, fn: Callable[[Any], Any], arg: Any) -> Any:
        """`fn(arg)` in the Job's own context, or in a fresh copy of the host's, kept as the
        Job's own when the step changed it (a ContextVar set, or set to another value)."""
        ctx = job.context
        if ctx is not None:
            return ctx.run(fn, arg)
        base = self._context
        ctx = base.copy()
        try:
            return ctx.run(fn, arg)
        finally:
            # Checked inline first: the host's context is usually empty, and a call costs more
            # than comparing two lengths.
            if len(ctx) != len(base) or (base and not _same_context(ctx, base)):
                job.context = ctx

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        return self._loop

    def _cancelled(self, job: Job, exc: BaseException) -> None:
        """The handler ended cancelled: by us (fenced, shutting down: report nothing), by its
        timeout, or by itself (a CancelledError it raised or let through): a handler error,
        or the orchestrator would wait forever for a result."""
        if job.cancelled:
            self._release(job)
        elif job.timed_out:
            self._error(
                job, TIMEOUT, "TimeoutError", f"ran past its timeout of {job.timeout_s} s", ""
            )
        else:
            self._failed(job, exc)

    def _start_sync(self, job: Job, fn: Callable[..., Any]) -> None:
        loop = asyncio.get_running_loop()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="swarm-handler")
        fut = loop.run_in_executor(self._pool, call_def_handler, fn, job, job.payload)
        job.future = fut
        fut.add_done_callback(lambda f: self._sync_done(job, f))
        if job.timeout_s:
            self._timers[job] = loop.call_later(job.timeout_s, self._time_out, job)

    def _sync_done(self, job: Job, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            # A thread cannot be interrupted: the call is abandoned and its result ignored.
            if job.timed_out and not job.cancelled:
                self._error(
                    job, TIMEOUT, "TimeoutError", f"ran past its timeout of {job.timeout_s} s", ""
                )
            else:
                self._release(job)
            return
        exc = fut.exception()
        if exc is None:
            self._succeeded(job, fut.result())
        else:  # whatever it raised, SystemExit and CancelledError included
            self._failed(job, exc)

    def _time_out(self, job: Job) -> None:
        job.timed_out = True
        self._abort(job)

    @staticmethod
    def _abort(job: Job) -> None:
        """Cancel a running handler: its coroutine (as Task.cancel), or its thread's future."""
        if job.coro is not None:
            job.cancel()
        elif job.future is not None:
            job.future.cancel()

    def _succeeded(self, job: Job, value: Any) -> None:
        if not job.cancelled:
            try:
                output = encode_output(value)
            except BaseException as exc:  # a value of user code's own making: its repr raises
                self._failed(job, exc)
                return
            if len(output) > MAX_OUTPUT_BYTES:
                # Sent, it would fail the message and break the stream: the orchestrator would
                # count this host lost and move the task on, to fail the next host the same way.
                message = (
                    f"the handler returned {len(output)} bytes, over the limit of "
                    f"{MAX_OUTPUT_BYTES} for one output"
                )
                self._error(job, HANDLER_ERROR, "OutputTooLarge", message, "")
                return
            self.outbox.result(job.key, job.attempt, output)
        self._release(job)

    def _failed(self, job: Job, exc: BaseException) -> None:
        self._error(job, HANDLER_ERROR, *describe(exc))

    def _error(self, job: Job, reason: int, type_: str, message: str, tb: str) -> None:
        if not job.cancelled:
            self.outbox.error(job.key, job.attempt, reason, type_, message, tb)
        self._release(job)

    def _release(self, job: Job) -> None:
        if job.timeout_s:
            timer = self._timers.pop(job, None)
            if timer is not None:
                timer.cancel()
        if self.running.get(job.key) is job:
            del self.running[job.key]
        agent = job.agent
        job.future = None
        if self._ended:
            ended = self._ended.pop(job, None)
            if ended is not None and not ended.done():
                ended.set_result(None)
        if agent is None:
            return
        agent.done += 1
        self.done += 1
        self.idle.append(agent)
        if self.queue and not self._pumping:
            self._pump()

    def _pump(self) -> None:
        """Start queued jobs on idle agents. A loop, not recursion: jobs may finish inline.

        Each job's eager first step runs as its own current task (`_step`), so the Task this is
        called in (the stream's reader, or a job whose step just ended another) is left for the
        batch and entered again after it: once per batch, not per job."""
        queue, idle = self.queue, self.idle
        if not (queue and idle and self.accepting):
            return
        self._pumping = True
        loop = self._loop or self._bind_loop()
        outer = asyncio.current_task(loop)
        if outer is not None:
            _leave_task(loop, outer)
        try:
            while queue and idle and self.accepting:
                self._start(queue.popleft(), idle.pop())
        finally:
            if outer is not None:
                _enter_task(loop, outer)
            self._pumping = False

    def running_jobs(self) -> list[Job]:
        return list(self.running.values())

    def cancel_running(self) -> list[asyncio.Future[Any]]:
        """Cancel every running handler (their results are dropped); returns their futures,
        still pending while a handler's `finally` runs. One already cancelled or timed out is
        not cancelled again: that would interrupt its clean-up."""
        futures: list[asyncio.Future[Any]] = []
        for job in list(self.running.values()):
            if job.coro is not None:  # an async handler: a future of its end, made for this
                ended = self._ended.get(job)
                if ended is None:
                    ended = self._ended[job] = asyncio.get_running_loop().create_future()
                futures.append(ended)
            elif job.future is not None:
                futures.append(job.future)
            else:
                continue
            if not (job.cancelled or job.timed_out):
                self._abort(job)
            job.cancelled = True
        return futures

    def shutdown(self) -> list[asyncio.Future[Any]]:
        """Take no more work, drop what is queued, cancel every handler and abandon the thread
        pool; returns the handlers' futures. Stop first: each cancelled handler frees its
        agent, which would otherwise start the next queued job, one that nobody cancels. The
        dropped jobs are not lost: the orchestrator requeues whatever a departed host held."""
        self.accepting = False
        self.take_queue()
        futures = self.cancel_running()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        return futures

    async def aclose(self, timeout_s: float) -> None:
        """shutdown(), then wait up to timeout_s for the cancelled handlers to end, so that
        their `finally` blocks run while the resources they use are still open. A thread
        cannot be interrupted: its future ends at once and the thread is abandoned."""
        futures = self.shutdown()
        if futures:
            _, late = await asyncio.wait(futures, timeout=timeout_s)
            if late:
                log.warning("%d handlers still ran %.1f s after cancel", len(late), timeout_s)
