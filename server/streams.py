"""What every stream pays before it is trusted: a slot under its kind's cap, and a first message
within the deadline.

A stream that never sends its first message (`open`, `hello`) holds a call, its buffers and a
handler; without a deadline and a cap, a peer could hold thousands. So both kinds, Session and
Connect, enter through `StreamSlots.hold` and `first_message`: one more stream than the cap
(OrchestratorConfig.max_session_streams / max_host_streams) ends at once with
RESOURCE_EXHAUSTED, and one silent past `first_message_timeout_s` with DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from swarm.server.rpc import fail


class StreamSlots:
    """Counts the open streams of one kind; `hold` refuses one past the limit."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        self.open = 0

    @asynccontextmanager
    async def hold(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        if self.open >= self.limit:
            await fail(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self.open} {self.kind} streams are open, the limit is {self.limit}: "
                "close one, or retry later",
            )
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1


async def first_message(context: grpc.aio.ServicerContext, which: str, timeout_s: float) -> Any:
    """The stream's first message, which must set the `which` member of its oneof."""
    try:
        first = await asyncio.wait_for(context.read(), timeout_s)
    except TimeoutError:
        await fail(
            context,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"no first message ({which}) within {timeout_s:g} s",
        )
    if first is grpc.aio.EOF or first.WhichOneof("msg") != which:
        await fail(
            context, grpc.StatusCode.INVALID_ARGUMENT, f"the first message must be {which}", which
        )
    return first
