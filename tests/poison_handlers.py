"""A handler that ends its host's process, loaded into test hosts with --module."""

from __future__ import annotations

import os

from swarm.agent_host import TaskContext, handler


@handler("poison")
async def poison(ctx: TaskContext, payload: bytes) -> bytes:
    """Ends the host at once, as a segfaulting extension or a stray os._exit would."""
    os._exit(1)
