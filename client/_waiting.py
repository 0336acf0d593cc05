"""Waiting on many futures as they finish: `as_completed`.

Apart from `_future.py` because it is an async generator, which mypyc (setup.py) does not
compile; the futures themselves are compiled where a compiler is at hand.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable

from swarm.client._errors import DeadlineExceeded
from swarm.client._future import TaskFuture


async def as_completed(
    futures: Iterable[TaskFuture],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - as in concurrent.futures
) -> AsyncIterator[TaskFuture]:
    """Yield each of `futures` as it finishes (done ones first); await what it yields.

    ```python
    async for fut in as_completed(futs, timeout=60):
        print(fut.id, await fut)
    ```

    Raises `DeadlineExceeded` when `timeout` seconds pass before all are done.
    """
    ready: deque[TaskFuture] = deque()
    waiting: list[TaskFuture] = []
    wake = asyncio.Event()

    def on_done(fut: TaskFuture) -> None:
        ready.append(fut)
        wake.set()

    for fut in dict.fromkeys(futures):  # a future listed twice is yielded once
        if fut.done():
            ready.append(fut)
        else:
            if fut._listeners is None:
                fut._listeners = []
            fut._listeners.append(on_done)
            waiting.append(fut)
    remaining = len(ready) + len(waiting)
    deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
    try:
        while remaining:
            if not ready:
                wake.clear()
                try:
                    async with asyncio.timeout_at(deadline):
                        await wake.wait()
                except TimeoutError:
                    raise DeadlineExceeded(
                        f"{remaining} task(s) had not finished after {timeout} s"
                    ) from None
                continue
            remaining -= 1
            yield ready.popleft()
    finally:
        for fut in waiting:
            if fut._listeners is not None and on_done in fut._listeners:
                fut._listeners.remove(on_done)
