"""Handlers: user code the host runs, registered by name with a decorator.

    from swarm.agent_host import handler, on_shutdown, on_startup

    @on_startup
    async def resources(res):            # once per host process, before the first task
        res["http"] = aiohttp.ClientSession()

    @on_shutdown
    async def close(res):                # once, on the way out (also after an error)
        await res["http"].close()

    @handler("fetch")
    async def fetch(ctx, payload: bytes) -> bytes:
        ctx.state["calls"] = ctx.state.get("calls", 0) + 1   # the agent's own, kept across tasks
        async with ctx.resources["http"].get(payload.decode()) as r:
            return await r.read()

The decorators only mark functions; the host collects the marked ones from the modules it loads
(`swarm host --module pkg.handlers`), so there is no process-wide registry to leak between tests.
A plain `def` handler runs in a thread pool so that it cannot block the event loop.

On exit the host cancels its handlers and awaits them (bounded) first, so that their `finally`
blocks still find the resources, then runs the shutdown hooks, last registered first.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
Hook = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger("swarm.agent_host")

_KIND_ATTR = "__swarm_kind__"
_STARTUP_ATTR = "__swarm_startup__"
_SHUTDOWN_ATTR = "__swarm_shutdown__"


def handler(name: str | None = None) -> Callable[[F], F]:
    """Mark a function as the handler of kind `name` (default: the function's name)."""

    def mark(fn: F) -> F:
        setattr(fn, _KIND_ATTR, name or fn.__name__)
        return fn

    return mark


def on_startup(fn: F) -> F:
    """Mark `async def f(resources: dict)` to run once per host before it takes work."""
    setattr(fn, _STARTUP_ATTR, True)
    return fn


def on_shutdown(fn: F) -> F:
    """Mark `async def f(resources: dict)` to run once when the host exits, however it exits,
    with the dict the start-up hooks filled: close there what they opened."""
    setattr(fn, _SHUTDOWN_ATTR, True)
    return fn


@dataclass(frozen=True, slots=True)
class Handler:
    kind: str
    fn: Callable[..., Any]
    is_async: bool


@dataclass(slots=True)
class HandlerSet:
    handlers: dict[str, Handler]
    startup: list[Hook]
    shutdown: list[Hook] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return sorted(self.handlers)


def collect(modules: Iterable[ModuleType]) -> HandlerSet:
    """Gather the marked handlers and start-up hooks of modules; a kind defined twice is refused."""
    handlers: dict[str, Handler] = {}
    startup: list[Hook] = []
    shutdown: list[Hook] = []
    for module in modules:
        for obj in vars(module).values():
            kind = getattr(obj, _KIND_ATTR, None)
            if isinstance(kind, str) and callable(obj):
                known = handlers.get(kind)
                if known is not None and known.fn is not obj:
                    raise ValueError(f"kind {kind!r} is defined twice ({known.fn} and {obj})")
                handlers[kind] = Handler(kind, obj, inspect.iscoroutinefunction(obj))
            marked = getattr(obj, _STARTUP_ATTR, False) is True
            if marked and callable(obj) and obj not in startup:
                startup.append(obj)
            marked = getattr(obj, _SHUTDOWN_ATTR, False) is True
            if marked and callable(obj) and obj not in shutdown:
                shutdown.append(obj)
    return HandlerSet(handlers, startup, shutdown)


async def run_shutdown(hooks: list[Hook], resources: dict[str, Any]) -> None:
    """Await every hook, last registered first (closing mirrors opening). A hook that raises
    is logged and the others still run: one failed close must not leak the other resources."""
    for hook in reversed(hooks):
        try:
            await hook(resources)
        except Exception:
            log.exception("shutdown hook %s failed", getattr(hook, "__qualname__", hook))


def load(
    module_names: Iterable[str], *, builtins: bool = True, test_kinds: bool = False
) -> HandlerSet:
    """The handlers of `module_names`, plus the harmless built-in kinds (`builtins`) and, only
    when `test_kinds` asks for them, the harmful ones (`burn`, `crash`: unsafe_handlers.py)."""
    modules = [importlib.import_module(name) for name in module_names]
    if test_kinds:
        from swarm.agent_host import unsafe_handlers

        modules.insert(0, unsafe_handlers)
    if builtins:
        from swarm.agent_host import builtin_handlers

        modules.insert(0, builtin_handlers)
    return collect(modules)
