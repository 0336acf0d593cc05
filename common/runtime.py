"""Event-loop set-up shared by every Swarm process: uvloop where available, asyncio elsewhere."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_PORT = 50051
DEFAULT_ADDRESS = f"127.0.0.1:{DEFAULT_PORT}"


def default_address() -> str:
    """Where clients and hosts connect by default: $SWARM_ADDRESS, else the local `swarm up`."""
    return os.environ.get("SWARM_ADDRESS") or DEFAULT_ADDRESS


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on uvloop when it is installed, else on stdlib asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
