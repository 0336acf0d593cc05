"""W3: sequential round trips of one no-op task, through the SDK and the raw protocol."""

from __future__ import annotations

from typing import Any

import pytest
from swarm.bench import workloads

from tests.benchmarks.conftest import bench

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("driver", ["sdk", "raw"])
def test_w3_latency(
    benchmark: Any, runner: Any, sizes: workloads.Sizes, driver: str, request: Any
) -> None:
    d = request.getfixturevalue(driver)
    figures = bench(benchmark, runner, lambda: workloads.w3_latency(d, sizes.w3_trips))
    assert 0 < figures["w3_p50_us"] <= figures["w3_p99_us"] <= figures["w3_max_us"]
