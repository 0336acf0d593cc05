"""The in-process baseline: the system Swarm replaces, rebuilt so it runs the same workloads.

    python -m swarm.bench.baseline --quick --json -      # W1-W4 and the seed's table, as JSON

One process, no serialization, no process boundary, built the way the audit of the seed
describes it: agents are small objects, tasks are dealt to them round-robin, and each group of
tasks runs as one `asyncio.gather`; a graph runs group by group (see `InProcessDriver`). It
runs the functions of `workloads` through `InProcessDriver`, so every output is checked
exactly as Swarm's are, at the same sizes.

`swarm bench` starts it as a child process of its own (`run_child`), so that it gets a core
of its own as Swarm's processes do and does not share the benchmark client's event loop; every
ratio against it is taken within one invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from swarm.bench import workloads
from swarm.bench.drivers import DEADLINE_S
from swarm.bench.handlers import EdgeError
from swarm.deploy.orphan import tied, tied_env

Handler = Callable[[bytes, list[bytes]], Awaitable[bytes]]


async def _echo(payload: bytes, deps: list[bytes]) -> bytes:
    return payload


async def _sleep(payload: bytes, deps: list[bytes]) -> bytes:
    await asyncio.sleep(int(payload) / 1000)
    return payload


async def _dag(payload: bytes, deps: list[bytes]) -> bytes:
    # The same check as swarm.bench.handlers.dag: the parents' outputs, in order.
    own, _, parents = payload.partition(b"|")
    want = parents.split(b",") if parents else []
    if deps != want:
        raise EdgeError(f"{own!r} got {deps!r} from its parents, expected {want!r}")
    return own


HANDLERS: dict[str, Handler] = {"echo": _echo, "sleep": _sleep, "dag": _dag}


class Agent:
    """The seed's agent: a small object with an id and state of its own, not a task."""

    __slots__ = ("agent_id", "state", "tasks_done")

    def __init__(self, agent_id: int) -> None:
        self.agent_id = agent_id
        self.state: dict[str, Any] = {}
        self.tasks_done = 0

    async def execute(self, handler: Handler, payload: bytes, deps: list[bytes]) -> bytes:
        output = await handler(payload, deps)
        self.tasks_done += 1
        return output


class InProcessDriver:
    """A `Driver` shaped like the seed system (use as `async with`).

    As the audit describes it: tasks are dealt to agents round-robin and a group of tasks runs
    with one `asyncio.gather`, so a group's concurrency is its size whatever the agent count;
    a graph runs group by group, each group the tasks whose parents have all finished, and each
    handler gets its parents' outputs. Finding the next group uses unmet-parent counts rather
    than the seed's rescans, so the baseline is the seed's design without its O(n^2) defect.
    """

    name = "baseline"

    def __init__(self, agents: int) -> None:
        self.agents = [Agent(i) for i in range(agents)]
        self._next = 0  # round-robin position, carried across groups as the seed's was

    async def __aenter__(self) -> InProcessDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def _group(
        self, handler: Handler, payloads: Sequence[bytes], deps: Sequence[list[bytes]]
    ) -> list[bytes]:
        agents, n, first = self.agents, len(self.agents), self._next
        self._next = (first + len(payloads)) % n
        runs = [
            agents[(first + i) % n].execute(handler, payload, d)
            for i, (payload, d) in enumerate(zip(payloads, deps, strict=True))
        ]
        return list(await asyncio.gather(*runs))

    async def run(
        self, kind: str, payloads: Sequence[bytes], parents: Sequence[Sequence[int]] | None = None
    ) -> tuple[list[bytes], float]:
        handler = HANDLERS[kind]
        async with asyncio.timeout(DEADLINE_S):
            t0 = time.perf_counter()
            if parents is None:
                outputs = await self._group(handler, payloads, [[]] * len(payloads))
            else:
                outputs = await self._graph(handler, payloads, parents)
            return outputs, time.perf_counter() - t0

    async def _graph(
        self, handler: Handler, payloads: Sequence[bytes], parents: Sequence[Sequence[int]]
    ) -> list[bytes]:
        outputs: list[bytes] = [b""] * len(payloads)
        unmet = [len(ps) for ps in parents]
        children: list[list[int]] = [[] for _ in payloads]
        for i, ps in enumerate(parents):
            for j in ps:
                children[j].append(i)
        group = [i for i, ps in enumerate(parents) if not ps]
        while group:
            deps = [[outputs[j] for j in parents[i]] for i in group]
            done = await self._group(handler, [payloads[i] for i in group], deps)
            ready = []
            for i, output in zip(group, done, strict=True):
                outputs[i] = output
                for c in children[i]:
                    unmet[c] -= 1
                    if unmet[c] == 0:
                        ready.append(c)
            group = ready
        return outputs

    async def round_trip(self, kind: str, payload: bytes) -> tuple[bytes, float]:
        t0 = time.perf_counter()
        (output,) = await self._group(HANDLERS[kind], [payload], [[]])
        return output, time.perf_counter() - t0


async def measure(sizes: workloads.Sizes, agents: int) -> dict[str, Any]:
    """One round of W1-W4 and the seed's table, in this process; the figures by Swarm's keys."""
    s = sizes
    figures: dict[str, Any] = {}
    async with InProcessDriver(agents) as d:
        await workloads.warm_up(d, s.warmup)
        figures.update(await workloads.w1_noop(d, s.w1_tasks))
        figures.update(await workloads.w2_io(d, s.w2_tasks, agents))
        figures.update(await workloads.w3_latency(d, s.w3_trips))
        figures.update(await workloads.w4_dag(d, s.w4_layers, s.w4_width))
        figures["seed_table"] = await workloads.seed_table(d)
        figures.update(await workloads.serial_vs_parallel(d))
    return figures


def child_json(args: list[str], timeout_s: float) -> dict[str, Any]:
    """Run `python -m args... --json FILE` tied to this process (it dies with this one) and
    read FILE: a file, not stdout, because a peer system may print on stdout as it starts."""
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        path = os.path.join(tmp, "figures.json")
        done = subprocess.run(
            tied(*args, "--json", path),
            env=tied_env(os.environ),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
        with open(path) as f:
            figures: dict[str, Any] = json.load(f)
    return figures


def write_json(figures: dict[str, Any], dest: str) -> None:
    """A child's side of `child_json`: its figures to `dest` ("-": stdout)."""
    text = json.dumps(figures, indent=2, sort_keys=True) + "\n"
    if dest == "-":
        sys.stdout.write(text)
    else:
        with open(dest, "w") as f:
            f.write(text)


def run_child(quick: bool, agents: int, timeout_s: float = 600.0) -> dict[str, Any]:
    """One round in a child process of its own; its figures."""
    args = ["swarm.bench.baseline", "--agents", str(agents)]
    return child_json([*args, "--quick"] if quick else args, timeout_s)


def main(argv: list[str] | None = None) -> int:
    from swarm.common.runtime import run

    p = argparse.ArgumentParser(prog="python -m swarm.bench.baseline", description=__doc__)
    p.add_argument("--quick", action="store_true", help="the quick sizes")
    p.add_argument(
        "--agents", type=int, default=1000, help="agents, dealt tasks round-robin (W2: 1,000)"
    )
    p.add_argument("--json", metavar="FILE", default="-", help="where the figures go (- stdout)")
    args = p.parse_args(argv)
    figures = run(measure(workloads.QUICK if args.quick else workloads.FULL, args.agents))
    write_json(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
