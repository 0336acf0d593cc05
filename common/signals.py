"""The one signal policy of every Swarm process: the first SIGINT/SIGTERM asks for a graceful
end (drain, stop within the grace period), a second one asks to end now.

    with two_stage(first=host.drain, second=host.stop):
        await host.run()

Signals are handled at the entry points only (server/app.py, agent_host/main.py, cli/up.py):
library code never installs handlers, so in-process users keep control of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator

DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def two_stage(
    first: Callable[[], None],
    second: Callable[[], None],
    *,
    signals: Iterable[signal.Signals] = DEFAULT_SIGNALS,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Iterator[None]:
    """Call `first` on the first of `signals`, `second` on every later one (any of them counts:
    a Ctrl-C after a SIGTERM is the second). The handlers are removed on exit, which restores
    the default action, so a signal after the body ended is not silently swallowed."""
    loop = loop or asyncio.get_running_loop()
    sigs = tuple(signals)
    seen = 0

    def on_signal() -> None:
        nonlocal seen
        seen += 1
        (first if seen == 1 else second)()

    for sig in sigs:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)
