"""The comparisons of `swarm bench`, without a swarm: the in-process baseline's workloads at tiny
sizes (checked as Swarm's are), the ratios, the calibration, and a peer that is not installed."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import pytest
from swarm.bench import calibration, compare, peers, report, workloads
from swarm.bench.baseline import InProcessDriver
from swarm.bench.handlers import EdgeError


def test_baseline_workloads_are_correct_at_tiny_sizes() -> None:
    async def main() -> dict[str, Any]:
        figures: dict[str, Any] = {}
        async with InProcessDriver(agents=20) as d:
            await workloads.warm_up(d, 10)
            figures.update(await workloads.w1_noop(d, 100))
            figures.update(await workloads.w2_io(d, 40, agents=20))
            figures.update(await workloads.w3_latency(d, 10, warmup=2))
            figures.update(await workloads.w4_dag(d, 4, 6))
            figures["rows"] = await workloads.seed_table(d)
            figures.update(await workloads.serial_vs_parallel(d, n=3, ms=5))
        return figures

    figures = asyncio.run(main())
    for key in compare.KEYS:
        assert figures[key] > 0
    # 40 sleeps of 10 ms on 20 agents: W2's ideal counts 2,000/s, but the seed's design runs a
    # whole group at once whatever its agent count, so it can reach twice that and no more.
    assert 0 < figures["w2_efficiency"] <= 40 / 20
    assert [(r["agents"], r["tasks"]) for r in figures["rows"]] == list(workloads.SEED_ROWS)
    assert figures["seed_serial_s"] >= 0.015


def test_baseline_dag_passes_the_parents_outputs_in_order() -> None:
    payloads, parents, labels = workloads.dag(3, 4)

    async def main(ps: list[list[int]]) -> list[bytes]:
        async with InProcessDriver(agents=4) as d:
            outputs, _ = await d.run("dag", payloads, ps)
            return outputs

    assert asyncio.run(main(parents)) == labels
    # Parents swapped: the handler sees its parents' outputs in the wrong order, and says so.
    swapped = [list(reversed(ps)) for ps in parents]
    with pytest.raises(EdgeError):
        asyncio.run(main(swapped))


def test_a_wrong_baseline_output_is_a_failure() -> None:
    class Lying(InProcessDriver):
        async def run(self, kind: str, payloads: Any, parents: Any = None) -> Any:
            outputs, wall = await super().run(kind, payloads, parents)
            return [b"x", *outputs[1:]], wall

    async def main() -> None:
        async with Lying(agents=2) as d:
            await workloads.w1_noop(d, 5)

    with pytest.raises(workloads.WrongResult):
        asyncio.run(main())


def test_ratios_are_swarm_over_baseline_and_latency_the_other_way() -> None:
    figures: dict[str, Any] = {
        "w1_tasks_per_s": 50_000.0,
        "w2_efficiency": 0.5,
        "w3_p50_us": 800.0,
        "w4_tasks_per_s": 30_000.0,
        "seed_table": [{"agents": 1, "tasks": 10, "tasks_per_s": 300.0}],
        "baseline": {
            "w1_tasks_per_s": 100_000.0,
            "w2_efficiency": 0.25,
            "w3_p50_us": 8.0,
            "w4_tasks_per_s": 0.0,
            "seed_table": [{"agents": 1, "tasks": 10, "tasks_per_s": 350.0}],
        },
        "peers": {"ray": {"w1_tasks_per_s": 1_000.0, "w3_p50_us": 3_000.0}},
    }
    out = compare.ratios(figures)
    assert out["vs_baseline"] == {
        "w1_tasks_per_s": 0.5,
        "w2_efficiency": 2.0,
        "w3_p50_us": 0.01,
        "w4_tasks_per_s": None,  # a zero measured is no ratio, not a division by zero
    }
    assert figures["seed_table"][0]["vs_baseline"] == pytest.approx(300 / 350)
    assert out["vs_peers"]["ray"]["w1_tasks_per_s"] == 50.0
    assert out["vs_peers"]["ray"]["w3_p50_us"] == 3.75
    assert out["vs_peers"]["ray"]["w2_efficiency"] is None
    text = report.table({**figures, **out})
    assert "0.5x" in text and "ray" in text


def test_summarize_takes_medians_and_the_seed_rows() -> None:
    rows = [{"agents": 1, "tasks": 10, "tasks_per_s": v} for v in (1.0, 3.0, 2.0)]
    runs = [
        {"w1_tasks_per_s": v, "seed_table": [r]} for v, r in zip((1.0, 5.0, 3.0), rows, strict=True)
    ]
    got = compare.summarize(runs)
    assert got["w1_tasks_per_s"] == 3.0 and got["rounds"] == 3
    assert got["seed_table"][0]["tasks_per_s"] == 2.0


def test_calibration_reports_its_four_figures() -> None:
    cal = calibration.measure(n=50_000)
    for key in ("alone_s", "pair_s", "pair_ratio", "cores_effective"):
        assert cal[key] > 0
    assert cal["cores_effective"] == pytest.approx(2 / cal["pair_ratio"])
    assert "cores effective" in calibration.describe(cal)


def test_peers_not_installed_are_skipped_with_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        if name.split(".")[0] in ("ray", "dask"):
            return None
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    said: list[str] = []

    def never() -> None:
        raise AssertionError("a skipped peer must not run")

    monkeypatch.setattr(peers, "run_child", lambda *a: never())
    out = compare.run_peers(True, 1, 1000, lambda: None, said.append)
    assert out["peers"] == {}
    assert set(out["peers_skipped"]) == {"ray", "dask"}
    assert any("ray skipped" in line and "swarm[peers]" in line for line in said)
    assert any("dask skipped" in line for line in said)
    assert "peer dask: not measured" in report.table(out)


def test_core_cost_runs_a_whole_w4_graph_through_the_core() -> None:
    """`core_cost --workload w4` at a tiny size: every task of the graph is assigned, its
    result applied and delivered to the client, layer after layer, in result chunks of 3."""
    import random

    from swarm.bench import core_cost
    from swarm.server.config import OrchestratorConfig
    from swarm.server.convert import SpecReader
    from swarm.server.core import Core
    from swarm.server.hosts import HostHello

    config = OrchestratorConfig()
    core = Core(config, random.Random(1))
    hosts = [
        core.host_joined(HostHello(f"h{i}", 1, "x", frozenset({"echo"}), 5, 5), 0.0)
        for i in range(2)
    ]
    core.attach_client("c", 0.0)
    request = core_cost._graph_request(0, layers=4, width=6)
    seconds, n = core_cost._graph_round(core, SpecReader(config), hosts, request, chunk=3)
    assert n == 24 and seconds > 0
    assert core.live_tasks == 0 and core.counters.succeeded == 24


def test_the_sdk_cost_micro_benchmarks_need_no_swarm() -> None:
    """`sdk_cost graph` and `host-jobs` (docs/performance.md) at tiny sizes: the W4 graph's
    nodes made into futures with their dependencies, a host's jobs read back with theirs."""
    from swarm.bench import sdk_cost

    graph = sdk_cost.graph_us(rounds=2, layers=3, width=10)
    jobs = sdk_cost.host_jobs_us(rounds=2, n=5, deps=2)
    echo = asyncio.run(sdk_cost.host_echo_us(rounds=2, n=5, batches=2))
    assert set(graph) == {"add_us", "futures_us"} and set(jobs) == {"jobs_us", "context_us"}
    assert all(0 < v < 1e6 for v in (*graph.values(), *jobs.values(), *echo.values()))
