"""One open bidirectional stream, as the orchestrator serves it: a reader and a writer.

The reader applies what the peer sends; the writer sleeps until woken (`wake()`), then sends
everything queued since its last write, so batches grow with load without any timer. `run()`
supervises the two: the first to end (end of stream, an error, or `close()`) ends both.
"""

from __future__ import annotations

import asyncio

import grpc


class StreamSession:
    def __init__(self, context: grpc.aio.ServicerContext, name: str) -> None:
        self.context = context
        self.name = name
        self._wake = asyncio.Event()
        self.closed: str | None = None  # why the orchestrator closed it, once it did

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
            return reader in done and reader.exception() is None and self.closed is None
        finally:
            for t in (reader, writer):
                t.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
