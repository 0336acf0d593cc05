"""W8: the journaled orchestrator SIGKILLed under a deep queue, restarted by the supervisor.

Nothing accepted may be lost, no result delivered twice on one session, every output right.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from swarm.bench import durable, workloads

pytestmark = [pytest.mark.bench, pytest.mark.timeout(900)]


def test_w8_orchestrator_sigkill(
    benchmark: Any, runner: asyncio.Runner, sizes: workloads.Sizes
) -> None:
    run = benchmark.pedantic(
        lambda: runner.run(durable.crash_run(sizes.w8_tasks, sizes.w8_dag)),
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(run.figures())
    assert (run.lost, run.duplicates, run.wrong) == (0, 0, 0), run
    assert run.first_result_s is not None and run.last_result_s is not None, run
