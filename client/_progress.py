"""Opt-in progress bars (`map(..., progress=True)`, `as_completed(..., progress=True)`, the
CLI's `swarm submit --from FILE`), drawn by tqdm on stderr.

tqdm rather than our own bar: it throttles redraws, sizes to the terminal, shows rate and ETA
and degrades to plain lines where stderr is no tty. Off (the default) nothing here is imported
or called: no listener is attached and a future's completion costs what it always did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import IO, Any

from swarm.client._future import TaskFuture
from swarm.client._waiting import as_completed

Progress = bool | str  # True: a bar with the default label; a str: the bar's label


class Bar:
    """One bar, advanced by the futures it tracks as they finish; counts the failed ones."""

    def __init__(
        self, progress: Progress, total: int | None = None, *, file: IO[str] | None = None
    ) -> None:
        from tqdm import tqdm  # only when a bar is asked for

        label = progress if isinstance(progress, str) else "tasks"
        self.failed = 0
        self._tracked = 0
        self._sealed = False  # every future is tracked: close once the last one finishes
        self._bar: Any = tqdm(total=total, desc=label, unit="task", file=file, dynamic_ncols=True)

    def track(self, futures: Iterable[TaskFuture]) -> None:
        """Advance once per future as each finishes (at once for those already done)."""
        for fut in futures:
            self._tracked += 1
            if fut.done():
                self._advance(fut)
            else:
                if fut._listeners is None:
                    fut._listeners = []
                fut._listeners.append(self._advance)
        bar = self._bar
        if bar.total is None or bar.total < self._tracked:
            bar.total = self._tracked  # an iterable of payloads: the total grows as it is read
            bar.refresh()

    def seal(self) -> None:
        """No more futures come: the bar closes when the tracked ones have finished."""
        self._sealed = True
        if self._bar.n >= self._tracked:
            self.close()

    def _advance(self, fut: TaskFuture) -> None:
        if not fut._succeeded():
            self.failed += 1
            self._bar.set_postfix(failed=self.failed, refresh=False)
        self._bar.update(1)
        if self._sealed and self._bar.n >= self._tracked:
            self.close()

    def step(self, failed: bool = False) -> None:
        """Advance by one by hand (as_completed's consumer, rather than a listener)."""
        if failed:
            self.failed += 1
            self._bar.set_postfix(failed=self.failed, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()  # idempotent in tqdm


async def as_completed_with_bar(
    futures: Iterable[TaskFuture],
    progress: Progress,
    timeout: float | None,  # noqa: ASYNC109 - as_completed's own, passed on
) -> AsyncIterator[TaskFuture]:
    futs = list(dict.fromkeys(futures))
    bar = Bar(progress, len(futs))
    try:
        left = len(futs)
        async for fut in as_completed(futs, timeout=timeout):
            bar.step(not fut._succeeded())
            left -= 1
            if not left:
                bar.close()  # before the last is yielded: its consumer may stop right there
            yield fut
    finally:
        bar.close()
