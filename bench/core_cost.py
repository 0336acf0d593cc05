"""The orchestrator's own W1 work per task, without gRPC or other processes: a steadier figure than
`swarm bench` on a shared machine, for A/B of changes to the core and the wire codecs.

    python -m swarm.bench.core_cost [--rounds 200] [--batch 1000] [--rows]

Each round reads a submit of `batch` specs, submits it, takes and encodes the assignments for two
hosts, decodes the hosts' result batches (encoded beforehand, outside the timing), finishes the
tasks, encodes the client's results and acknowledges them: what the orchestrator's thread does per
W1 task, minus the transport. Rounds run past a full retention window (`max_retained`), as in the
suite. Thread CPU time; `--rows` uses the host wire's row form instead of the column form.
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from swarm.agent_host.outbox import Outbox
from swarm.server import host_wire
from swarm.server.config import OrchestratorConfig
from swarm.server.convert import SpecReader, results_to_pb
from swarm.server.core import Core
from swarm.server.hosts import HostHello, HostView
from swarm.server.model import Task
from swarm.v1 import host_pb2, task_pb2, types_pb2

MAX_ASSIGN_BATCH = 4096


def _host_results(batch: list[Task], columns: bool) -> list[bytes]:
    out = Outbox()
    out.use_columns(columns)
    for t in batch:
        out.result(t.key, t.attempt, b"12345678")
    return [m.SerializeToString() for m in out.take_results()]


def _round(
    core: Core, reader: SpecReader, hosts: list[HostView], r: int, batch: int, columns: bool
) -> float:
    """Thread CPU seconds of one round."""
    request = task_pb2.SubmitRequest(
        tasks=[
            types_pb2.TaskSpec(id=f"t{r}-{i}", kind="echo", payload=b"1234") for i in range(batch)
        ]
    ).SerializeToString()
    outbox = core.clients["c"]
    spent = 0.0
    t0 = time.thread_time()
    specs = task_pb2.SubmitRequest.FromString(request).tasks
    tasks, deps = reader.read(specs, "default")
    core.submit(tasks, deps, "c", 1.0)
    for host in hosts:
        while host.outbox:
            sent, _ = core.take_assignments(host, MAX_ASSIGN_BATCH, 1.0)
            msg = host_pb2.OrchestratorMessage()
            host_wire.assignments_to_pb(sent, msg, columns)
            msg.SerializeToString()
            spent += time.thread_time() - t0
            replies = _host_results(sent, columns)  # the host's work: not counted
            t0 = time.thread_time()
            for data in replies:
                results = host_pb2.HostMessage.FromString(data).results
                core.on_results(host, host_wire.results_from_pb(results), 1.0)
    done = core.take_results(outbox, 1 << 30)
    for start in range(0, len(done), MAX_ASSIGN_BATCH):
        reply = task_pb2.ServerMessage()
        results_to_pb(done[start : start + MAX_ASSIGN_BATCH], reply)
        reply.SerializeToString()
    core.ack(outbox, [t.key for t in done])
    return spent + time.thread_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rows", action="store_true", help="the host wire's row form")
    args = parser.parse_args()
    config = OrchestratorConfig()
    core = Core(config, random.Random(1))
    reader = SpecReader(config)
    kinds = frozenset({"echo"})
    hosts = [core.host_joined(HostHello(f"h{i}", 1, "x", kinds, 500, 500), 0.0) for i in range(2)]
    core.attach_client("c", 0.0)
    columns = not args.rows
    warm = config.max_retained // args.batch + 1  # fill the retention window first
    for r in range(warm):
        _round(core, reader, hosts, r, args.batch, columns)
    gc.freeze()  # as the orchestrator does (server/app.py)
    spent = sum(
        _round(core, reader, hosts, r, args.batch, columns) for r in range(warm, warm + args.rounds)
    )
    form = "rows" if args.rows else "columns"
    per_task_us = spent / (args.rounds * args.batch) * 1e6
    print(f"orchestrator work: {per_task_us:.2f} CPU µs per task ({form})")


if __name__ == "__main__":
    main()
