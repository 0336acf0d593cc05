"""`swarm demo`: start a local swarm, run a small graph of agent tasks, print what happened.

The graph is `demo_handlers`' Monte Carlo pi: a fan-out of `pi.sample` tasks and one
`pi.reduce` that depends on all of them, built as a `swarm.client.Graph` and submitted in one
call; the orchestrator releases the reduce when the last sample finishes and hands it their
outputs. Everything a user would write is in `run_graph`; the rest is the local swarm around it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swarm.client import Client, DeadlineExceeded, Graph, SwarmError, SyncTaskFuture
from swarm.deploy.local import LocalSwarm

HANDLERS = "swarm.cli.demo_handlers"
WAIT_S = 120.0
DEMO_AGENTS = 32
CRASH_LOOP = 3  # host restarts during the demo that mean "give up, show the logs"


def register(sub: Any) -> None:
    from swarm.cli.up import add_swarm_args

    demo = sub.add_parser(
        "demo",
        help="start a local swarm, run a small task graph, print a summary",
        description="Start a local swarm on an ephemeral port, run a fan-out of agent tasks "
        "and a reduce over their outputs, print a summary, stop everything.",
    )
    # Fewer agents than tasks, so that agents are reused and their state shows it.
    add_swarm_args(demo, port=0, agents=DEMO_AGENTS)
    demo.add_argument("--tasks", type=int, default=200, help="fan-out width (default 200)")
    demo.add_argument(
        "--samples", type=int, default=20_000, help="random points per task (default 20000)"
    )
    demo.set_defaults(run=run_demo)


@dataclass(frozen=True, slots=True)
class DemoRun:
    tasks: int
    wall_s: float
    per_host: dict[str, int]
    answer: dict[str, Any]

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / self.wall_s if self.wall_s > 0 else 0.0


def run_demo(args: argparse.Namespace) -> int:
    if not 1 <= args.tasks <= 5000 or args.samples < 1:
        print("swarm demo: --tasks must be within 1..5000 and --samples >= 1", file=sys.stderr)
        return 2
    with LocalSwarm(
        hosts=args.hosts,
        agents_per_host=args.agents_per_host,
        modules=[HANDLERS, *args.module],
        port=args.port,
        drain_grace_s=args.drain_grace,
    ) as swarm:
        print(
            f"swarm demo: {args.hosts} hosts x {args.agents_per_host} agents at {swarm.address}",
            flush=True,
        )

        def trouble() -> str | None:
            if sum(swarm.restarts) < CRASH_LOOP:
                return None
            return f"hosts keep dying ({sum(swarm.restarts)} restarts)\n{swarm.logs()}"

        try:
            result = run_graph(swarm.address, args.tasks, args.samples, trouble)
        except (DemoFailed, SwarmError) as exc:
            print(f"swarm demo: failed: {exc}", file=sys.stderr)
            return 1
    print(summary(result, args.tasks))
    return 0


class DemoFailed(RuntimeError):
    pass


def run_graph(
    address: str, width: int, samples: int, trouble: Callable[[], str | None] = lambda: None
) -> DemoRun:
    """Submit `width` samples and their reduce as one graph; wait; tally where they ran.

    `trouble` is asked about once a second while waiting: a reason to give up, or None.
    """
    graph = Graph()
    parts = [graph.add("pi.sample", {"seed": i, "samples": samples}) for i in range(width)]
    total = graph.add("pi.reduce", depends_on=parts, decode=True)
    with Client(address) as client:
        t0 = time.perf_counter()
        futures = client.submit_graph(graph)
        answer = _result(futures[total], trouble)  # the reduce ends last
        wall = time.perf_counter() - t0
        per_host = Counter(fut.host_id for fut in futures.values())  # as the orchestrator saw it
    return DemoRun(len(futures), wall, dict(sorted(per_host.items())), answer)


def _result(fut: SyncTaskFuture, trouble: Callable[[], str | None]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return fut.result(timeout=1.0)
        except DeadlineExceeded:
            why = trouble()
            if why is not None:
                raise DemoFailed(why) from None
            if time.monotonic() > deadline:
                raise DemoFailed(f"the graph had not finished after {WAIT_S:.0f} s") from None


def summary(run: DemoRun, width: int) -> str:
    a = run.answer
    hosts = "   ".join(f"{h}: {n}" for h, n in run.per_host.items())
    return "\n".join(
        [
            f"  tasks       {run.tasks} ({width} pi.sample, then 1 pi.reduce over their outputs)",
            f"  wall time   {run.wall_s:.2f} s ({run.tasks_per_s:,.0f} tasks/s)",
            f"  per host    {hosts}",
            f"  answer      pi ~ {a['pi']:.5f} from {a['samples']:,} samples "
            f"by {a['agents']} agents (the busiest ran {a['busiest_agent_tasks']})",
        ]
    )
