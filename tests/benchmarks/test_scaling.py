"""W7: CPU-bound tasks on 1 host, then on one host per core; and the transport's ceiling."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from swarm.bench import ceiling, workloads
from swarm.bench.drivers import SdkDriver
from swarm.bench.local import bench_swarm

from tests.benchmarks.conftest import AGENTS, ROUNDS

pytestmark = [pytest.mark.bench, pytest.mark.timeout(600)]


@pytest.mark.parametrize("hosts", sorted({1, os.cpu_count() or 1}))
def test_w7_burn(
    benchmark: Any, runner: asyncio.Runner, sizes: workloads.Sizes, hosts: int
) -> None:
    from swarm.client import AsyncClient

    with bench_swarm(hosts, AGENTS) as swarm:
        client = AsyncClient(swarm.address)
        runner.run(client.connect())
        try:
            driver = SdkDriver(client)
            runner.run(workloads.warm_up(driver, sizes.warmup))
            rates: list[float] = []
            benchmark.pedantic(
                lambda: rates.append(runner.run(workloads.w7_burn(driver, sizes.w7_tasks))),
                rounds=ROUNDS,
                iterations=1,
            )
        finally:
            runner.run(client.close())
    benchmark.extra_info.update(
        {"hosts": hosts, "tasks_per_s": rates[-1], "efficiency": rates[-1] / (hosts * 1000)}
    )
    assert rates[-1] > 0


def test_ceiling(benchmark: Any, runner: asyncio.Runner, sizes: workloads.Sizes) -> None:
    tasks, trips = (20_000, 200) if sizes.w1_tasks < 20_000 else (50_000, 1_000)
    figures = benchmark.pedantic(
        lambda: runner.run(ceiling.measure(tasks, trips)), rounds=1, iterations=1
    )
    benchmark.extra_info.update(figures)
    assert figures["ceiling_tasks_per_s_b1000"] > 0
