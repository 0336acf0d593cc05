"""Handlers and hooks whose life is written, one line per event, to $SWARM_TEST_MARKER."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from swarm.agent_host import TaskContext, handler, on_shutdown, on_startup

MARKER_ENV = "SWARM_TEST_MARKER"


def mark(line: str) -> None:
    with Path(os.environ[MARKER_ENV]).open("a") as f:
        f.write(line + "\n")


@on_startup
async def open_resource(res: dict[str, Any]) -> None:
    res["open"] = True
    mark("startup")


@handler("hold")
async def hold(ctx: TaskContext, payload: bytes) -> bytes:
    """Runs until cancelled; its `finally` awaits, then records whether the resource is open."""
    mark(f"started {ctx.task_id}")
    try:
        await asyncio.sleep(3600)
    finally:
        await asyncio.sleep(0.05)  # clean-up that awaits: only an awaited handler gets this far
        mark(f"finally {ctx.task_id} {'open' if ctx.resources.get('open') else 'closed'}")
    return b""


@on_shutdown
async def close_resource(res: dict[str, Any]) -> None:
    res["open"] = False
    mark("shutdown")


@on_shutdown
async def failing_close(res: dict[str, Any]) -> None:
    """Runs first (hooks run last registered first); its error must not stop close_resource."""
    raise RuntimeError("this close fails")
