"""Handlers of `swarm demo`, loaded by its hosts with `--module swarm.cli.demo_handlers`.

A Monte Carlo estimate of pi as a small graph: many `pi.sample` tasks (a fan-out), then one
`pi.reduce` that depends on all of them and receives their outputs through `ctx.deps`. Each
sample is seeded by its index, so the answer is the same whichever host and agent ran it.
Agents keep a count of the tasks they ran in their private `state`, which outlives each task:
the reduce reports the busiest agent, which shows agents being reused.
"""

from __future__ import annotations

import asyncio
import json
import os
import random

from swarm.agent_host import TaskContext, handler

CHUNK = 1000  # samples between yields to the event loop


@handler("pi.sample")
async def sample(ctx: TaskContext, payload: bytes) -> bytes:
    """Payload {"seed": int, "samples": int}; output the hits inside the unit quarter circle."""
    spec = json.loads(payload)
    rng = random.Random(spec["seed"])
    n = int(spec["samples"])
    hits = 0
    for start in range(0, n, CHUNK):
        for _ in range(min(CHUNK, n - start)):
            x, y = rng.random(), rng.random()
            hits += x * x + y * y <= 1.0
        # Yield between chunks, as an agent waiting on I/O would: other agents of this host
        # run meanwhile, so the fan-out spreads over many agents, not one per host.
        await asyncio.sleep(0)
    ctx.state["tasks"] = ctx.state.get("tasks", 0) + 1
    out = {
        "hits": hits,
        "samples": n,
        "agent": f"{os.getpid()}/{ctx.agent_id}",
        "agent_tasks": ctx.state["tasks"],
    }
    return json.dumps(out).encode()


@handler("pi.reduce")
async def reduce(ctx: TaskContext, payload: bytes) -> bytes:
    """Sum the samples' outputs (in ctx.deps) into the estimate."""
    parts = [json.loads(d) for d in ctx.deps]
    hits = sum(p["hits"] for p in parts)
    samples = sum(p["samples"] for p in parts)
    out = {
        "pi": 4.0 * hits / samples if samples else 0.0,
        "samples": samples,
        "parts": len(parts),
        "agents": len({p["agent"] for p in parts}),
        "busiest_agent_tasks": max((p["agent_tasks"] for p in parts), default=0),
    }
    return json.dumps(out).encode()
