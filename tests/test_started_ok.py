"""report_start work runs only once the orchestrator confirms its started notice (started_ok).

The real AgentHost, in this process, against an orchestrator written here from the .proto alone
(the generated stubs), so that the test decides when the confirmation goes out: a written
notice is not enough, as it can die with a host that dies right after it (os._exit with unread
data on its socket), and the orchestrator would not blame the task for that death.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
from swarm.agent_host.context import TaskContext
from swarm.agent_host.handlers import Handler, HandlerSet
from swarm.agent_host.host import AgentHost, HostConfig
from swarm.agent_host.lifecycle import Conn
from swarm.deploy.inproc import InProcessSwarm
from swarm.v1 import host_pb2, host_pb2_grpc, task_pb2

from tests.helpers import eventually
from tests.raw_client import spec
from tests.wire import CONNECT, Stream, hello

DEADLINE_S = 10.0
BEAT_S = 0.05


async def until(check: Callable[[], object], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not check():
        assert loop.time() < deadline, f"not within {DEADLINE_S} s: {what}"
        await asyncio.sleep(0.005)


def attempts(*pairs: tuple[str, int]) -> host_pb2.AttemptBatch:
    return host_pb2.AttemptBatch(
        attempts=[host_pb2.Attempt(task_id=k, attempt=a) for k, a in pairs]
    )


def assignment(key: str, attempt: int, report_start: bool) -> host_pb2.Assignment:
    return host_pb2.Assignment(task_id=key, attempt=attempt, kind="mark", report_start=report_start)


class FakeOrchestrator(host_pb2_grpc.HostServiceServicer):
    """One session at a time: records what the host sends, sends what the test puts in `out`."""

    def __init__(self) -> None:
        self.inbox: list[host_pb2.HostMessage] = []
        self.out: asyncio.Queue[host_pb2.OrchestratorMessage] = asyncio.Queue()
        self.ended = False

    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:  # type: ignore[override]
        hello = await context.read()
        self.inbox.append(hello)
        welcome = host_pb2.Welcome(heartbeat_interval_s=BEAT_S, lease_s=10.0, orchestrator_id="t")
        await context.write(host_pb2.OrchestratorMessage(welcome=welcome))

        async def read() -> None:
            while (msg := await context.read()) is not grpc.aio.EOF:
                self.inbox.append(msg)

        async def write() -> None:
            while True:
                await context.write(await self.out.get())

        reader = asyncio.create_task(read())
        writer = asyncio.create_task(write())
        try:
            await reader  # the host's goodbye (a drain) ends the call
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self.ended = True

    def of(self, which: str) -> list[Any]:
        return [getattr(m, which) for m in self.inbox if m.WhichOneof("msg") == which]

    def started(self) -> set[tuple[str, int]]:
        return {(a.task_id, a.attempt) for b in self.of("started") for a in b.attempts}

    def results(self) -> set[str]:
        return {r.task_id for b in self.of("results") for r in b.results}

    def returned(self) -> set[str]:
        return {a.task_id for b in self.of("returned") for a in b.attempts}

    def beats_since(self, n: int) -> list[set[str]]:
        """The `held` keys of each heartbeat among the messages from the n-th on."""
        return [
            {a.task_id for a in m.heartbeat.held}
            for m in self.inbox[n:]
            if m.WhichOneof("msg") == "heartbeat"
        ]


@asynccontextmanager
async def host_against_fake(
    handlers: HandlerSet, agents: int
) -> AsyncIterator[tuple[FakeOrchestrator, AgentHost]]:
    """A real AgentHost with these handlers, connected to a FakeOrchestrator on port 0."""
    fake = FakeOrchestrator()
    server = grpc.aio.server()
    host_pb2_grpc.add_HostServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    host = AgentHost(HostConfig(f"127.0.0.1:{port}", host_id="h", agents=agents), handlers)
    run = asyncio.create_task(host.run())
    try:
        await until(lambda: host.state is Conn.CONNECTED, "the host connected")
        yield fake, host
    finally:
        host.stop()
        await asyncio.gather(run, return_exceptions=True)
        await server.stop(0)


async def _with_host(scenario: Callable[[FakeOrchestrator, AgentHost, list[str]], Any]) -> None:
    ran: list[str] = []

    async def mark(ctx: TaskContext, payload: bytes) -> bytes:
        ran.append(ctx.task_id)
        return b"ran"

    handlers = HandlerSet({"mark": Handler("mark", mark, True)}, [])
    async with host_against_fake(handlers, 4) as (fake, host):
        await scenario(fake, host, ran)


def test_a_report_start_job_runs_only_after_its_started_ok_and_a_cancel_drops_it_while_held() -> (
    None
):
    async def scenario(fake: FakeOrchestrator, host: AgentHost, ran: list[str]) -> None:
        batch = host_pb2.AssignBatch(
            tasks=[assignment("a", 2, True), assignment("b", 2, True), assignment("c", 1, False)],
            seq=1,
        )
        await fake.out.put(host_pb2.OrchestratorMessage(assign=batch))
        await until(lambda: {("a", 2), ("b", 2)} <= fake.started(), "a and b announced")
        await until(lambda: "c" in fake.results(), "c (no report_start) ran at once")
        mark = len(fake.inbox)
        # A heartbeat written after the notices still holds a and b: announced, not run.
        await until(lambda: any({"a", "b"} <= h for h in fake.beats_since(mark)), "a, b held")
        assert ran == ["c"] and fake.results() == {"c"}
        await fake.out.put(host_pb2.OrchestratorMessage(cancel=attempts(("b", 2))))
        ok = attempts(("a", 1), ("a", 2), ("b", 2))  # a's stale attempt 1 is ignored
        await fake.out.put(host_pb2.OrchestratorMessage(started_ok=ok))
        await until(lambda: "a" in fake.results(), "a ran once confirmed")
        mark = len(fake.inbox)
        await until(lambda: fake.beats_since(mark), "a heartbeat after a's result")
        assert not fake.beats_since(mark)[0] & {"a", "b"}  # b was dropped by its cancel
        assert sorted(ran) == ["a", "c"] and fake.results() == {"a", "c"}

    asyncio.run(_with_host(scenario))


def test_a_drain_hands_back_a_held_report_start_job_unrun() -> None:
    async def scenario(fake: FakeOrchestrator, host: AgentHost, ran: list[str]) -> None:
        batch = host_pb2.AssignBatch(tasks=[assignment("d", 2, True)], seq=1)
        await fake.out.put(host_pb2.OrchestratorMessage(assign=batch))
        await until(lambda: ("d", 2) in fake.started(), "d announced")
        drain = host_pb2.DrainRequest(grace_s=5.0)
        await fake.out.put(host_pb2.OrchestratorMessage(drain=drain))
        await until(lambda: "d" in fake.returned(), "d handed back")
        await until(lambda: fake.ended, "the host said goodbye")
        # A confirmation that crosses the drain finds nothing held: d never runs here.
        assert ran == [] and not fake.results()

    asyncio.run(_with_host(scenario))


def _next_of(s: Stream, which: str) -> Any:
    """The next message of that kind from the orchestrator (welcomes, heartbeats skipped)."""
    while (msg := s.next()).WhichOneof("msg") != which:
        pass
    return getattr(msg, which)


def test_the_orchestrator_confirms_the_notice_of_a_task_re_sent_after_a_host_loss() -> None:
    """The edge: a started batch applied is answered with started_ok, for report_start only."""
    with InProcessSwarm(hosts=0) as c:
        first = Stream(c.channel, CONNECT)
        first.send(hello("a"))
        c.stub.Submit(task_pb2.SubmitRequest(tasks=[spec("t", "echo", b"x")]))
        (sent,) = _next_of(first, "assign").tasks
        assert sent.attempt == 1 and not sent.report_start
        first.send(host_pb2.HostMessage(started=attempts((sent.task_id, 1))))
        eventually(lambda: c.status().tasks.running == 1, what="t running on a")
        first.send(None)  # an end of stream without a drain: a is lost, t re-sent elsewhere
        second = Stream(c.channel, CONNECT)
        second.send(hello("b"))
        (again,) = _next_of(second, "assign").tasks
        assert again.attempt == 2 and again.report_start
        second.send(host_pb2.HostMessage(started=attempts((again.task_id, 2))))
        ok = _next_of(second, "started_ok")
        assert [(a.task_id, a.attempt) for a in ok.attempts] == [(again.task_id, 2)]
        second.send(None)
