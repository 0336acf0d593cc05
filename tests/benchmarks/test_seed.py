"""The seed audit's table: rows of 28 ms tasks, serial vs parallel, and W6 (one host process)."""

from __future__ import annotations

from typing import Any

import pytest
from swarm.bench import memory, workloads

from tests.benchmarks.conftest import bench

pytestmark = pytest.mark.bench


def test_seed_table(benchmark: Any, runner: Any, sdk: Any) -> None:
    rows = bench(benchmark, runner, lambda: workloads.seed_table(sdk))
    benchmark.extra_info["rows"] = rows
    assert [(r["agents"], r["tasks"]) for r in rows] == list(workloads.SEED_ROWS)


def test_serial_vs_parallel(benchmark: Any, runner: Any, sdk: Any) -> None:
    figures = bench(benchmark, runner, lambda: workloads.serial_vs_parallel(sdk))
    # 10 tasks of 100 ms: one after the other at least 1 s; at once, far less.
    assert figures["seed_serial_s"] >= 1.0
    assert figures["seed_speedup"] > 5


@pytest.mark.timeout(600)
def test_w6_memory(benchmark: Any, sizes: workloads.Sizes) -> None:
    figures = benchmark.pedantic(
        memory.measure, args=(sizes.w6_agents, sizes.w6_inflight), rounds=1, iterations=1
    )
    benchmark.extra_info.update(figures)
    assert figures["w6_agents_spawned_per_s"] > 0
    assert 0 < figures["w6_bytes_per_idle_agent"] < 10_000
