"""Handlers that misbehave in every way user code can short of ending its process: loaded into
test hosts with --module. The payload names the misdeed (`MISDEEDS`); `hostile` does it from an
`async def` handler, `hostile_def` from a plain `def` one (the thread pool)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NoReturn

from swarm.agent_host import TaskContext, handler


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ of this exception raises")


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("__repr__ of this object raises")


class _BadStrSystemExit(SystemExit):
    def __str__(self) -> str:
        raise SystemExit("and so does its __str__")


class _Custom(BaseException):
    pass


def _raise(exc: BaseException) -> Callable[[], NoReturn]:
    def do() -> NoReturn:
        raise exc

    return do


def _stop_iteration() -> NoReturn:
    next(iter(()))  # the classic: an empty iterator's next() escapes as StopIteration
    raise AssertionError("unreachable")


MISDEEDS: dict[str, Callable[[], Any]] = {
    "bad_str": _raise(_BadStr("unprintable")),
    "bad_repr": _raise(ValueError(_BadRepr(), 2)),  # str() of two args is their tuple's repr
    "bad_str_system_exit": _raise(_BadStrSystemExit()),
    "surrogate": _raise(ValueError("lone surrogate \ud800 in the message")),
    "system_exit": _raise(SystemExit(3)),
    "keyboard_interrupt": _raise(KeyboardInterrupt()),
    "generator_exit": _raise(GeneratorExit()),
    "custom_base": _raise(_Custom("a BaseException of its own")),
    "cancelled": _raise(asyncio.CancelledError()),  # not asked for by the host
    "stop_iteration": _stop_iteration,
    "unencodable": lambda: object(),  # neither bytes nor JSON
    "unencodable_repr": lambda: {"k": _BadRepr()},
}


@handler("hostile")
async def hostile(ctx: TaskContext, payload: bytes) -> Any:
    await asyncio.sleep(0)  # misbehave after a suspension too, not only in the eager first step
    return MISDEEDS[payload.decode()]()


@handler("hostile_eager")
async def hostile_eager(ctx: TaskContext, payload: bytes) -> Any:
    return MISDEEDS[payload.decode()]()


@handler("hostile_def")
def hostile_def(ctx: TaskContext, payload: bytes) -> Any:
    return MISDEEDS[payload.decode()]()
