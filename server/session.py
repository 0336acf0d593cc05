"""One open bidirectional stream, as the orchestrator serves it: a reader and a writer.

The reader applies what the peer sends; the writer sleeps until woken (`wake()`), then sends
everything queued since its last write, so batches grow with load without any timer. `run()`
supervises the two: the first to end (end of stream, an error, or `close()`) ends both.

A stream error (the peer went away, a write to a cancelled call, a fault seam's abort) is the
peer's business and ends the session quietly. Any other error is a bug of ours, in the core or
here: it is logged with its traceback as one, not passed off as a broken stream.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

log = logging.getLogger("swarm.server")

# What reading or writing a stream raises when the stream, not our code, failed.
STREAM_ERRORS = (grpc.RpcError, grpc.aio.BaseError)


class StreamSession:
    def __init__(self, context: grpc.aio.ServicerContext, name: str) -> None:
        self.context = context
        self.name = name
        self._wake = asyncio.Event()
        self.closed: str | None = None  # why the orchestrator closed it, once it did
        self.bug: BaseException | None = None  # the non-stream error that ended it, if one did

    def wake(self) -> None:
        self._wake.set()

    def close(self, why: str) -> None:
        self.closed = why
        self._wake.set()

    async def read(self) -> None:
        raise NotImplementedError

    async def write(self) -> None:
        raise NotImplementedError

    async def woken(self) -> bool:
        """Wait for work; False once the session is closed."""
        await self._wake.wait()
        self._wake.clear()
        return self.closed is None

    async def run(self) -> bool:
        """Run reader and writer until one ends; True when the peer ended its stream cleanly."""
        reader = asyncio.create_task(self.read(), name=f"{self.name}-read")
        writer = asyncio.create_task(self.write(), name=f"{self.name}-write")
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                exc = None if t.cancelled() else t.exception()
                if exc is not None and not isinstance(exc, STREAM_ERRORS):
                    self.bug = exc
                    log.error(
                        "bug: %s failed in our code, not its stream", t.get_name(), exc_info=exc
                    )
            return reader in done and reader.exception() is None and self.closed is None
        finally:
            for t in (reader, writer):
                t.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
