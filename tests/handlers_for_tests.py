"""Handlers that check what they receive, loaded into test hosts with --module."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from swarm.agent_host import TaskContext, handler


@handler("expect_deps")
async def expect_deps(ctx: TaskContext, payload: bytes) -> bytes:
    """Payload: {"me": id, "deps": [ids]}. Checks each dependency's output is its id."""
    spec = json.loads(payload)
    got = [d.decode() for d in ctx.deps]
    if got != spec["deps"]:
        raise AssertionError(f"{spec['me']} expected outputs {spec['deps']}, got {got}")
    return spec["me"].encode()


@handler("sum_deps")
async def sum_deps(ctx: TaskContext, payload: bytes) -> bytes:
    """Sums its dependencies' JSON outputs."""
    return str(sum(json.loads(d) for d in ctx.deps)).encode()


@handler("special")
async def special(ctx: TaskContext, payload: bytes) -> bytes:
    return b"special"


@handler("cancellable")
async def cancellable(ctx: TaskContext, payload: bytes) -> bytes:
    """Sleeps long; writes the marker file named by its payload when cancelled."""
    import asyncio

    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        Path(payload.decode()).write_text(ctx.task_id)  # noqa: ASYNC240 - tiny, and a test
        raise
    return b"not cancelled"


@handler("flaky")
async def flaky(ctx: TaskContext, payload: bytes) -> bytes:
    """Fails on attempts before the payload's number, then succeeds."""
    if ctx.attempt < int(payload):
        raise ValueError(f"attempt {ctx.attempt} fails")
    return str(ctx.attempt).encode()


# ---- run log: counts executions across host processes (chaos tests) ----

RUNLOG_ENV = "SWARM_TEST_RUNLOG"


def _runlog(ctx: TaskContext, event: str) -> None:
    """Append "task_id attempt pid event wall_time" to the file $SWARM_TEST_RUNLOG names.

    One O_APPEND write of a short line per event, so lines from many processes never interleave.
    """
    path = os.environ.get(RUNLOG_ENV)
    if not path:
        return
    line = f"{ctx.task_id} {ctx.attempt} {os.getpid()} {event} {time.time():.6f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@handler("logged_sleep")
async def logged_sleep(ctx: TaskContext, payload: bytes) -> bytes:
    """Sleep the payload's milliseconds and return the payload, logging start, end or cancel."""
    _runlog(ctx, "start")
    try:
        await asyncio.sleep(float(payload or b"0") / 1000.0)
    except asyncio.CancelledError:
        _runlog(ctx, "cancel")
        raise
    _runlog(ctx, "end")
    return payload


@handler("big_output")
async def big_output(ctx: TaskContext, payload: bytes) -> bytes:
    """Payload: a byte count as text; returns that many bytes."""
    return b"o" * int(payload)
