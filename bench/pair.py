"""W3 latency of two trees (or two settings) in one run, their round trips alternating.

    python -m swarm.bench.pair PYTHON_A PYTHON_B [--trips 3000] [--rounds 3] [-- SERVER ARGS]

PYTHON_A and PYTHON_B are interpreters with Swarm installed (a venv each: the tree before a
change and the tree after it). Each starts a local swarm (the orchestrator and 2 hosts x 500
agents, as `swarm bench`) with its own code and holds it; this process then drives both with
the SDK, trip by trip, A then B then B then A, so whatever the machine does at a moment (a
noisy neighbour, frequency) hits both alike. On this 2-vCPU VM, W3 medians of runs minutes
apart differ by up to 50 %; the paired ratio B/A moves by a few percent. Server args after
`--` go to both orchestrators; `STATE` in them stands for a fresh state directory each (for
`--journal sqlite --state-dir STATE`).

The ratio is what to read: two swarms idle beside each other make both slower in absolute terms
than one alone (`swarm bench` reports those).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
from pathlib import Path

from swarm.bench.drivers import SdkDriver
from swarm.bench.workloads import w1_noop, warm_up
from swarm.client import AsyncClient

# Run by each interpreter with `-c` (so the other tree needs no copy of this module): start a
# local swarm with that interpreter's Swarm, print its address, hold it until stdin closes, then
# stop it, children and all. argv: the orchestrator's args, STATE a fresh state directory.
HOLD = """
import sys, tempfile
from swarm.bench.local import HANDLERS
from swarm.deploy.local import LocalSwarm
with tempfile.TemporaryDirectory() as tmp:
    args = tuple(tmp if a == "STATE" else a for a in sys.argv[1:])
    with LocalSwarm(2, 500, modules=[HANDLERS], server_args=args, on_exit="kill") as s:
        print(s.address, flush=True)
        sys.stdin.read()
"""


async def _pair(addresses: list[str], trips: int) -> tuple[float, float]:
    async with AsyncClient(addresses[0]) as ca, AsyncClient(addresses[1]) as cb:
        drivers = [SdkDriver(ca), SdkDriver(cb)]
        for d in drivers:
            await warm_up(d, 500)
            await w1_noop(d, 2_000)
        samples: list[list[float]] = [[], []]
        for i in range(trips + 50):
            for j in (0, 1) if i % 2 == 0 else (1, 0):
                _, seconds = await drivers[j].round_trip("echo", b"%d" % i)
                if i >= 50:
                    samples[j].append(seconds * 1e6)
        return statistics.median(samples[0]), statistics.median(samples[1])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    server_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, server_args = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(prog="swarm-bench-pair")
    parser.add_argument("python_a", type=Path)
    parser.add_argument("python_b", type=Path)
    parser.add_argument("--trips", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    runs = []
    for _ in range(args.rounds):
        procs = [
            subprocess.Popen(
                [str(p), "-c", HOLD, *server_args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for p in (args.python_a, args.python_b)
        ]
        try:
            addresses = [p.stdout.readline().strip() for p in procs if p.stdout is not None]
            if not all(addresses):
                raise SystemExit(f"a swarm did not start: {args.python_a}, {args.python_b}")
            a, b = asyncio.run(_pair(addresses, args.trips))
        finally:
            for p in procs:
                if p.stdin is not None:
                    p.stdin.close()
                p.wait(60)
        runs.append({"a_p50_us": round(a), "b_p50_us": round(b), "b_over_a": round(b / a, 3)})
    ratios = [r["b_over_a"] for r in runs]
    summary = {"server_args": server_args, "b_over_a_median": statistics.median(ratios)}
    print(json.dumps({**summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
