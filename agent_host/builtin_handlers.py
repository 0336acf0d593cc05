"""Built-in kinds every host serves: harmless ones, safe to offer any client.

    echo   payload -> the payload unchanged (dependency outputs are ignored)
    sleep  payload: milliseconds as decimal text, e.g. b"250" (empty: 0) -> the payload, after
           that long asleep (asyncio: it holds an agent, not the event loop)
    fail   payload: a message (UTF-8) -> raises RuntimeError with it: a HANDLER_ERROR

The kinds that harm, `burn` and `crash`, are in `unsafe_handlers.py` and are served only when
the host is started with --unsafe-test-kinds. protos/swarm/v1/host.proto lists them all.
"""

from __future__ import annotations

import asyncio

from swarm.agent_host.context import TaskContext
from swarm.agent_host.handlers import handler


@handler("echo")
async def echo(ctx: TaskContext, payload: bytes) -> bytes:
    """Return the payload unchanged."""
    return payload


@handler("sleep")
async def sleep(ctx: TaskContext, payload: bytes) -> bytes:
    """Sleep for the payload's milliseconds, then return the payload."""
    await asyncio.sleep(float(payload or b"0") / 1000.0)
    return payload


@handler("fail")
async def fail(ctx: TaskContext, payload: bytes) -> bytes:
    """Raise RuntimeError with the payload as its message."""
    raise RuntimeError(payload.decode(errors="replace") or "failed on purpose")
