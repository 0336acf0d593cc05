"""The agent pool: grows toward its maximum while work queues, shrinks when idle, reports it."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from swarm.agent_host import handlers
from swarm.agent_host.executor import Executor, Job
from swarm.agent_host.outbox import Outbox

from tests.helpers import eventually, local_swarm
from tests.raw_client import RawClient, spec


def test_executor_grows_under_a_queue_then_shrinks_when_idle() -> None:
    async def scenario() -> None:
        progress = asyncio.Event()
        outbox = Outbox(progress.set)
        ex = Executor(handlers.load([]), outbox, min_agents=2, max_agents=5, idle_ttl_s=1.0)
        jobs = [Job(f"t{i}", 1, "sleep", b"50", 0.0) for i in range(8)]
        ex.submit(jobs)
        assert ex.capacity == 5 and ex.busy == 5 and len(ex.queue) == 3
        assert ex.outbox.capacity_changed
        now = asyncio.get_running_loop().time()
        assert not ex.maybe_shrink(now)  # it just grew: busy
        async with asyncio.timeout(10):
            while ex.done < 8:  # woken by each result the outbox takes
                await progress.wait()
                progress.clear()
        assert ex.done == 8 and ex.capacity == 5
        assert not ex.maybe_shrink(now + 0.5)  # idle, but not for idle_ttl_s yet
        assert ex.maybe_shrink(now + 1.5)
        assert ex.capacity == 2 and len(ex.idle) == 2
        ex.shutdown()

    asyncio.run(scenario())


def test_a_host_grows_reports_its_capacity_and_shrinks_back() -> None:
    args = ["--max-agents", "60", "--idle-ttl", "0.5"]
    with (
        local_swarm(hosts=1, agents_per_host=10, host_args=args) as c,
        RawClient(c.address) as client,
    ):
        assert c.status().hosts[0].agents == 10
        ids = [f"s{i}" for i in range(300)]
        client.submit_ok([spec(i, "sleep", 300) for i in ids])
        grown = eventually(
            lambda: (h := c.status().hosts[0]).agents >= 40 and h.running > 10 and h, 15, 0.02
        )
        assert grown.max_agents == 60
        client.wait_results(len(ids), 60)
        eventually(lambda: c.status().hosts[0].agents == 10, 15, 0.05, what="shrunk back")
        client.assert_exactly_once(ids)


# ---- handlers driven without an asyncio.Task of their own (executor.py) ----


REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request")


def _outcomes(outbox: Outbox) -> dict[str, tuple[bytes, str]]:
    """Each reported result by task id: (output, error type) of the outbox's batches."""
    out: dict[str, tuple[bytes, str]] = {}
    for msg in outbox.take_results():
        for r in msg.results.results:
            out[r.task_id] = (r.output, r.error.type)
    return out


def _run_jobs(fns: dict[str, Any], jobs: list[Job], until_done: int) -> tuple[Executor, Outbox]:
    async def scenario() -> tuple[Executor, Outbox]:
        progress = asyncio.Event()
        outbox = Outbox(progress.set)
        hs = handlers.HandlerSet(
            {k: handlers.Handler(k, f, asyncio.iscoroutinefunction(f)) for k, f in fns.items()}, []
        )
        ex = Executor(hs, outbox, min_agents=len(jobs))
        ex.submit(jobs)
        async with asyncio.timeout(10):
            while ex.done < until_done:
                await progress.wait()
                progress.clear()
        ex.shutdown()
        return ex, outbox

    return asyncio.run(scenario())


