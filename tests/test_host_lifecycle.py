"""The agent host's lifecycle: the transition table, shutdown hooks, handlers awaited on exit."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from swarm.agent_host import on_shutdown
from swarm.agent_host.executor import Executor, Job
from swarm.agent_host.handlers import Handler, HandlerSet, collect
from swarm.agent_host.host import AgentHost, HostConfig
from swarm.agent_host.lifecycle import EDGES, Conn, IllegalTransition, Lifecycle
from swarm.agent_host.outbox import Outbox
from swarm.v1 import task_pb2, types_pb2

from tests import lifecycle_handlers
from tests.helpers import eventually, local_swarm
from tests.lifecycle_handlers import MARKER_ENV

DEADLINE_S = 10.0


async def until(check: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not check():
        assert loop.time() < deadline, f"not within {DEADLINE_S} s: {what}"
        await asyncio.sleep(0.005)


# ---- the table ----


def at(state: Conn) -> Lifecycle:
    life = Lifecycle()
    life.state = state  # placed directly: the test is about the edges out of `state`
    return life


@pytest.mark.parametrize("old", list(Conn))
def test_every_edge_in_the_table_is_taken_and_every_other_is_refused(old: Conn) -> None:
    for new in Conn:
        life = at(old)
        if new in EDGES[old]:
            life.to(new)
            assert life.state is new
        else:
            with pytest.raises(IllegalTransition) as refused:
                life.to(new)
            assert (refused.value.old, refused.value.new) == (old, new)
            assert life.state is old  # a refused edge leaves the state as it was


def test_the_table_is_whole_and_stopped_is_final_and_reachable_from_everywhere() -> None:
    assert set(EDGES) == set(Conn)
    assert EDGES[Conn.STOPPED] == frozenset()
    assert all(Conn.STOPPED in EDGES[s] for s in Conn if s is not Conn.STOPPED)
    with pytest.raises(IllegalTransition, match="DRAINED -> CONNECTED"):
        at(Conn.DRAINED).to(Conn.CONNECTED)


# ---- in-process hosts (no orchestrator: port 1 refuses every connection) ----


def hooks(log: list[str], *, startup_fails: bool = False) -> HandlerSet:
    async def start(res: dict[str, Any]) -> None:
        res["opened"] = True
        log.append("startup")
        if startup_fails:
            raise RuntimeError("startup failed")

    async def close(res: dict[str, Any]) -> None:
        log.append(f"shutdown opened={res.get('opened')}")

    async def broken_close(res: dict[str, Any]) -> None:
        log.append("broken shutdown")
        raise RuntimeError("close failed")

    return HandlerSet({}, [start], [close, broken_close])


def unreachable_host(handlers: HandlerSet) -> AgentHost:
    return AgentHost(HostConfig("127.0.0.1:1", agents=1, reconnect_max_s=0.05), handlers)


def test_stop_ends_a_reconnecting_host_and_runs_the_shutdown_hooks() -> None:
    log: list[str] = []

    async def scenario() -> AgentHost:
        host = unreachable_host(hooks(log))
        run = asyncio.create_task(host.run())
        await until(lambda: host.sessions >= 2, "a reconnect after a failed session")
        host.stop()
        await asyncio.wait_for(run, DEADLINE_S)
        return host

    host = asyncio.run(scenario())
    assert host.state is Conn.STOPPED
    # Last registered first; the raising hook does not keep `close` from running.
    assert log == ["startup", "broken shutdown", "shutdown opened=True"]


def test_a_drain_without_an_orchestrator_leaves() -> None:
    async def scenario() -> AgentHost:
        host = unreachable_host(hooks([]))
        run = asyncio.create_task(host.run())
        await until(lambda: host.sessions >= 1, "a first session")
        host.drain()
        await asyncio.wait_for(run, DEADLINE_S)
        return host

    assert asyncio.run(scenario()).state is Conn.STOPPED


def test_shutdown_hooks_run_when_the_host_stops_on_an_error() -> None:
    log: list[str] = []
    host = unreachable_host(hooks(log, startup_fails=True))
    with pytest.raises(RuntimeError, match="startup failed"):
        asyncio.run(host.run())
    assert log == ["startup", "broken shutdown", "shutdown opened=True"]
    assert host.state is Conn.STOPPED


def test_on_shutdown_marks_and_collect_finds_hooks() -> None:
    @on_shutdown
    async def close(res: dict[str, Any]) -> None:
        pass

    handlers = collect([lifecycle_handlers])
    assert handlers.kinds == ["hold"]
    assert [h.__name__ for h in handlers.startup] == ["open_resource"]
    assert [h.__name__ for h in handlers.shutdown] == ["close_resource", "failing_close"]


# ---- handlers awaited on exit ----


def test_aclose_awaits_cancelled_handlers_so_their_finally_runs() -> None:
    events: list[str] = []

    async def hold(ctx: Any, payload: bytes) -> bytes:
        events.append("started")
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # a clean-up that awaits
            events.append("finally")
        return b""

    async def scenario() -> None:
        handlers = HandlerSet({"hold": Handler("hold", hold, True)}, [])
        ex = Executor(handlers, Outbox(), min_agents=2)
        ex.submit([Job("t1", 1, "hold", b"", 0.0), Job("t2", 1, "hold", b"", 0.0)])
        assert events == ["started", "started"]
        await ex.aclose(DEADLINE_S)
        assert events == ["started", "started", "finally", "finally"]  # before aclose returned
        assert ex.outbox.count == 0  # cancelled on shutdown: no result is reported

    asyncio.run(scenario())


# ---- a real host process ----


def test_a_drained_host_process_awaits_its_handlers_then_runs_on_shutdown(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with local_swarm(
        hosts=1,
        agents_per_host=2,
        modules=["tests.lifecycle_handlers"],
        host_args=["--drain-grace", "0.3"],
        env={MARKER_ENV: str(marker)},
    ) as c:
        spec = types_pb2.TaskSpec(id="t1", kind="hold", payload=b"")
        c.stub.Submit(task_pb2.SubmitRequest(tasks=[spec]), timeout=5)
        eventually(lambda: "started t1" in marker.read_text(), 20, what="t1 started")
        pid = c.host_pids[0]
        assert pid is not None
        c.kill_host(0, signal.SIGTERM)  # drains: past the 0.3 s grace, t1 is cancelled
        assert c.host_exit(pid, 20) == 0, c.log("host0")
    lines = marker.read_text().splitlines()
    assert lines == ["startup", "started t1", "finally t1 open", "shutdown"], lines


def test_wait_for_returns_on_the_state_and_fails_once_stopped() -> None:
    async def scenario() -> None:
        life = Lifecycle("h")
        waiter = asyncio.create_task(life.wait_for(Conn.CONNECTED))
        life.to(Conn.CONNECTING)
        await asyncio.sleep(0)
        assert not waiter.done()  # CONNECTING is not what it waits for
        life.to(Conn.CONNECTED)
        await asyncio.wait_for(waiter, 1)
        doomed = asyncio.create_task(life.wait_for(Conn.DRAINED))
        life.to(Conn.STOPPED)
        with pytest.raises(RuntimeError, match="stopped before"):
            await asyncio.wait_for(doomed, 1)

    asyncio.run(scenario())


def test_a_new_session_drops_every_unstarted_job_of_the_last() -> None:
    """A reconnect: queued and held jobs of the broken session were fenced and requeued by the
    orchestrator; none of them may run here, and none may stay in the next heartbeat's `held`
    beside a current attempt of the same task. Running ones stay (the hello lists them)."""
    events: list[str] = []

    async def hold(ctx: Any, payload: bytes) -> bytes:
        events.append(f"started {ctx.task_id}")
        await asyncio.sleep(3600)
        return b""

    async def scenario() -> None:
        handlers = HandlerSet({"hold": Handler("hold", hold, True)}, [])
        ex = Executor(handlers, Outbox(), min_agents=1)
        queued = Job("q", 1, "hold", b"", 0.0)
        held = Job("h", 1, "hold", b"", 0.0)
        held.report_start = True
        ex.submit([Job("r", 1, "hold", b"", 0.0), queued, held])
        await asyncio.sleep(0)
        assert events == ["started r"] and list(ex.queue) == [queued] and "h" in ex.held
        dropped = ex.drop_unstarted()
        assert {j.key for j in dropped} == {"q", "h"} and all(j.cancelled for j in dropped)
        assert not ex.queue and not ex.held and [j.key for j in ex.running_jobs()] == ["r"]
        ex.cancel([("r", 1)])  # frees the one agent: nothing dropped may take it
        for _ in range(5):
            await asyncio.sleep(0)
        assert events == ["started r"], events
        await ex.aclose(DEADLINE_S)

    asyncio.run(scenario())
