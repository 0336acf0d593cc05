"""A busy host sends its results in batches: at most one message per COALESCE_S while many
handlers run, each result exactly once (agent_host/stream.py, docs/performance.md change 31).

The real AgentHost, in this process, against an orchestrator written from the .proto alone
(tests/test_started_ok.py), so that the test decides when each handler ends.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from swarm.agent_host.context import TaskContext
from swarm.agent_host.handlers import Handler, HandlerSet
from swarm.agent_host.stream import COALESCE_BUSY, COALESCE_S
from swarm.v1 import host_pb2

from tests.test_started_ok import host_against_fake, until

TASKS = 300
RELEASED_ONE_BY_ONE = 200  # the other 100 keep the host busy past COALESCE_BUSY meanwhile


def test_a_busy_host_batches_results_that_end_one_per_turn_and_sends_each_once() -> None:
    assert TASKS - RELEASED_ONE_BY_ONE >= COALESCE_BUSY
    keys = [f"t{i}" for i in range(TASKS)]

    async def scenario() -> None:
        gates = {key: asyncio.Event() for key in keys}

        async def wait(ctx: TaskContext, payload: bytes) -> bytes:
            await gates[ctx.task_id].wait()
            return b"ok"

        handlers = HandlerSet({"wait": Handler("wait", wait, True)}, [])
        loop = asyncio.get_running_loop()
        async with host_against_fake(handlers, TASKS) as (fake, host):
            batch = host_pb2.AssignBatch(
                tasks=[host_pb2.Assignment(task_id=k, attempt=1, kind="wait") for k in keys], seq=1
            )
            await fake.out.put(host_pb2.OrchestratorMessage(assign=batch))
            ex = host.executor
            await until(lambda: ex is not None and ex.busy == TASKS, "every handler waiting")
            first = set(keys[:RELEASED_ONE_BY_ONE])
            t0 = loop.time()
            for key in keys[:RELEASED_ONE_BY_ONE]:  # one handler ends per few turns
                gates[key].set()
                for _ in range(3):
                    await asyncio.sleep(0)
            await until(lambda: first <= fake.results(), "the first results in")
            elapsed = loop.time() - t0
            carrying = [b for b in fake.of("results") if first & {r.task_id for r in b.results}]
            # At most one write per COALESCE_S (and one more begun in the last one). A write per
            # turn of the loop sent 71 messages in 22 ms here.
            assert len(carrying) <= elapsed / COALESCE_S + 2, (len(carrying), elapsed)
            for key in keys[RELEASED_ONE_BY_ONE:]:
                gates[key].set()
            await until(lambda: fake.results() == set(keys), "every result in")
            sent = Counter(r.task_id for b in fake.of("results") for r in b.results)
            assert set(sent) == set(keys) and set(sent.values()) == {1}

    asyncio.run(scenario())
