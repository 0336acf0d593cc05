"""swarm.common.signals.two_stage, with real signals sent to this process."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from swarm.common.signals import two_stage

TIMEOUT_S = 5.0


async def until(check: object, what: str) -> None:
    """Poll (yielding to the loop, which runs the signal handlers) until check() is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not within {TIMEOUT_S} s: {what}")
        await asyncio.sleep(0.001)


def test_first_signal_calls_first_then_every_later_one_calls_second() -> None:
    calls: list[str] = []

    async def scenario() -> None:
        sigs = (signal.SIGUSR1, signal.SIGUSR2)
        with two_stage(lambda: calls.append("first"), lambda: calls.append("second"), signals=sigs):
            os.kill(os.getpid(), signal.SIGUSR1)
            await until(lambda: calls == ["first"], "the first signal handled")
            # Either signal counts toward the count: a SIGUSR2 after a SIGUSR1 is the second.
            os.kill(os.getpid(), signal.SIGUSR2)
            await until(lambda: calls == ["first", "second"], "the second signal handled")
            os.kill(os.getpid(), signal.SIGUSR1)
            await until(lambda: calls == ["first", "second", "second"], "a third signal")

    asyncio.run(scenario())


def test_handlers_are_removed_on_exit() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        with two_stage(lambda: None, lambda: None, signals=(signal.SIGUSR1,)):
            assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
        # Removed: the default action is back, and the loop no longer knows the signal.
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
        assert not loop.remove_signal_handler(signal.SIGUSR1)

    asyncio.run(scenario())


def test_a_raising_body_still_removes_the_handlers() -> None:
    async def scenario() -> None:
        with (
            pytest.raises(RuntimeError),
            two_stage(lambda: None, lambda: None, signals=(signal.SIGUSR2,)),
        ):
            raise RuntimeError("body failed")
        assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL

    asyncio.run(scenario())
