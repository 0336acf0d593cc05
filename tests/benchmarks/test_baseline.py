"""The in-process baseline, in its own child process as `swarm bench` runs it, tracked from
commit to commit beside Swarm's workloads (its figures in `extra_info`)."""

from __future__ import annotations

from typing import Any

import pytest
from swarm.bench import baseline
from swarm.bench.compare import KEYS

from tests.benchmarks.conftest import AGENTS, HOSTS, QUICK

pytestmark = pytest.mark.bench


def test_baseline_child(benchmark: Any) -> None:
    figures = benchmark.pedantic(
        baseline.run_child, args=(QUICK, HOSTS * AGENTS), rounds=1, iterations=1
    )
    benchmark.extra_info.update({k: v for k, v in figures.items() if k != "seed_table"})
    for key in KEYS:
        assert figures[key] > 0
    assert figures["w2_efficiency"] <= 1.0
    assert len(figures["seed_table"]) == 4