def test_asyncio_helpers_that_need_a_current_task_work_inside_handlers() -> None:
    async def timeouts(ctx: Any, payload: bytes) -> bytes:
        assert asyncio.current_task() is ctx  # the Job stands in for the Task it does not have
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(3600)
        except TimeoutError:
            pass
        await asyncio.wait_for(asyncio.sleep(0), 1)
        return b"timed out inside"

    async def group(ctx: Any, payload: bytes) -> bytes:
        async def child(n: int) -> int:
            await asyncio.sleep(0.001 * n)
            return n

        async with asyncio.TaskGroup() as tg:
            kids = [tg.create_task(child(n)) for n in range(3)]
        await asyncio.sleep(0)  # a bare yield
        return b"%d" % sum(k.result() for k in kids)

    async def group_fails(ctx: Any, payload: bytes) -> bytes:
        async def boom() -> None:
            await asyncio.sleep(0)
            raise ValueError("child failed")

        async with asyncio.TaskGroup() as tg:
            tg.create_task(boom())
            tg.create_task(asyncio.sleep(3600))  # cancelled by the group, as in a Task
        return b"unreachable"

    async def context(ctx: Any, payload: bytes) -> bytes:
        REQUEST.set(ctx.task_id)  # set in the eager first step, read after awaits
        await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        assert REQUEST.get() == ctx.task_id
        return b"|".join([ctx.task_id.encode(), *ctx.deps, ctx.labels.get("k", "").encode()])

    job = Job("ctx", 1, "context", b"", 0.0)
    job.set_deps(["a", "b"], [b"A", b"B"])
    job.labels = {"k": "v"}
    jobs = [
        Job("to", 1, "timeouts", b"", 0.0),
        Job("tg", 1, "group", b"", 0.0),
        Job("tgf", 1, "group_fails", b"", 0.0),
        job,
    ]
    fns = {"timeouts": timeouts, "group": group, "group_fails": group_fails, "context": context}
    ex, outbox = _run_jobs(fns, jobs, 4)
    got = _outcomes(outbox)
    assert got["to"] == (b"timed out inside", "")
    assert got["tg"] == (b"3", "")
    assert got["tgf"][1] == "ExceptionGroup"
    assert got["ctx"] == (b"ctx|A|B|v", "")
    assert job.dep_outputs == {"a": b"A", "b": b"B"}
    assert ex.busy == 0


def test_a_contextvar_a_handler_sets_is_its_own_as_with_a_task_each() -> None:
    """Concurrent handlers interleave their awaits; each sees only what it set itself, and one
    that sets nothing sees the host's value, also after the others have set theirs."""
    seen: dict[str, str] = {}
    both_set = asyncio.Event()
    order: list[str] = []

    async def setter(ctx: Any, payload: bytes) -> bytes:
        REQUEST.set(ctx.task_id)
        order.append(ctx.task_id)
        if len(order) == 2:
            both_set.set()
        await both_set.wait()  # the other one has set its value meanwhile
        await asyncio.sleep(0.001)
        return REQUEST.get().encode()

    async def reader(ctx: Any, payload: bytes) -> bytes:
        await both_set.wait()
        await asyncio.sleep(0)
        seen["reader"] = REQUEST.get("unset")
        return seen["reader"].encode()

    jobs = [Job("a", 1, "setter", b"", 0.0), Job("b", 1, "setter", b"", 0.0)]
    jobs.append(Job("r", 1, "reader", b"", 0.0))
    _, outbox = _run_jobs({"setter": setter, "reader": reader}, jobs, 3)
    got = _outcomes(outbox)
    assert got["a"] == (b"a", "") and got["b"] == (b"b", "")
    assert got["r"] == (b"unset", "")
    assert REQUEST.get("unset") == "unset"  # nothing leaked into the caller's context either


def test_timeouts_and_cancels_reach_a_handler_as_a_task_cancel_would() -> None:
    cleaned: list[str] = []

    async def hold(ctx: Any, payload: bytes) -> bytes:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # a clean-up that awaits still runs
            cleaned.append(ctx.task_id)
        return b""

    async def swallow(ctx: Any, payload: bytes) -> bytes:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return b"kept going"  # a handler may catch the cancel, as in a Task
        return b""

    async def scenario() -> dict[str, tuple[bytes, str]]:
        progress = asyncio.Event()
        outbox = Outbox(progress.set)
        hs = handlers.HandlerSet(
            {
                "hold": handlers.Handler("hold", hold, True),
                "swallow": handlers.Handler("swallow", swallow, True),
            },
            [],
        )
        ex = Executor(hs, outbox, min_agents=4)
        ex.submit(
            [
                Job("late", 1, "hold", b"", 0.02),  # its timeout_s passes
                Job("fenced", 1, "hold", b"", 0.0),  # the orchestrator cancels it
                Job("caught", 1, "swallow", b"", 0.02),
            ]
        )
        await asyncio.sleep(0)
        ex.cancel([("fenced", 1)])
        async with asyncio.timeout(10):
            while ex.done < 3:
                await progress.wait()
                progress.clear()
        ex.shutdown()
        return _outcomes(outbox)

    got = asyncio.run(scenario())
    assert got == {"late": (b"", "TimeoutError"), "caught": (b"kept going", "")}  # fenced: none
    assert sorted(cleaned) == ["fenced", "late"]
