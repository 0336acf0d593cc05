"""Handlers that the SDK's end-to-end tests load into real hosts (tests.client_handlers)."""

from __future__ import annotations

import json

from swarm.agent_host import TaskContext, handler


@handler("concat")
async def concat(ctx: TaskContext, payload: bytes) -> bytes:
    """Join the dependencies' outputs (in depends_on order) and the payload with '+'."""
    return b"+".join([*ctx.deps, payload] if payload else ctx.deps)


@handler("sum")
async def sum_deps(ctx: TaskContext, payload: bytes) -> int:
    """Sum the JSON numbers the dependencies returned."""
    return sum(json.loads(d) for d in ctx.deps)


@handler("double")
async def double(ctx: TaskContext, payload: bytes) -> int:
    """Twice the JSON number in the payload."""
    return 2 * json.loads(payload)


@handler("flaky")
async def flaky(ctx: TaskContext, payload: bytes) -> bytes:
    """Fail the first attempt, succeed after: shows retries."""
    if ctx.attempt <= 1:
        raise ConnectionError(f"attempt {ctx.attempt} failed on purpose")
    return payload
