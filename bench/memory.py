"""W6: memory and agent spawning inside one host process, through the host's own `Executor`.

Run in a fresh interpreter (`measure()` starts one) so that nothing else lives in its heap:

* agents spawned per second: `Executor.spawn(n)`, the call the pool grows by (median of 5);
* bytes per idle agent: tracemalloc (Python's own allocations) and, in a separate pass
  without tracemalloc, the RSS delta, over n agents;
* bytes per in-flight task: m `sleep` tasks started on m agents and left sleeping, measured
  the same two ways; it counts the Job, its context, the handler's coroutine, the Task that
  carries it, its timer and future, the payload and id, after the outbox's started notices
  were taken (as the stream writer would);
* for scale, bytes per bare asyncio Task sleeping the same way on the same loop: the floor that
  any asyncio program pays, which the in-flight figure includes.

    python -m swarm.bench.memory --agents 100000 --inflight 10000    # prints JSON
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

import psutil
from swarm.agent_host.executor import Executor, Job
from swarm.agent_host.handlers import load
from swarm.agent_host.outbox import Outbox
from swarm.common.runtime import run


def _executor(agents: int) -> Executor:
    return Executor(load([]), Outbox(), min_agents=agents, max_agents=agents)


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _per_item(build: Callable[[], object], n: int) -> tuple[float, float]:
    """Bytes per item of what `build` makes (it must keep n items alive): (traced, RSS)."""
    before = _rss()
    kept = build()
    rss = (_rss() - before) / n
    del kept
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    kept = build()
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return (traced - base) / n, rss


def spawn_rate(agents: int, rounds: int = 5) -> float:
    rates = []
    for _ in range(rounds):
        ex = _executor(1)
        gc.collect()
        t0 = time.perf_counter()
        ex.spawn(agents)
        rates.append(agents / (time.perf_counter() - t0))
        del ex
    return statistics.median(rates)


def idle_agent_bytes(agents: int) -> tuple[float, float]:
    ex = _executor(1)

    def build() -> object:
        before = len(ex.idle)
        ex.spawn(agents)
        kept = ex.idle[before:]
        del ex.idle[before:]
        ex.capacity -= agents
        return kept

    return _per_item(build, agents)


async def _inflight(tasks: int) -> tuple[float, float]:
    payload = b"%d" % (3600 * 1000)  # an hour: asleep for the whole measurement

    def fill(ex: Executor) -> None:
        """`tasks` sleeping jobs on an idle executor (each measurement has its own: shutdown
        is final), so that only the jobs are counted, not the agents."""
        jobs = [Job(f"task-{i:08d}", 1, "sleep", payload, 0.0) for i in range(tasks)]
        ex.submit(jobs)
        ex.outbox.take_started(ex.unreported_starts())

    # The Tasks take their first step on the next turns of the loop; run those first.
    async def settle() -> None:
        for _ in range(3):
            await asyncio.sleep(0)

    ex = _executor(tasks)
    before = _rss()
    fill(ex)
    await settle()
    rss = (_rss() - before) / tasks
    ex.shutdown()
    await settle()
    ex = _executor(tasks)
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    fill(ex)
    await settle()
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if ex.busy != tasks:
        raise AssertionError(f"{ex.busy} tasks in flight, expected {tasks}")
    ex.shutdown()
    await settle()
    return (traced - base) / tasks, rss


async def _bare_floor(tasks: int) -> float:
    """Traced bytes of one bare asyncio Task sleeping in `asyncio.sleep`, on the same loop:
    what any asyncio program pays for such a task, whatever runs it."""

    async def sleeper() -> None:
        await asyncio.sleep(3600)

    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    loop = asyncio.get_running_loop()
    kept = [loop.create_task(sleeper()) for _ in range(tasks)]
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for t in kept:
        t.cancel()
    await asyncio.gather(*kept, return_exceptions=True)
    return (traced - base) / tasks


def measure_here(agents: int, inflight: int) -> dict[str, float]:
    traced_agent, rss_agent = idle_agent_bytes(agents)
    traced_task, rss_task = run(_inflight(inflight))
    floor = run(_bare_floor(inflight))
    return {
        "w6_agents_spawned_per_s": spawn_rate(agents),
        "w6_bytes_per_idle_agent": traced_agent,
        "w6_rss_bytes_per_idle_agent": rss_agent,
        "w6_bytes_per_inflight_task": traced_task,
        "w6_rss_bytes_per_inflight_task": rss_task,
        "w6_bytes_per_bare_asyncio_task": floor,
    }


def measure(agents: int = 100_000, inflight: int = 10_000) -> dict[str, float]:
    """Measure in a fresh interpreter, as a host process would be."""
    args = ["-m", "swarm.bench.memory", "--agents", str(agents), "--inflight", str(inflight)]
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=True
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="W6: memory and spawning in one host process")
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--inflight", type=int, default=10_000)
    args = parser.parse_args(argv)
    print(json.dumps(measure_here(args.agents, args.inflight)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
