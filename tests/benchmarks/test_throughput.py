"""W1 (no-op), W2 (I/O-bound) and W4 (DAG) throughput, through the SDK and the raw protocol."""

from __future__ import annotations

from typing import Any

import pytest
from swarm.bench import workloads

from tests.benchmarks.conftest import AGENTS, HOSTS, bench

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("driver", ["sdk", "raw"])
def test_w1_noop(
    benchmark: Any, runner: Any, sizes: workloads.Sizes, driver: str, request: Any
) -> None:
    d = request.getfixturevalue(driver)
    figures = bench(benchmark, runner, lambda: workloads.w1_noop(d, sizes.w1_tasks))
    assert figures["w1_tasks_per_s"] > 0


@pytest.mark.parametrize("driver", ["sdk", "raw"])
def test_w2_io(
    benchmark: Any, runner: Any, sizes: workloads.Sizes, driver: str, request: Any
) -> None:
    d = request.getfixturevalue(driver)
    figures = bench(benchmark, runner, lambda: workloads.w2_io(d, sizes.w2_tasks, HOSTS * AGENTS))
    assert 0 < figures["w2_efficiency"] <= 1.0


@pytest.mark.parametrize("driver", ["sdk", "raw"])
def test_w4_dag(
    benchmark: Any, runner: Any, sizes: workloads.Sizes, driver: str, request: Any
) -> None:
    d = request.getfixturevalue(driver)
    figures = bench(benchmark, runner, lambda: workloads.w4_dag(d, sizes.w4_layers, sizes.w4_width))
    assert figures["w4_tasks_per_s"] > 0
