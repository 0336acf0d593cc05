"""The journal's cost: W1 and W3 with the SQLite journal and in memory, measured in the same run.

    python -m swarm.bench.journal_cost [--layout procs|inproc] [--rounds 2] [--w1 20000]
                                       [--w3 1000] [--sync normal] [--quiet-below PERCENT]

Each round runs both arms back to back (memory, then journal, alternating which goes first), so
load on the machine hits both arms alike; the journal arm writes a real file in a temporary
directory. Two layouts:

* `procs` (default, the headline): as deployed, `LocalSwarm` (the supervisor of `swarm up`)
  with the orchestrator, 2 hosts x 500 agents in processes of their own, the orchestrator run
  with `--journal sqlite --state-dir TMP` or `--journal memory`: the journal's writer thread
  competes only with the orchestrator's event loop. Also reports the orchestrator's CPU time
  per W1 task (`orch_us_per_task`), the least noisy figure on a shared machine, and that of
  the whole swarm (orchestrator, hosts and the benchmark's client: `swarm_us_per_task`).
* `inproc`: server, hosts and client in one process (one GIL for all); W9's journal pair
  (bench/deployment_cost.py) runs `procs`.

Reports the medians and the ratios journal/memory: W1 throughput (target >= 0.7) and W3 p50
latency (target <= 1.3), and, in process, the journal's size and commits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from swarm.bench import ab
from swarm.bench.budget import CpuMeter, wait_quiet
from swarm.bench.drivers import SdkDriver
from swarm.bench.local import HANDLERS
from swarm.bench.workloads import w1_noop, w3_latency, warm_up
from swarm.client import AsyncClient
from swarm.deploy.inproc import InProcessSwarm
from swarm.deploy.local import LocalSwarm
from swarm.server.journal_sqlite import SqliteJournal

LAYOUTS = ("procs", "inproc")
_NOT_OURS = ("other", "irq", "wall")  # CpuMeter's figures that are no process of the swarm


async def _measure(
    address: str, w1: int, w3: int, pids: dict[str, int] | None = None
) -> dict[str, float]:
    async with AsyncClient(address) as client:
        driver = SdkDriver(client)
        await warm_up(driver, 500)
        meter = CpuMeter(pids) if pids else None
        if meter is not None:
            meter.start()
        out = await w1_noop(driver, w1)
        if meter is not None:
            per = meter.per_task(w1)
            out["orch_us_per_task"] = per["orchestrator"]
            out["swarm_us_per_task"] = sum(v for k, v in per.items() if k not in _NOT_OURS)
        return {**out, **await w3_latency(driver, w3)}


def _journal_bytes(path: Path) -> float:
    return float(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")))


def arm_inproc(path: Path | None, w1: int, w3: int, sync: str) -> dict[str, float]:
    journal = SqliteJournal(path, sync) if path is not None else None
    with InProcessSwarm(hosts=2, agents_per_host=500, journal=journal) as swarm:
        out = asyncio.run(_measure(swarm.address, w1, w3))
        writer = swarm.server.orch.journal if swarm.server is not None else None
        if writer is not None:
            out["commits"] = writer.commits
            out["records_per_commit"] = writer.rows / max(1, writer.commits)
    if path is not None:
        out["journal_bytes"] = _journal_bytes(path)
    return out


def arm_procs(path: Path | None, w1: int, w3: int, sync: str) -> dict[str, float]:
    if path is None:
        server_args: tuple[str, ...] = ("--journal", "memory")
    else:
        server_args = ("--journal", "sqlite", "--state-dir", str(path.parent))
        server_args += ("--journal-sync", sync)
    with LocalSwarm(2, 500, modules=[HANDLERS], server_args=server_args, on_exit="kill") as s:
        out = asyncio.run(_measure(s.address, w1, w3, {**s.pids(), "client": os.getpid()}))
    if path is not None:
        out["journal_bytes"] = _journal_bytes(path)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="swarm-bench-journal")
    parser.add_argument("--layout", choices=LAYOUTS, default="procs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--w1", type=int, default=20_000)
    parser.add_argument("--w3", type=int, default=1_000)
    parser.add_argument("--sync", choices=("normal", "full"), default="normal")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.0,
        help="before each arm, wait (up to 5 min) until the machine is at most this %% busy",
    )
    args = parser.parse_args(argv)
    arm = arm_procs if args.layout == "procs" else arm_inproc
    with tempfile.TemporaryDirectory() as tmp:

        def one(name: str, r: int) -> ab.Figures:
            if args.quiet_below > 0:
                wait_quiet(args.quiet_below)
            path = Path(tmp) / f"j{r}" / "journal.sqlite" if name == "journal" else None
            if path is not None:
                path.parent.mkdir()
            return arm(path, args.w1, args.w3, args.sync)

        runs = ab.alternate(args.rounds, "memory", "journal", one)
    print(ab.report(runs, "memory", "journal", layout=args.layout, sync=args.sync))


if __name__ == "__main__":
    main()
