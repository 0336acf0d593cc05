"""Each example's `main()` against a real swarm that loads the examples' handlers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from swarm.deploy.local import LocalSwarm

from examples import cpu_batch, pipeline, research_swarm
from tests.helpers import local_swarm

ROOT = Path(__file__).resolve().parent.parent
AGENTS = 20


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalSwarm]:
    modules = ["examples.research_swarm", "examples.cpu_batch", "examples.pipeline"]
    with local_swarm(hosts=2, agents_per_host=AGENTS, modules=modules) as c:
        yield c


def test_research_swarm(cluster: LocalSwarm, capsys: pytest.CaptureFixture[str]) -> None:
    summary = research_swarm.main(["--connect", cluster.address, "--topics", "100"])
    assert summary["topics"] == 100 and len(summary["longest"]) == 3
    # Agents keep state across tasks: 100 topics on 40 agents, so some agent did several.
    assert summary["most_topics_by_one_agent"] >= 2
    # One pool per host, shared by its agents: connections are reused, not one per task.
    assert summary["most_connections_in_a_host_pool"] <= AGENTS
    assert '"topics": 100' in capsys.readouterr().out


def test_cpu_batch(cluster: LocalSwarm, capsys: pytest.CaptureFixture[str]) -> None:
    result = cpu_batch.main(
        ["--connect", cluster.address, "--chunks", "16", "--chunk-size", "5000"]
    )
    assert result["primes"] == 7837  # primes below 80,000
    assert result["hosts"] == 2 and result["speed_up"] > 0
    assert "7837 primes below 80,000" in capsys.readouterr().out


def test_pipeline(cluster: LocalSwarm, capsys: pytest.CaptureFixture[str]) -> None:
    report = pipeline.main(["--connect", cluster.address, "--records", "12"])
    assert report["timed_out"] == [4, 9]  # the huge records: parse past its timeout
    assert report["stored"] == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]
    assert report["retried_fetches"] == 4  # ids 0, 3, 6, 9 failed once, then went through
    assert report["failed"] == {}
    assert '"timed_out"' in capsys.readouterr().out
