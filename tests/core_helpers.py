"""Builders for driving the no-I/O core in unit tests."""

from __future__ import annotations

import random
from collections.abc import Iterable

from swarm.server.config import OrchestratorConfig
from swarm.server.core import Core
from swarm.server.hosts import HostHello, HostLoad, HostView
from swarm.server.model import Task, TaskError


def make_core(**overrides: object) -> Core:
    return Core(OrchestratorConfig(**overrides), random.Random(7))  # type: ignore[arg-type]


def join(
    core: Core, host_id: str, capacity: int = 10, kinds: Iterable[str] = ("echo",), now: float = 0.0
) -> HostView:
    hello = HostHello(host_id, 1, "test", frozenset(kinds), capacity, capacity)
    return core.host_joined(hello, now)


def submit(
    core: Core,
    *specs: tuple[str, str] | tuple[str, str, list[str]],
    client: str = "c",
    now: float = 0.0,
    **kw: object,
) -> None:
    tasks = []
    deps = []
    for spec in specs:
        task = Task(spec[0], spec[1], spec[0].encode())
        for k, v in kw.items():
            setattr(task, k, v)
        tasks.append(task)
        deps.append(list(spec[2]) if len(spec) > 2 else [])  # type: ignore[misc]
    core.submit(tasks, deps, client, now)


def take(host: HostView) -> list[Task]:
    out, host.outbox = host.outbox, []
    return out


def ok(
    core: Core, host: HostView, tasks: Iterable[Task], now: float = 0.0, output: bytes | None = None
) -> None:
    core.on_results(
        host,
        [(t.key, t.attempt, t.id.encode() if output is None else output, None) for t in tasks],
        now,
    )


def err(core: Core, host: HostView, task: Task, error: TaskError, now: float = 0.0) -> None:
    core.on_results(host, [(task.key, task.attempt, b"", error)], now)


def beat(core: Core, host: HostView, now: float) -> None:
    core.heartbeat(host, host.capacity, HostLoad(), now)
