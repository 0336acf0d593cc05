"""Handlers that only the benchmarks need, loaded by their hosts with `--module`.

`dag` (W4) checks that data really travelled on the graph's edges: its payload is
`own_id|parent_id,parent_id`, each parent returned its own id, so the handler must receive
exactly those ids as its dependency outputs, in order. It returns its own id.
"""

from __future__ import annotations

from swarm.agent_host.context import TaskContext
from swarm.agent_host.handlers import handler


class EdgeError(RuntimeError):
    """A dependency output is missing or is not what its parent returned."""


@handler("dag")
async def dag(ctx: TaskContext, payload: bytes) -> bytes:
    own, _, parents = payload.partition(b"|")
    want = parents.split(b",") if parents else []
    if ctx.deps != want:
        raise EdgeError(f"{own!r} got {ctx.deps!r} from its parents, expected {want!r}")
    return own
