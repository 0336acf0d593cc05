"""W5: a host process killed (or frozen) mid-run. Nothing may be lost or delivered twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from swarm.bench import failover, workloads

pytestmark = [pytest.mark.bench, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def baseline(runner: asyncio.Runner, sizes: workloads.Sizes) -> failover.FailoverRun:
    run = runner.run(failover.failover_run("none", sizes.w5_tasks, sizes.w5_kill_after_s))
    assert (run.ok, run.lost, run.duplicates) == (sizes.w5_tasks, 0, 0)
    return run


@pytest.mark.parametrize("mode", ["kill", "kill-no-restart", "stop"])
def test_w5_failover(
    benchmark: Any,
    runner: asyncio.Runner,
    sizes: workloads.Sizes,
    baseline: failover.FailoverRun,
    mode: str,
) -> None:
    run = benchmark.pedantic(
        lambda: runner.run(failover.failover_run(mode, sizes.w5_tasks, sizes.w5_kill_after_s)),
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(
        {
            "ok": run.ok,
            "errored": run.errored,
            "lost": run.lost,
            "duplicates": run.duplicates,
            "slowdown": run.wall_s / baseline.wall_s,
            "detect_ms": run.detect_ms,
            "requeued": run.requeued,
        }
    )
    assert run.lost == 0, run
    assert run.duplicates == 0, run
    assert run.ok + run.errored == sizes.w5_tasks, run
    assert run.detect_ms is not None, "the orchestrator never declared the host lost"
