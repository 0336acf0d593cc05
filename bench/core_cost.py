"""The orchestrator's own W1 work per task, without gRPC or other processes: a steadier figure than
`swarm bench` on a shared machine, for A/B of changes to the core and the wire codecs.

    python -m swarm.bench.core_cost [--rounds 200] [--batch 1000] [--rows]
    python -m swarm.bench.core_cost --workload w4 [--rounds 10] [--chunk 32]

Each round reads a submit of `batch` specs, submits it, takes and encodes the assignments for two
hosts, decodes the hosts' result batches (encoded beforehand, outside the timing), finishes the
tasks, encodes the client's results and acknowledges them: what the orchestrator's thread does per
W1 task, minus the transport. Rounds run past a full retention window (`max_retained`), as in the
suite. Thread CPU time; `--rows` uses the host wire's row form instead of the column form.

`--workload w4` does the same for W4's graph (50 layers x 200, two parents each, submitted as
the SDK does: one column-form SubmitBatch with `dep_counts`): the hosts answer each assignment
batch in result messages of `--chunk` tasks (about what W4's hosts send on two cores), and the
client's results are taken and encoded after each, as a client session's writer would.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from swarm.agent_host.outbox import Outbox
from swarm.bench import workloads
from swarm.server import host_wire
from swarm.server.app import tune_gc
from swarm.server.config import OrchestratorConfig
from swarm.server.convert import SpecReader, results_to_columns, results_to_pb
from swarm.server.core import Core
from swarm.server.hosts import HostHello, HostView
from swarm.server.model import Task
from swarm.v1 import host_pb2, task_pb2, types_pb2

MAX_ASSIGN_BATCH = 4096
LAYERS, WIDTH = 50, 200


def _host_results(batch: list[Task], columns: bool) -> list[bytes]:
    out = Outbox()
    out.use_columns(columns)
    for t in batch:
        out.result(t.key, t.attempt, b"12345678")
    return [m.SerializeToString() for m in out.take_results()]


def _assign(
    core: Core, host: HostView, columns: bool, chunk: int = MAX_ASSIGN_BATCH
) -> tuple[float, list[bytes]]:
    """One AssignBatch for `host`, taken, encoded and serialized as its session's writer does
    (the thread CPU seconds of that), and the host's result messages for it, `chunk` tasks
    each, made untimed (the host's work)."""
    t0 = time.thread_time()
    sent, _ = core.take_assignments(host, MAX_ASSIGN_BATCH, 1.0)
    msg = host_pb2.OrchestratorMessage()
    host_wire.assignments_to_pb(sent, msg, columns)
    msg.SerializeToString()
    spent = time.thread_time() - t0
    steps = range(0, len(sent), chunk)
    return spent, [m for i in steps for m in _host_results(sent[i : i + chunk], columns)]


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
            spent += time.thread_time() - t0
            took, replies = _assign(core, host, columns)
            spent += took
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


def _graph_request(r: int, layers: int = LAYERS, width: int = WIDTH) -> bytes:
    """W4's graph as the SDK sends it: one column-form SubmitBatch, ids `g{r}-{label}`."""
    payloads, parents, labels = workloads.dag(layers, width)
    ids = [f"g{r}-{label.decode()}" for label in labels]
    batch = task_pb2.SubmitBatch(kind="echo", ids=ids, payloads=payloads)
    batch.dep_counts.extend(len(ps) for ps in parents)
    batch.depends_on.extend(ids[j] for ps in parents for j in ps)
    return batch.SerializeToString()


def _graph_round(
    core: Core, reader: SpecReader, hosts: list[HostView], request: bytes, chunk: int
) -> tuple[float, int]:
    """Thread CPU seconds of one W4 graph, and its task count."""
    outbox = core.clients["c"]
    t0 = time.thread_time()
    tasks, deps = reader.read_submit(task_pb2.SubmitBatch.FromString(request), "default")
    core.submit(tasks, deps, "c", 1.0)
    spent, done = 0.0, 0
    while done < len(tasks):
        if not any(host.outbox for host in hosts):
            raise RuntimeError(f"W4 graph stalled: {done} of {len(tasks)} results, none assigned")
        for host in hosts:
            while host.outbox:
                spent += time.thread_time() - t0
                took, replies = _assign(core, host, True, chunk)
                spent += took
                t0 = time.thread_time()
                for data in replies:
                    results = host_pb2.HostMessage.FromString(data).results
                    core.on_results(host, host_wire.results_from_pb(results), 1.0)
                    finished = core.take_results(outbox, MAX_ASSIGN_BATCH)
                    reply = task_pb2.ServerMessage()
                    results_to_columns(finished, reply)
                    reply.SerializeToString()
                    core.ack(outbox, [t.key for t in finished])
                    done += len(finished)
    return spent + time.thread_time() - t0, len(tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rows", action="store_true", help="the host wire's row form")
    parser.add_argument("--workload", choices=("w1", "w4"), default="w1")
    parser.add_argument("--chunk", type=int, default=32, help="W4: tasks per host result message")
    args = parser.parse_args()
    config = OrchestratorConfig()
    core = Core(config, random.Random(1))
    reader = SpecReader(config)
    kinds = frozenset({"echo"})
    hosts = [core.host_joined(HostHello(f"h{i}", 1, "x", kinds, 500, 500), 0.0) for i in range(2)]
    core.attach_client("c", 0.0)
    columns = not args.rows
    if args.workload == "w4":
        rounds = min(args.rounds, 20)
        requests = [_graph_request(r) for r in range(rounds + 2)]
        for r in range(2):  # warm-up
            _graph_round(core, reader, hosts, requests[r], args.chunk)
        tune_gc()  # the orchestrator's collector settings (server/app.py)
        runs = [_graph_round(core, reader, hosts, q, args.chunk) for q in requests[2:]]
        us = sorted(s / n * 1e6 for s, n in runs)
        print(
            f"orchestrator work: {statistics.median(us):.2f} CPU µs per W4 task, median of "
            f"{len(us)} graphs (least {us[0]:.2f}; host results in chunks of {args.chunk})"
        )
        return
    warm = config.max_retained // args.batch + 1  # fill the retention window first
    for r in range(warm):
        _round(core, reader, hosts, r, args.batch, columns)
    tune_gc()  # the orchestrator's collector settings (server/app.py), as for W4
    spent = sum(
        _round(core, reader, hosts, r, args.batch, columns) for r in range(warm, warm + args.rounds)
    )
    form = "rows" if args.rows else "columns"
    per_task_us = spent / (args.rounds * args.batch) * 1e6
    print(f"orchestrator work: {per_task_us:.2f} CPU µs per task ({form})")


if __name__ == "__main__":
    main()
