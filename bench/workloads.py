"""The benchmark workloads (docs/workloads.md), shared by `swarm bench` and `tests/benchmarks/`.

Each workload takes a `Driver` (the SDK or the raw protocol), runs end to end against a live
swarm, checks every output against its expected value (`WrongResult` otherwise: a wrong result
is a failure, not a data point) and returns its figures. W5 (failover) lives in
`failover`, W6 (memory, one process) in `memory`, the transport ceiling in
`ceiling`. The in-process baseline (`baseline`) runs these same functions through a driver of
its own, so its outputs are checked exactly as Swarm's are.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from swarm.bench.drivers import Driver

# The seed audit's table, (agents, tasks) per row; its own figures are another run's, so the
# comparison is with the in-process baseline, measured in the same invocation.
SEED_ROWS = ((1, 10), (5, 50), (10, 100), (20, 200))
SEED_TASK_MS = 28


@dataclass(frozen=True, slots=True)
class Sizes:
    w1_tasks: int = 20_000
    w2_tasks: int = 20_000
    w3_trips: int = 1_000
    w4_layers: int = 50
    w4_width: int = 200
    w5_tasks: int = 2_000
    w5_kill_after_s: float = 0.5
    w6_agents: int = 100_000
    w6_inflight: int = 10_000
    w7_tasks: int = 4_000
    w8_tasks: int = 100_000
    w8_dag: tuple[int, int] = (10, 100)  # layers x width: 1,000 nodes
    w9_rounds: int = 4  # per pair, each round both arms (W1 and W3 at the sizes above)
    warmup: int = 200


FULL = Sizes()
# The short pass: the quick sizes of docs/workloads.md; W5's kill comes earlier so it lands mid-run.
QUICK = Sizes(
    w1_tasks=2_000,
    w2_tasks=2_000,
    w3_trips=200,
    w4_layers=10,
    w4_width=100,
    w5_tasks=200,
    w5_kill_after_s=0.15,
    w6_agents=20_000,
    w6_inflight=2_000,
    w7_tasks=1_000,
    w8_tasks=10_000,
    w8_dag=(10, 10),
    w9_rounds=2,
)


class WrongResult(AssertionError):
    """A task's output differs from what its workload must produce."""


def check(name: str, got: list[bytes], want: list[bytes]) -> None:
    if len(got) != len(want):
        raise WrongResult(f"{name}: {len(got)} outputs for {len(want)} tasks")
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g != w:
            raise WrongResult(f"{name}: task {i} returned {g!r}, expected {w!r}")


async def warm_up(driver: Driver, n: int) -> None:
    payloads = [b"w%d" % i for i in range(n)]
    outputs, _ = await driver.run("echo", payloads)
    check("warm-up", outputs, payloads)


@lru_cache(maxsize=4)
def w1_payloads(n: int) -> list[bytes]:
    """W1's inputs, made once per size (shared: not to be changed): the benchmark's own work,
    kept out of the CPU it meters for the client (suite.py makes them before metering)."""
    return [b"%d" % i for i in range(n)]


async def w1_noop(driver: Driver, n: int) -> dict[str, float]:
    """No-op throughput: every task echoes its own small input."""
    payloads = w1_payloads(n)
    outputs, wall = await driver.run("echo", payloads)
    check("W1", outputs, payloads)
    return {"w1_tasks_per_s": n / wall}


