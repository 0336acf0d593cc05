"""The benchmark suite: W1-W7 and the seed's table, end to end through real processes.

Not part of the default run (pyproject's addopts deselect the `bench` marker):

    pytest tests/benchmarks -m bench                         # each workload once, checked
    SWARM_BENCH_QUICK=1 pytest tests/benchmarks -m bench     # the CI smoke pass (quick sizes)
    pytest tests/benchmarks -m bench --benchmark-enable --benchmark-autosave
    pytest tests/benchmarks -m bench --benchmark-enable --benchmark-compare   # vs the last save

pytest-benchmark times each round (one whole workload); the workload's own figures (tasks/s,
percentiles, failover counts) go in `extra_info`, and every output is checked in every round.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from swarm.bench import workloads
from swarm.bench.drivers import RawDriver, SdkDriver
from swarm.bench.local import bench_swarm
from swarm.bench.raw import RawSession
from swarm.deploy.local import LocalSwarm

T = TypeVar("T")

QUICK = os.environ.get("SWARM_BENCH_QUICK", "") not in ("", "0")
SIZES = workloads.QUICK if QUICK else workloads.FULL
ROUNDS = 1 if QUICK else 5
HOSTS = 2
AGENTS = 500


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the suite out unless `-m` names it: a `-m "not slow"` must not pull it in."""
    if "bench" in (config.option.markexpr or ""):
        return
    here = os.path.dirname(__file__)
    left_out = [item for item in items if str(item.path).startswith(here)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not str(item.path).startswith(here)]


@pytest.fixture(scope="session")
def sizes() -> workloads.Sizes:
    return SIZES


@pytest.fixture(scope="session")
def runner() -> Iterator[asyncio.Runner]:
    """One event loop (uvloop, as every Swarm process) for the whole suite's clients."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        yield r


@pytest.fixture(scope="session")
def swarm() -> Iterator[LocalSwarm]:
    """The swarm of docs/workloads.md: 2 hosts x 500 agents (1,000 agents for W2)."""
    with bench_swarm(HOSTS, AGENTS) as s:
        yield s


@pytest.fixture(scope="session")
def sdk(runner: asyncio.Runner, swarm: LocalSwarm) -> Iterator[SdkDriver]:
    from swarm.client import AsyncClient

    client = AsyncClient(swarm.address)
    runner.run(client.connect())
    driver = SdkDriver(client)
    runner.run(workloads.warm_up(driver, SIZES.warmup))
    yield driver
    runner.run(client.close())


@pytest.fixture(scope="session")
def raw(runner: asyncio.Runner, swarm: LocalSwarm) -> Iterator[RawDriver]:
    session = RawSession(swarm.address)
    runner.run(session.__aenter__())
    driver = RawDriver(session)
    runner.run(workloads.warm_up(driver, SIZES.warmup))
    yield driver
    runner.run(session.__aexit__(None, None, None))


def bench(
    benchmark: Any,
    runner: asyncio.Runner,
    make: Callable[[], Coroutine[Any, Any, T]],
    rounds: int = ROUNDS,
) -> T:
    """Time `rounds` runs of one workload; its last figures go to extra_info."""
    results: list[T] = []

    def once() -> None:
        results.append(runner.run(make()))

    benchmark.pedantic(once, rounds=rounds, iterations=1)
    last = results[-1]
    if isinstance(last, dict):
        benchmark.extra_info.update(last)
    return last
