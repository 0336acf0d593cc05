"""The systems users would pick instead, run in the same invocation: Ray and Dask, W1-W4.

    pip install 'swarm[peers]'                          # ray, dask[distributed]
    python -m swarm.bench.peers ray --quick --json -    # one system's W1-W4, as JSON

Same workloads, same sizes, same checks (the functions of `workloads`, through a driver per
system); each system runs in a child process of its own, alone, after Swarm has stopped.
Neither is a dependency: where one is not installed `swarm bench` says so and goes on. No
figure of theirs is written down anywhere else; a ratio to them is taken only in the run
that measured both.

Ray: `ray.init(num_cpus=2)`; no-op and graph tasks are `ray.remote` functions (a graph's
parents are passed as ObjectRefs, so Ray hands the child their values); W2's sleeping tasks go
round-robin to 2 async actors with `max_concurrency` = agents / 2 each, Ray's way to have
1,000 waiting agents on 2 cores. Dask: `LocalCluster(n_workers=2, threads_per_worker=agents/2)`
and `Client.map` / `Client.submit`, parents as futures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import time
from collections.abc import Sequence
from typing import Any

from swarm.bench import workloads
from swarm.bench.baseline import child_json, write_json
from swarm.bench.drivers import DEADLINE_S

SYSTEMS = {"ray": "ray", "dask": "dask.distributed"}  # system: the module it needs
WORKERS = 2  # one per core, as Swarm's 2 hosts


def missing() -> dict[str, str]:
    """The systems that cannot run here, each with why (without importing them)."""
    out = {}
    for system, module in SYSTEMS.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            out[system] = f"{module} is not installed (pip install 'swarm[peers]')"
    return out


# The handlers, as plain functions: both systems ship them to their workers by reference.
def echo(payload: bytes, *deps: bytes) -> bytes:
    return payload


def sleep(payload: bytes, *deps: bytes) -> bytes:
    time.sleep(int(payload) / 1000)
    return payload


def dag(payload: bytes, *deps: bytes) -> bytes:
    own, _, parents = payload.partition(b"|")
    want = parents.split(b",") if parents else []
    if list(deps) != want:
        raise workloads.WrongResult(f"{own!r} got {deps!r} from its parents, expected {want!r}")
    return own


FUNCTIONS = {"echo": echo, "sleep": sleep, "dag": dag}


class SleepAgents:
    """Ray's W2 agents: an async actor runs up to `max_concurrency` sleeps at once."""

    async def sleep(self, payload: bytes) -> bytes:
        await asyncio.sleep(int(payload) / 1000)
        return payload


class _Driver:
    """Blocking calls inside the async protocol: the child runs nothing else on its loop."""

    name = "peer"

    def submit(self, kind: str, payload: bytes, deps: Sequence[Any]) -> Any:
        raise NotImplementedError

    def get(self, handles: list[Any]) -> list[bytes]:
        raise NotImplementedError

    async def run(
        self, kind: str, payloads: Sequence[bytes], parents: Sequence[Sequence[int]] | None = None
    ) -> tuple[list[bytes], float]:
        t0 = time.perf_counter()
        handles: list[Any] = []
        for i, payload in enumerate(payloads):
            ps = parents[i] if parents is not None else ()
            handles.append(self.submit(kind, payload, [handles[j] for j in ps]))
        outputs = self.get(handles)
        return outputs, time.perf_counter() - t0

    async def round_trip(self, kind: str, payload: bytes) -> tuple[bytes, float]:
        t0 = time.perf_counter()
        output = self.get([self.submit(kind, payload, [])])[0]
        return output, time.perf_counter() - t0


class RayDriver(_Driver):
    name = "ray"

    def __init__(self, agents: int) -> None:
        import ray

        ray.init(num_cpus=WORKERS, include_dashboard=False, logging_level="ERROR")
        self.ray = ray
        self.remote = {kind: ray.remote(fn) for kind, fn in FUNCTIONS.items()}
        per = max(1, agents // WORKERS)
        actor = ray.remote(SleepAgents).options(max_concurrency=per)
        self.actors = [actor.remote() for _ in range(WORKERS)]
        self._next = 0

    def submit(self, kind: str, payload: bytes, deps: Sequence[Any]) -> Any:
        if kind == "sleep":
            self._next += 1
            return self.actors[self._next % WORKERS].sleep.remote(payload)
        return self.remote[kind].remote(payload, *deps)

    def get(self, handles: list[Any]) -> list[bytes]:
        return list(self.ray.get(handles, timeout=DEADLINE_S))

    def close(self) -> None:
        self.ray.shutdown()


class DaskDriver(_Driver):
    name = "dask"

    def __init__(self, agents: int) -> None:
        from dask.distributed import Client, LocalCluster

        per = max(1, agents // WORKERS)
        self.cluster = LocalCluster(
            n_workers=WORKERS, threads_per_worker=per, processes=True, dashboard_address=None
        )
        self.client = Client(self.cluster)

    def submit(self, kind: str, payload: bytes, deps: Sequence[Any]) -> Any:
        return self.client.submit(FUNCTIONS[kind], payload, *deps, pure=False)

    def get(self, handles: list[Any]) -> list[bytes]:
        return list(self.client.gather(handles))

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


async def measure(system: str, sizes: workloads.Sizes, agents: int) -> dict[str, Any]:
    """W1-W4 once through `system`, after the same warm-up as Swarm's; Swarm's keys."""
    d = RayDriver(agents) if system == "ray" else DaskDriver(agents)
    s = sizes
    figures: dict[str, Any] = {}
    try:
        await workloads.warm_up(d, s.warmup)
        figures.update(await workloads.w1_noop(d, s.w1_tasks))
        figures.update(await workloads.w2_io(d, s.w2_tasks, agents))
        figures.update(await workloads.w3_latency(d, s.w3_trips))
        figures.update(await workloads.w4_dag(d, s.w4_layers, s.w4_width))
    finally:
        d.close()
    return figures


def run_child(system: str, quick: bool, agents: int, timeout_s: float = 1800.0) -> dict[str, Any]:
    """One round of `system` in a child process of its own; its figures."""
    args = ["swarm.bench.peers", system, "--agents", str(agents)]
    return child_json([*args, "--quick"] if quick else args, timeout_s)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m swarm.bench.peers", description=__doc__)
    p.add_argument("system", choices=sorted(SYSTEMS))
    p.add_argument("--quick", action="store_true", help="the quick sizes")
    p.add_argument("--agents", type=int, default=1000, help="concurrent tasks for W2")
    p.add_argument("--json", metavar="FILE", default="-", help="where the figures go (- stdout)")
    args = p.parse_args(argv)
    if args.system in missing():
        raise SystemExit(missing()[args.system])
    sizes = workloads.QUICK if args.quick else workloads.FULL
    figures = asyncio.run(measure(args.system, sizes, args.agents))
    write_json(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
