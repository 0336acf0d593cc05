"""A pipeline with retries and timeouts: fetch -> parse -> store, one small graph per record.

Each record goes through three stages, submitted up front as one graph (`Graph`): `store`
depends on `parse`, which depends on `fetch`. The stages fail the way real ones do:

* `fetch` hits a flaky source: the first attempt of every third record raises ConnectionError.
  With `max_retries=2` the orchestrator retries it (with backoff) and the record goes through.
* `parse` of a "huge" record takes longer than its `timeout`: it ends with `TaskTimedOut`, and
  its `store` never runs (`DependencyFailed`), while every other record is unaffected.

Results are reported as they complete (`as_completed`), with the number of attempts each took.

    swarm up --module examples.pipeline
    python -m examples.pipeline [--connect ADDR] [--records 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from swarm.agent_host import TaskContext, handler
from swarm.client import AsyncClient, DependencyFailed, Graph, Node, TaskFailed, TaskTimedOut

PARSE_TIMEOUT_S = 0.5


@handler("pipeline.fetch")
async def fetch(ctx: TaskContext, payload: bytes) -> dict[str, Any]:
    """Payload {"id": n, "size": s}: 'download' the record; flaky on first attempts."""
    record = json.loads(payload)
    if record["id"] % 3 == 0 and ctx.attempt == 1:
        raise ConnectionError(f"source reset the connection while fetching record {record['id']}")
    await asyncio.sleep(0.005)
    return {"id": record["id"], "body": "x" * record["size"], "fetch_attempt": ctx.attempt}


@handler("pipeline.parse")
async def parse(ctx: TaskContext, payload: bytes) -> dict[str, Any]:
    """Parse the fetched body; big bodies take long (past the task's timeout when huge)."""
    fetched = json.loads(ctx.deps[0])
    await asyncio.sleep(len(fetched["body"]) / 10_000)  # 10 kB per second, say
    return {"id": fetched["id"], "length": len(fetched["body"])}


@handler("pipeline.store")
async def store(ctx: TaskContext, payload: bytes) -> dict[str, Any]:
    """'Write' the parsed record; returns what was stored."""
    parsed = json.loads(ctx.deps[0])
    return {"stored": parsed["id"], "length": parsed["length"]}


def records(n: int) -> list[dict[str, int]]:
    """n records; every fifth is huge (its parse times out)."""
    return [{"id": i, "size": 50_000 if i % 5 == 4 else 100 + i} for i in range(n)]


async def run(address: str | None = None, n: int = 12) -> dict[str, Any]:
    """Push `n` records through the pipeline; return what was stored and what failed, and why."""
    graph = Graph()
    stages: list[tuple[Node, Node, Node]] = []  # (fetch, parse, store) per record
    for record in records(n):
        fetched = graph.add("pipeline.fetch", record, max_retries=2, timeout=5)
        parsed = graph.add("pipeline.parse", depends_on=[fetched], timeout=PARSE_TIMEOUT_S)
        stored = graph.add("pipeline.store", depends_on=[parsed], max_retries=1)
        stages.append((fetched, parsed, stored))
    report: dict[str, Any] = {"stored": [], "timed_out": [], "failed": {}}
    async with AsyncClient(address) as client:
        futures = await client.submit_graph(graph)
        record_of = {futures[stored].id: i for i, (_, _, stored) in enumerate(stages)}
        async for fut in client.as_completed([futures[s] for _, _, s in stages], timeout=60):
            try:
                report["stored"].append((await fut)["stored"])
            except DependencyFailed:
                _, parsed, _ = stages[record_of[fut.id]]
                try:
                    await futures[parsed]
                except TaskTimedOut:
                    report["timed_out"].append(record_of[fut.id])
            except TaskFailed as exc:
                report["failed"][fut.id] = str(exc)
        report["retried_fetches"] = sum(futures[f].attempts > 1 for f, _, _ in stages)
    report["stored"].sort()
    report["timed_out"].sort()
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`python -m examples.pipeline`: run against `swarm up` and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", metavar="ADDR", help="default: $SWARM_ADDRESS or local")
    parser.add_argument("--records", type=int, default=12)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.connect, args.records))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
