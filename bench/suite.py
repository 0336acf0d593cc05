"""`swarm bench`: the workloads of docs/workloads.md end to end, against a swarm it starts.

    swarm bench --quick                        # a short pass (about a minute)
    swarm bench --quick --only w1,w3,baseline  # W1 and W3 beside the in-process baseline
    swarm bench --repeat 5 --json b.json       # medians of 5; b.png (the plot) beside it
    swarm bench --connect HOST:PORT --only w1,w3   # against a running swarm (W1-W4, seed)
    swarm bench --sweep 1,2,4,8,15 --only w1,w7    # W1 and W7 over host counts (big machines)

W1-W4 run through the SDK (what users get) and through the raw protocol (what the wire
allows); the JSON's plain keys are the SDK's, `w1_raw_...` the raw client's. Every output is
checked. The transport ceiling (`ceiling_...`) is measured in the same run. For W5 the worst
run counts (most lost, most delivered twice), for everything else the median.

What Swarm is compared with is measured in the same run too (`compare`): the in-process
baseline (`baseline`, `vs_baseline`), Ray and Dask where installed (`peers`, `vs_peers`), and
the machine's effective cores at the start and the end (`calibration`).

W8 (`--only w8`) SIGKILLs a journaled orchestrator under a deep queue and restarts it: lost,
delivered twice, restart to first and to last result (`durable.py`).

W9 (`--only w9`) measures what a deployment turns on, each pair in the same run: the journal,
TLS with tokens, metrics scraped every second, on against off, W1 and W3 ratios
(`deployment_cost.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

from swarm.bench import (
    ceiling,
    compare,
    deployment_cost,
    durable,
    failover,
    memory,
    report,
    scaling,
    workloads,
)
from swarm.bench.budget import CpuMeter, quietly, wait_quiet
from swarm.bench.drivers import Driver, RawDriver, SdkDriver
from swarm.bench.local import bench_swarm
from swarm.bench.raw import RawSession

WORKLOADS = (
    "ceiling",
    "w1",
    "w2",
    "w3",
    "w4",
    "seed",
    "baseline",
    "peers",
    "w5",
    "w6",
    "w7",
    "w8",
    "w9",
)
NEEDS_LOCAL = ("w5", "w7", "w8", "w9")
HOSTS = 2  # docs/workloads.md: 2 hosts on a 2-core machine
AGENTS = 500  # per host: W2's 1,000 agents in total
# Figures where the worst run counts, not the median.
WORST_MAX = (
    "w5_lost",
    "w5_duplicates",
    "w5_errored",
    "w5_stop_lost",
    "w5_stop_duplicates",
    "w8_lost",
    "w8_duplicates",
    "w8_wrong",
)
WORST_MIN = ("w5_ok",)

Samples = dict[str, list[Any]]


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _add(samples: Samples, figures: dict[str, Any], suffix: str = "") -> None:
    for key, value in figures.items():
        if suffix:
            key = key.replace("_", f"_{suffix}_", 1)
        samples.setdefault(key, []).append(value)
        if isinstance(value, float):
            _say(f"  {key} = {value:,.2f}")


Budgets = dict[str, dict[str, list[float]]]


async def _service(
    address: str,
    sizes: workloads.Sizes,
    repeat: int,
    names: set[str],
    agents: int,
    pids: dict[str, int] | None = None,
    settle: Callable[[], None] = lambda: None,
) -> tuple[Samples, list[list[dict[str, Any]]], Budgets]:
    """W1-W4 and the seed's table against one swarm, through the SDK and the raw protocol.

    With `pids` (a local swarm), each workload's CPU per task is metered per process.
    """
    from swarm.client import AsyncClient

    samples: Samples = {}
    budgets: Budgets = {}
    seed_runs: list[list[dict[str, Any]]] = []
    meter = CpuMeter({"client": os.getpid(), **pids}) if pids else None

    async def metered(
        name: str, tasks: int, make: Callable[[], Awaitable[dict[str, float]]]
    ) -> dict[str, float]:
        if meter is None:
            return await make()
        figures, seconds = await quietly(meter, make, settle, _say)
        for proc, s in seconds.items():
            budgets.setdefault(name, {}).setdefault(proc, []).append(s / tasks * 1e6)
        return figures

    # The workloads' inputs, made before anything is metered: the client's CPU per task is
    # the SDK's and gRPC's, not the benchmark's making of 20,000 payloads or a 10,000-node graph.
    workloads.w1_payloads(sizes.w1_tasks)
    workloads.dag(sizes.w4_layers, sizes.w4_width)
    async with RawSession(address) as raw, AsyncClient(address) as client:
        sdk = SdkDriver(client)
        drivers: list[tuple[str, Driver]] = [("", sdk), ("raw", RawDriver(raw))]
        for _, driver in drivers:
            await workloads.warm_up(driver, sizes.warmup)
        for r in range(repeat):
            settle()
            _say(f"round {r + 1}/{repeat}")
            for suffix, d in drivers:
                tag = f"_{suffix}" if suffix else ""
                s = sizes
                runs = {
                    "w1": (s.w1_tasks, partial(workloads.w1_noop, d, s.w1_tasks)),
                    "w2": (s.w2_tasks, partial(workloads.w2_io, d, s.w2_tasks, agents)),
                    # The meter counts W3's 50 warm-up trips too: CPU per trip is what it says.
                    "w3": (s.w3_trips + 50, partial(workloads.w3_latency, d, s.w3_trips)),
                    "w4": (
                        s.w4_layers * s.w4_width,
                        partial(workloads.w4_dag, d, s.w4_layers, s.w4_width),
                    ),
                }
                for name, (tasks, make) in runs.items():
                    if name in names:
                        _add(samples, await metered(name + tag, tasks, make), suffix)
            if "seed" in names:
                seed_runs.append(await workloads.seed_table(sdk))
                _add(samples, await workloads.serial_vs_parallel(sdk))
    return samples, seed_runs, budgets


# The handler kinds each workload needs from the hosts.
NEEDS_KINDS = {"w1": "echo", "w2": "sleep", "w3": "echo", "w4": "dag", "seed": "sleep"}


def _remote(address: str) -> tuple[set[str], int]:
    """Kinds served and agents in all, over the ACTIVE hosts of a running swarm."""
    import grpc
    from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

    with grpc.insecure_channel(address) as channel:
        stub = task_pb2_grpc.TaskServiceStub(channel)
        status = stub.GetStatus(task_pb2.GetStatusRequest(), timeout=10)
    hosts = [h for h in status.hosts if h.state == types_pb2.ACTIVE]
    return {k for h in hosts for k in h.kinds}, sum(h.agents for h in hosts)


def _names(args: argparse.Namespace) -> set[str]:
    names = set(args.only.split(",")) if args.only else set(WORKLOADS)
    unknown = names - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"--only: unknown workloads {sorted(unknown)}; choose from {WORKLOADS}")
    if args.connect:
        names -= set(NEEDS_LOCAL)
    return names


def _w9(
    w1: int, w3: int, rounds: int, quiet_below: float
) -> tuple[dict[str, object], list[float]]:
    """W9 in a process of its own (spawned): its figures and the machine's busy percentages
    before each arm (--quiet-below), which the parent records with its own."""
    busy: list[float] = []

    def settle() -> None:
        if quiet_below > 0:
            busy.append(wait_quiet(quiet_below))
            _say(f"  (machine {busy[-1]:.0f}% busy before this step)")

    return deployment_cost.measure(w1, w3, rounds, settle), busy


async def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen workloads, one after the other (never two at once), on one event loop."""
    sizes = workloads.QUICK if args.quick else workloads.FULL
    repeat: int = args.repeat
    names = _names(args)
    samples: Samples = {}
    out: dict[str, Any] = {}
    busy: list[float] = []

    def settle() -> None:
        """With --quiet-below, wait until the rest of the machine is idle enough."""
        if args.quiet_below > 0:
            busy.append(wait_quiet(args.quiet_below))
            _say(f"  (machine {busy[-1]:.0f}% busy before this step)")

    calibrations = {"start": compare.calibrate(_say, "start")}
    if "ceiling" in names:
        _say("== ceiling: raw batched echo over grpc.aio, direct and through a relay")
        tasks, trips = (20_000, 200) if args.quick else (50_000, 1_000)
        for _ in range(repeat):
            settle()
            _add(samples, await ceiling.measure(tasks, trips))
    if args.sweep:
        _say(f"== sweep over host counts {args.sweep}")
        counts = [int(n) for n in args.sweep.split(",")]
        out.update(await scaling.sweep(sizes, repeat, counts, names, settle))
        names -= {"w1", "w7"}
    if names & {"w1", "w2", "w3", "w4", "seed"}:
        if args.connect:
            kinds, agents = _remote(args.connect)
            for name, kind in NEEDS_KINDS.items():
                if name in names and kind not in kinds:
                    _say(f"== {name}: skipped, no host at {args.connect} serves {kind!r}")
                    names.discard(name)
            _say(f"== W1-W4 and the seed's table against {args.connect} ({agents} agents)")
            found, seeds, budgets = await _service(args.connect, sizes, repeat, names, agents)
        else:
            _say(f"== W1-W4 and the seed's table: {HOSTS} hosts x {AGENTS} agents")
            with bench_swarm(HOSTS, AGENTS) as swarm:
                pids = swarm.pids()
                found, seeds, budgets = await _service(
                    swarm.address, sizes, repeat, names, AGENTS * HOSTS, pids, settle
                )
        samples.update(found)
        out["budget_us_per_task"] = {
            w: {proc: statistics.median(v) for proc, v in procs.items()}
            for w, procs in budgets.items()
        }
        if seeds:
            out["seed_table"] = workloads.median_rows(seeds)
    # After Swarm has stopped, so that each has the machine to itself, as Swarm had.
    if "baseline" in names:
        out["baseline"] = compare.run_baseline(args.quick, repeat, AGENTS * HOSTS, settle, _say)
    if "peers" in names:
        out.update(compare.run_peers(args.quick, repeat, AGENTS * HOSTS, settle, _say))
    if "w5" in names:
        _say(f"== W5 failover: {sizes.w5_tasks} tasks of 50 ms, 2 hosts x 10 agents")
        for _ in range(repeat):
            runs = {}
            for mode in failover.MODES:
                settle()
                runs[mode] = await failover.failover_run(
                    mode, sizes.w5_tasks, sizes.w5_kill_after_s
                )
                _say(f"  {runs[mode]}")
            _add(samples, failover.w5_figures(runs))
    if "w6" in names:
        _say(f"== W6 one host process: {sizes.w6_agents} agents, {sizes.w6_inflight} tasks")
        for _ in range(repeat):
            settle()
            _add(samples, memory.measure(sizes.w6_agents, sizes.w6_inflight))
    if "w7" in names:
        _say(f"== W7 CPU-bound: {sizes.w7_tasks} tasks of 1 ms on 1 host, then {HOSTS}")
        out.update(await scaling.w7(sizes, repeat, HOSTS, settle))
    if "w8" in names:
        layers, width = sizes.w8_dag
        _say(
            f"== W8 orchestrator SIGKILL: {sizes.w8_tasks} tasks of 1 ms + a {layers}x{width} "
            "DAG queued behind 1,000 busy agents, journal on"
        )
        for _ in range(repeat):
            settle()
            run = await durable.crash_run(sizes.w8_tasks, sizes.w8_dag)
            if run.log_tail:
                _say(run.log_tail)
            _add(samples, run.figures())
    if "w9" in names:
        rounds = max(sizes.w9_rounds, repeat)
        _say(
            f"== W9 deployment cost: journal, TLS + tokens, metrics scraped each second, "
            f"on vs off; "
            f"W1 {sizes.w1_tasks} tasks, W3 {sizes.w3_trips} trips, {rounds} rounds per pair"
        )
        # The arms run event loops of their own (asyncio.run), so in a process of their own:
        # gRPC's aio layer serves one loop per process, and a loop in a thread beside this one
        # had its completions delivered here after it closed ("Event loop is closed").
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            job = pool.submit(_w9, sizes.w1_tasks, sizes.w3_trips, rounds, args.quiet_below)
            w9, w9_busy = await asyncio.wrap_future(job)
        busy.extend(w9_busy)
        for key, value in w9.items():
            if isinstance(value, float):
                _say(f"  {key} = {value:.3f}")
        out.update(w9)
    worst = WORST_MAX + WORST_MIN
    figures: dict[str, Any] = {}
    figures.update(report.medians({k: v for k, v in samples.items() if k not in worst}))
    figures.update({k: max(v) for k, v in samples.items() if k in WORST_MAX})
    figures.update({k: min(v) for k, v in samples.items() if k in WORST_MIN})
    figures.update(out)
    figures.update(compare.ratios(figures))
    calibrations["end"] = compare.calibrate(_say, "end")
    figures["calibration"] = calibrations
    figures["machine"] = report.machine()
    figures["config"] = {
        "quick": args.quick,
        "repeat": repeat,
        "connect": args.connect or None,
        "quiet_below_percent": args.quiet_below or None,
        "busy_percent_before_steps": busy or None,
    }
    figures["samples"] = samples
    return figures
