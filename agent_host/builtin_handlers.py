"""Built-in kinds for demos, tests and benchmarks. Payloads are JSON numbers where they say so."""

from __future__ import annotations

import asyncio
import os
import time

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


@handler("burn")
async def burn(ctx: TaskContext, payload: bytes) -> bytes:
    """Burn the payload's milliseconds of pure-Python CPU on the event loop, return the payload."""
    end = time.perf_counter() + float(payload or b"0") / 1000.0
    n = 0
    while time.perf_counter() < end:
        n += 1
    return payload


@handler("fail")
async def fail(ctx: TaskContext, payload: bytes) -> bytes:
    """Raise RuntimeError with the payload as its message."""
    raise RuntimeError(payload.decode(errors="replace") or "failed on purpose")


@handler("crash")
async def crash(ctx: TaskContext, payload: bytes) -> bytes:
    """End the host process at once, as a segfault in a C extension would."""
    os._exit(70)
