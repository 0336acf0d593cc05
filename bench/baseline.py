"""The in-process baseline: the system Swarm replaces, rebuilt so it runs the same workloads.

    python -m swarm.bench.baseline --quick --json -      # W1-W4 and the seed's table, as JSON

One process, no serialization, no process boundary: agents are asyncio tasks, a pool of
`agents` coroutines pulling from one `asyncio.Queue`; each task's result goes into a future.
A graph's task is queued once its parents have finished and its handler receives their
outputs, as Swarm's `dag` handler does. It runs the functions of `workloads` through
`InProcessDriver`, so every output is checked exactly as Swarm's are, at the same sizes.

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

# One queued task: handler, payload, parents' outputs, where its result goes, what to release.
_Item = tuple[Handler, bytes, list[bytes], "asyncio.Future[bytes]", Callable[[bytes], None] | None]


class InProcessDriver:
    """A `Driver` over a pool of agent coroutines in this process (use as `async with`)."""

    name = "baseline"

    def __init__(self, agents: int) -> None:
        self.agents = agents
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._pool: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> InProcessDriver:
        self._pool = [asyncio.create_task(self._agent()) for _ in range(self.agents)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._pool:
            task.cancel()
        await asyncio.gather(*self._pool, return_exceptions=True)

    async def _agent(self) -> None:
        queue = self._queue
        while True:
            handler, payload, deps, fut, on_done = await queue.get()
            try:
                output = await handler(payload, deps)
            except Exception as exc:  # a handler's failure is the task's, not the agent's
                fut.set_exception(exc)
                continue
            fut.set_result(output)
            if on_done is not None:
                on_done(output)

    async def run(
        self, kind: str, payloads: Sequence[bytes], parents: Sequence[Sequence[int]] | None = None
    ) -> tuple[list[bytes], float]:
        async with asyncio.timeout(DEADLINE_S):
            t0 = time.perf_counter()
            futs = self._submit(HANDLERS[kind], payloads, parents)
            outputs = list(await asyncio.gather(*futs))
            return outputs, time.perf_counter() - t0

    def _submit(
        self,
        handler: Handler,
        payloads: Sequence[bytes],
        parents: Sequence[Sequence[int]] | None,
    ) -> list[asyncio.Future[bytes]]:
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[bytes]] = [loop.create_future() for _ in payloads]
        put = self._queue.put_nowait
        if parents is None:
            for payload, fut in zip(payloads, futs, strict=True):
                put((handler, payload, [], fut, None))
            return futs
        # Dependency counting: a finished task releases the children whose last parent it was.
        outputs: list[bytes] = [b""] * len(payloads)
        unmet = [len(ps) for ps in parents]
        children: list[list[int]] = [[] for _ in payloads]
        for i, ps in enumerate(parents):
            for j in ps:
                children[j].append(i)

        def finisher(i: int) -> Callable[[bytes], None]:
            def done(output: bytes) -> None:
                outputs[i] = output
                for c in children[i]:
                    unmet[c] -= 1
                    if unmet[c] == 0:
                        deps = [outputs[j] for j in parents[c]]
                        put((handler, payloads[c], deps, futs[c], finisher(c)))

            return done

        for i, ps in enumerate(parents):
            if not ps:
                put((handler, payloads[i], [], futs[i], finisher(i)))
        return futs

    async def round_trip(self, kind: str, payload: bytes) -> tuple[bytes, float]:
        t0 = time.perf_counter()
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((HANDLERS[kind], payload, [], fut, None))
        output = await fut
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


def run_child(quick: bool, agents: int, timeout_s: float = 600.0) -> dict[str, Any]:
    """One round in a child process of its own; its figures."""
    args = ["swarm.bench.baseline", "--agents", str(agents)]
    return child_json([*args, "--quick"] if quick else args, timeout_s)


def main(argv: list[str] | None = None) -> int:
    from swarm.common.runtime import run

    p = argparse.ArgumentParser(prog="python -m swarm.bench.baseline", description=__doc__)
    p.add_argument("--quick", action="store_true", help="the quick sizes")
    p.add_argument("--agents", type=int, default=1000, help="agent coroutines (W2: 1,000)")
    p.add_argument("--json", metavar="FILE", default="-", help="where the figures go (- stdout)")
    args = p.parse_args(argv)
    figures = run(measure(workloads.QUICK if args.quick else workloads.FULL, args.agents))
    text = json.dumps(figures, indent=2, sort_keys=True) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
    else:
        with open(args.json, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
