"""The two clients a workload can run through: the SDK (what users get) and the raw protocol.

Both take the same workload description: payloads in order and, for a graph, each task's
parents as indices of earlier tasks. Both time from just before the first submit to the last
result in hand, and return the outputs in order for the workload to check.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Protocol

from swarm.bench.raw import RawSession


class Driver(Protocol):
    name: str

    async def run(
        self, kind: str, payloads: Sequence[bytes], parents: Sequence[Sequence[int]] | None = None
    ) -> tuple[list[bytes], float]:
        """Submit every task at once, wait for all; (outputs in order, wall seconds)."""
        ...

    async def round_trip(self, kind: str, payload: bytes) -> tuple[bytes, float]:
        """Submit one task and wait for it; (output, seconds)."""
        ...


# No workload may hang the benchmark: one that has not finished by then is a failure.
DEADLINE_S = 120.0


class SdkDriver:
    """Through `swarm.client.AsyncClient`: `map` for bulk, `submit_graph` for graphs."""

    name = "sdk"

    def __init__(self, client: object, deadline_s: float = DEADLINE_S) -> None:
        from swarm.client import AsyncClient

        assert isinstance(client, AsyncClient)
        self.client = client
        self.deadline_s = deadline_s

    async def run(
        self, kind: str, payloads: Sequence[bytes], parents: Sequence[Sequence[int]] | None = None
    ) -> tuple[list[bytes], float]:
        async with asyncio.timeout(self.deadline_s):
            return await self._run(kind, payloads, parents)

    async def _run(
        self, kind: str, payloads: Sequence[bytes], parents: Sequence[Sequence[int]] | None
    ) -> tuple[list[bytes], float]:
        from swarm.client import Graph, Node

        client = self.client
        t0 = time.perf_counter()
        if parents is None:
            futs = await client.map(kind, payloads)
        else:
            graph = Graph()
            nodes: list[Node] = []
            for payload, ps in zip(payloads, parents, strict=True):
                nodes.append(graph.add(kind, payload, depends_on=[nodes[j] for j in ps]))
            by_node = await client.submit_graph(graph)
            futs = [by_node[n] for n in nodes]
        outputs: list[bytes] = await client.gather(futs)
        return outputs, time.perf_counter() - t0

    async def round_trip(self, kind: str, payload: bytes) -> tuple[bytes, float]:
        async with asyncio.timeout(self.deadline_s):
            t0 = time.perf_counter()
            fut = await self.client.submit(kind, payload)
            output: bytes = await fut
            return output, time.perf_counter() - t0


class RawDriver:
    """Through `RawSession`: batches of `session.batch` tasks, client-chosen ids."""

    name = "raw"

    def __init__(self, session: RawSession) -> None:
        self.session = session
        self._ids = itertools.count()

    def _new_ids(self, n: int) -> list[str]:
        return [f"r{next(self._ids)}" for _ in range(n)]

    async def run(
        self, kind: str, payloads: Sequence[bytes], parents: Sequence[Sequence[int]] | None = None
    ) -> tuple[list[bytes], float]:
        ids = self._new_ids(len(payloads))
        deps = None if parents is None else [[ids[j] for j in ps] for ps in parents]
        return await self.session.run(kind, ids, payloads, deps)

    async def round_trip(self, kind: str, payload: bytes) -> tuple[bytes, float]:
        t0 = time.perf_counter()
        outputs, _ = await self.session.run(kind, self._new_ids(1), [payload])
        return outputs[0], time.perf_counter() - t0
