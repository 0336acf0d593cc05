"""CPU per task of W4 (the DAG) or W1, by process, over repeated runs in one local swarm.

    python -m swarm.bench.dag_cost [--rounds 8] [--workload w4|w1]

One swarm (the orchestrator, 2 hosts x 500 agents, as `swarm bench`), one SDK client in this
process; after a warm-up, `rounds` runs of the workload, each measured alone: the client's, the
orchestrator's and the hosts' CPU seconds per task (`CpuMeter`), and the run's tasks/s. Prints
the medians. CPU per task is steadier than throughput on a shared machine: for A/B of changes
to the graph path, run it alternately with each tree's interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics

from swarm.bench.budget import CpuMeter
from swarm.bench.drivers import SdkDriver
from swarm.bench.local import HANDLERS
from swarm.bench.workloads import w1_noop, w4_dag, warm_up
from swarm.client import AsyncClient
from swarm.deploy.local import LocalSwarm

LAYERS, WIDTH, W1_TASKS = 50, 200, 20_000


async def _measure(
    address: str, pids: dict[str, int], rounds: int, workload: str
) -> dict[str, float]:
    n = LAYERS * WIDTH if workload == "w4" else W1_TASKS
    async with AsyncClient(address) as client:
        driver = SdkDriver(client)

        async def once() -> float:
            if workload == "w4":
                return (await w4_dag(driver, LAYERS, WIDTH))["w4_tasks_per_s"]
            return (await w1_noop(driver, W1_TASKS))["w1_tasks_per_s"]

        await warm_up(driver, 500)
        await once()
        runs: dict[str, list[float]] = {"client": [], "orchestrator": [], "hosts": [], "rate": []}
        for _ in range(rounds):
            meter = CpuMeter(pids)
            meter.start()
            rate = await once()
            s = meter.seconds()
            runs["client"].append(s["client"] / n * 1e6)
            runs["orchestrator"].append(s["orchestrator"] / n * 1e6)
            runs["hosts"].append(sum(v for k, v in s.items() if k.startswith("host")) / n * 1e6)
            runs["rate"].append(rate)
    return {k: round(statistics.median(v), 1) for k, v in runs.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="swarm-bench-dag-cost")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--workload", choices=("w4", "w1"), default="w4")
    args = parser.parse_args(argv)
    server_args = ("--journal", "memory")
    with LocalSwarm(2, 500, modules=[HANDLERS], server_args=server_args, on_exit="kill") as s:
        pids = {**s.pids(), "client": os.getpid()}
        out = asyncio.run(_measure(s.address, pids, args.rounds, args.workload))
    print(json.dumps({"workload": args.workload, "us_per_task_and_rate": out}))


if __name__ == "__main__":
    main()
