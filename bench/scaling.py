"""W7 (CPU-bound scaling over host processes) and the host-count sweep of `swarm bench`."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from swarm.bench import workloads
from swarm.bench.budget import CpuMeter, quietly
from swarm.bench.drivers import Driver, SdkDriver
from swarm.bench.local import bench_swarm
from swarm.deploy.local import LocalSwarm

AGENTS = 500  # per host


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def _sdk_rates(
    swarm: LocalSwarm,
    repeat: int,
    warmup: int,
    workload: Callable[[Driver], Awaitable[float]],
    settle: Callable[[], None],
) -> float:
    """The median of `repeat` runs of a tasks/s workload through the SDK (noisy runs redone)."""
    from swarm.client import AsyncClient

    meter = CpuMeter({"client": os.getpid(), **swarm.pids()})
    async with AsyncClient(swarm.address) as client:
        driver = SdkDriver(client)
        await workloads.warm_up(driver, warmup)
        rates = []
        for _ in range(repeat):
            rate, _ = await quietly(meter, partial(workload, driver), settle, _say)
            rates.append(rate)
        return statistics.median(rates)


def _w1_rate(n: int) -> Callable[[Driver], Awaitable[float]]:
    async def once(driver: Driver) -> float:
        return (await workloads.w1_noop(driver, n))["w1_tasks_per_s"]

    return once


def _w7_rate(n: int) -> Callable[[Driver], Awaitable[float]]:
    return lambda driver: workloads.w7_burn(driver, n)


async def w7(
    sizes: workloads.Sizes, repeat: int, hosts: int, settle: Callable[[], None]
) -> dict[str, Any]:
    rates = {}
    for n in (1, hosts):
        settle()
        with bench_swarm(n, AGENTS) as swarm:
            rates[n] = await _sdk_rates(
                swarm, repeat, sizes.warmup, _w7_rate(sizes.w7_tasks), settle
            )
        _say(f"  W7 on {n} host(s): {rates[n]:,.0f} tasks/s")
    return {
        "w7_tasks_per_s_1host": rates[1],
        "w7_efficiency_1host": rates[1] / 1000,
        "w7_hosts": hosts,
        "w7_tasks_per_s": rates[hosts],
        "w7_scaling_efficiency": rates[hosts] / (hosts * 1000),
    }


async def sweep(
    sizes: workloads.Sizes,
    repeat: int,
    counts: list[int],
    names: set[str],
    settle: Callable[[], None],
) -> dict[str, Any]:
    """W1 and W7 with each host count: how far more processes carry the system."""
    table: dict[str, dict[str, float]] = {}
    for n in counts:
        row: dict[str, float] = {}
        with bench_swarm(n, AGENTS) as swarm:
            if "w1" in names:
                rate = await _sdk_rates(
                    swarm, repeat, sizes.warmup, _w1_rate(sizes.w1_tasks), settle
                )
                row["w1_tasks_per_s"] = rate
            if "w7" in names:
                rate = await _sdk_rates(
                    swarm, repeat, sizes.warmup, _w7_rate(sizes.w7_tasks), settle
                )
                row["w7_tasks_per_s"] = rate
                row["w7_efficiency"] = rate / (n * 1000)
        _say(f"  sweep {n} hosts: {row}")
        table[str(n)] = row
    return {"sweep": table, "w7_sweep": {h: r.get("w7_tasks_per_s") for h, r in table.items()}}
