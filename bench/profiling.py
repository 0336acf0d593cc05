"""Where each process spends its time under one workload: py-spy on the client (this process),
the orchestrator and one host, beside the CPU budget per task.

    pip install py-spy
    python -m swarm.bench.profiling w1 --seconds 5 --out /tmp/prof    # w1, w2, w3 or w4

For each process it prints the functions with the most samples of their own (py-spy leaves out
idle threads), grouped as: our code (swarm), gRPC's Python layer, asyncio, and the event loop
or gRPC's poller thread running native code. The raw collapsed stacks stay in --out.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from swarm.bench import workloads
from swarm.bench.budget import CpuMeter
from swarm.bench.drivers import Driver, SdkDriver
from swarm.bench.local import bench_swarm
from swarm.common.runtime import run


def top_frames(path: Path, limit: int) -> tuple[int, list[tuple[str, float]]]:
    """(samples, [(frame, share of samples spent in it, not in its callees)])."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        own[stack.split(";")[-1]] += n
    return total, [(frame, n / max(total, 1)) for frame, n in own.most_common(limit)]


_OURS = re.compile(r"\((?:swarm/)?(?:server|agent_host|client|cli|common|v1)/")


def group(frame: str) -> str:
    if _OURS.search(frame):
        return "swarm"
    if "grpc" in frame:
        return "grpc (Python)"
    if "asyncio" in frame:
        return "asyncio"
    if frame.startswith(("Thread.run", "Runner.run")):
        return "native: event loop / gRPC poller"
    return "other"


async def _loop(driver: Driver, workload: str, seconds: float) -> int:
    """Run the workload over and over for `seconds`; the number of tasks run."""
    end = time.perf_counter() + seconds
    tasks = 0
    while time.perf_counter() < end:
        if workload == "w1":
            await workloads.w1_noop(driver, 20_000)
            tasks += 20_000
        elif workload == "w2":
            await workloads.w2_io(driver, 20_000, 1_000)
            tasks += 20_000
        elif workload == "w3":
            await workloads.w3_latency(driver, 200, warmup=0)
            tasks += 200
        else:
            await workloads.w4_dag(driver, 50, 200)
            tasks += 10_000
    return tasks


async def profile(workload: str, seconds: float, out: Path, rate: int) -> None:
    from swarm.client import AsyncClient

    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    with bench_swarm(2, 500) as swarm:
        pids = {"client": os.getpid(), **swarm.pids()}
        async with AsyncClient(swarm.address) as client:
            driver = SdkDriver(client)
            await workloads.warm_up(driver, 2_000)
            meter = CpuMeter(pids)
            meter.start()
            tasks = await _loop(driver, workload, 1.0)
            budget = meter.per_task(tasks)
            profiled = {k: v for k, v in pids.items() if k in ("client", "orchestrator", "host0")}
            spies = []
            for name, pid in profiled.items():
                record = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking"]
                spies.append(
                    subprocess.Popen(  # noqa: ASYNC220 - started once, while the workload waits
                        [*record, "--format", "raw", "-o", str(out / f"{name}.txt")],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            try:
                await _loop(driver, workload, seconds)
            finally:
                for s in spies:
                    s.send_signal(signal.SIGINT)
                for s in spies:
                    s.wait(60)
    print(f"{workload}: CPU µs per task (unprofiled run of {tasks} tasks)")
    print("  " + "  ".join(f"{k} {v:.1f}" for k, v in budget.items()))
    for name in profiled:
        total, frames = top_frames(out / f"{name}.txt", 12)
        groups: dict[str, float] = collections.defaultdict(float)
        for frame, n in top_frames(out / f"{name}.txt", 10_000)[1]:
            groups[group(frame)] += n
        print(f"\n{name}: {total} samples; " + ", ".join(f"{g} {s:.0%}" for g, s in groups.items()))
        for frame, share in frames:
            print(f"  {share:6.1%}  {frame}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=("w1", "w2", "w3", "w4"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--out", type=Path, default=Path("bench-profile"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    run(profile(args.workload, args.seconds, args.out, args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
