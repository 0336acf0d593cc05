"""Built-in kinds that harm their host, for tests and benchmarks only: served only when the host
is started with --unsafe-test-kinds (`handlers.load(..., test_kinds=True)`). Offered by default,
any client could end every host (`crash`) or stall every event loop (`burn`).

    burn   payload: milliseconds as decimal text -> the payload, after burning that long of
           pure-Python CPU on the event loop (nothing else on the host runs meanwhile)
    crash  payload ignored -> the host process ends at once (exit code 70), as a segfault in
           a C extension would: no result; the orchestrator sees the host lost
"""

from __future__ import annotations

import os
import time

from swarm.agent_host.context import TaskContext
from swarm.agent_host.handlers import handler


@handler("burn")
async def burn(ctx: TaskContext, payload: bytes) -> bytes:
    """Burn the payload's milliseconds of pure-Python CPU on the event loop, return the payload."""
    end = time.perf_counter() + float(payload or b"0") / 1000.0
    n = 0
    while time.perf_counter() < end:
        n += 1
    return payload


@handler("crash")
async def crash(ctx: TaskContext, payload: bytes) -> bytes:
    """End the host process at once, as a segfault in a C extension would."""
    os._exit(70)