async def w2_io(driver: Driver, n: int, agents: int, sleep_ms: int = 10) -> dict[str, float]:
    """I/O-bound: each task sleeps; the ideal is every agent busy all the time."""
    payload = b"%d" % sleep_ms
    outputs, wall = await driver.run("sleep", [payload] * n)
    check("W2", outputs, [payload] * n)
    rate = n / wall
    return {"w2_tasks_per_s": rate, "w2_efficiency": rate / (agents * 1000 / sleep_ms)}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def w3_latency(driver: Driver, trips: int, warmup: int = 50) -> dict[str, float]:
    """Sequential round trips of one no-op task each."""
    samples = []
    for i in range(warmup + trips):
        payload = b"%d" % i
        output, seconds = await driver.round_trip("echo", payload)
        if output != payload:
            raise WrongResult(f"W3: trip {i} returned {output!r}, expected {payload!r}")
        if i >= warmup:
            samples.append(seconds * 1e6)
    return {
        "w3_p50_us": percentile(samples, 0.50),
        "w3_p90_us": percentile(samples, 0.90),
        "w3_p99_us": percentile(samples, 0.99),
        "w3_max_us": max(samples),
    }


@lru_cache(maxsize=4)
def dag(layers: int, width: int) -> tuple[list[bytes], list[list[int]], list[bytes]]:
    """W4's graph: payloads, parents (indices) and expected outputs, layer by layer. Made once
    per size, as `w1_payloads` (shared: not to be changed).

    Task (L, i) is labelled `L.i`; for L > 0 its two parents in layer L-1 are drawn with
    `random.Random(42).sample(range(width), 2)`, layer by layer and index by index.
    """
    rng = random.Random(42)
    payloads: list[bytes] = []
    parents: list[list[int]] = []
    labels: list[bytes] = []
    for layer in range(layers):
        for i in range(width):
            label = b"%d.%d" % (layer, i)
            ps = (
                [] if layer == 0 else [(layer - 1) * width + j for j in rng.sample(range(width), 2)]
            )
            labels.append(label)
            parents.append(ps)
            payloads.append(label + b"|" + b",".join(labels[j] for j in ps))
    return payloads, parents, labels


async def w4_dag(driver: Driver, layers: int, width: int) -> dict[str, float]:
    """A graph with data on its edges, submitted whole; the `dag` handler checks each edge."""
    payloads, parents, labels = dag(layers, width)
    outputs, wall = await driver.run("dag", payloads, parents)
    check("W4", outputs, labels)
    return {"w4_tasks_per_s": len(payloads) / wall}


async def w7_burn(driver: Driver, n: int, burn_ms: int = 1) -> float:
    """CPU-bound tasks (pure-Python busy loop); returns tasks/s."""
    payload = b"%d" % burn_ms
    outputs, wall = await driver.run("burn", [payload] * n)
    check("W7", outputs, [payload] * n)
    return n / wall


async def seed_table(driver: Driver) -> list[dict[str, Any]]:
    """The audit's rows: `tasks` tasks of 28 ms each, all submitted at once.

    The seed's "agents" shared out tasks round-robin and each ran its share with gather, so a
    row's concurrency was its task count; the swarm here has at least that many agents.
    """
    rows = []
    for agents, tasks in SEED_ROWS:
        payload = b"%d" % SEED_TASK_MS
        outputs, wall = await driver.run("sleep", [payload] * tasks)
        check("seed table", outputs, [payload] * tasks)
        rows.append({"agents": agents, "tasks": tasks, "tasks_per_s": tasks / wall})
    return rows


async def serial_vs_parallel(driver: Driver, n: int = 10, ms: int = 100) -> dict[str, float]:
    """The audit's speed-up: n tasks of `ms` one after the other, then all at once."""
    payload = b"%d" % ms
    serial = 0.0
    for _ in range(n):
        output, seconds = await driver.round_trip("sleep", payload)
        check("serial", [output], [payload])
        serial += seconds
    outputs, parallel = await driver.run("sleep", [payload] * n)
    check("parallel", outputs, [payload] * n)
    return {"seed_serial_s": serial, "seed_parallel_s": parallel, "seed_speedup": serial / parallel}


def median_rows(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Row by row, the median tasks/s of several seed-table runs."""
    out = []
    for rows in zip(*runs, strict=True):
        rate = statistics.median(r["tasks_per_s"] for r in rows)
        out.append({**rows[0], "tasks_per_s": rate})
    return out
