"""W9: the journal, TLS with tokens and metrics scraped every second, each on against off in
the same run (bench/deployment_cost.py), W1 and W3 at the suite's sizes. Every output is
checked by the workloads; the ratios go to extra_info (no goal is asserted: a ratio from a
short run on a shared machine is a figure, not a verdict)."""

from __future__ import annotations

from typing import Any

import pytest
from swarm.bench import deployment_cost, workloads

pytestmark = [pytest.mark.bench, pytest.mark.timeout(900)]


def test_w9_deployment_cost(benchmark: Any, sizes: workloads.Sizes) -> None:
    figures = benchmark.pedantic(
        lambda: deployment_cost.measure(sizes.w1_tasks, sizes.w3_trips, sizes.w9_rounds),
        rounds=1,
        iterations=1,
    )
    ratios = {k: v for k, v in figures.items() if k.endswith("_ratio")}
    benchmark.extra_info.update(ratios)
    expected = {
        f"w9_{pair}_{w}_ratio" for pair in deployment_cost.PAIRS for w in ("w1", "w3_p50")
    }
    assert set(ratios) == expected, figures
    assert all(isinstance(v, float) and v > 0 for v in ratios.values()), ratios
