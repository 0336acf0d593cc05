"""The agent pool: grows toward its maximum while work queues, shrinks when idle, reports it."""

from __future__ import annotations

import asyncio

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
