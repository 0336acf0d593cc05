"""CPU per task of the SDK client and of the hosts, and the JSON codecs, for A/B between trees.

    python -m swarm.bench.sdk_cost w1 [--rounds 5]              # client CPU per W1 task (bytes)
    python -m swarm.bench.sdk_cost values --codec stdlib        # map + gather of small dicts
    python -m swarm.bench.sdk_cost w2-hosts [--rounds 3]        # both hosts' CPU per W2 task
    python -m swarm.bench.sdk_cost codecs                       # ns per encode / decode call
    python -m swarm.bench.sdk_cost floor                        # W1 without the SDK: the floor
    python -m swarm.bench.sdk_cost graph                        # W4's graph: µs per node, no server
    python -m swarm.bench.sdk_cost host-jobs                    # a host's per-assignment steps
    python -m swarm.bench.sdk_cost host-echo                    # a host's executor, echo tasks

Each prints one JSON line: the medians and every round. The swarm is `bench_swarm(2, 500)`
(real processes; `graph`, `host-jobs`, `host-echo` and `codecs` need none); the client's CPU is this
process's `time.process_time()` (precise, where psutil counts 10 ms ticks), the others' the
bench's `CpuMeter`. For an A/B of two commits,
export each (`git archive`) into a directory laid out as the `swarm` package and alternate
invocations with PYTHONPATH pointing at one, then the other (docs/performance.md, issue 14).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import importlib
import json
import os
import statistics
import time
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import grpc
from swarm.agent_host import builtin_handlers
from swarm.agent_host.executor import Executor, _same_context
from swarm.agent_host.handlers import collect
from swarm.agent_host.outbox import Outbox
from swarm.agent_host.stream import jobs_from_pb
from swarm.bench import workloads
from swarm.bench.budget import CpuMeter
from swarm.bench.drivers import SdkDriver
from swarm.bench.local import bench_swarm
from swarm.client import AsyncClient, Codec, Graph, JsonCodec, Node
from swarm.client._graph import graph_futures
from swarm.client._session import Session
from swarm.common.grpc_options import CHANNEL_OPTIONS
from swarm.common.runtime import run
from swarm.v1 import host_pb2, task_pb2, task_pb2_grpc

TASKS = 20_000
# Typical small payloads, and two larger ones, for `codecs`.
PAYLOADS: dict[str, Any] = {
    "int": 12345,
    "small dict": {"n": 1, "name": "task-42", "ok": True},
    "str": "hello world " * 2,
    "list of 100 floats": [i * 0.5 for i in range(100)],
    "nested 1 KB": {
        "items": [{"id": i, "tags": ["a", "b"], "v": i / 3} for i in range(20)],
        "meta": {"user": "ünïcode", "n": 5},
    },
}


class OrjsonCodec:
    """orjson as an SDK codec, only to compare it (it is not a dependency)."""

    def __init__(self) -> None:
        orjson = importlib.import_module("orjson")  # by name: not installed everywhere
        self._dumps: Callable[[Any], bytes] = orjson.dumps
        self._loads: Callable[[bytes], Any] = orjson.loads

    def encode(self, value: Any) -> bytes:
        return self._dumps(value)

    def decode(self, data: bytes) -> Any:
        return self._loads(data) if data else None


def codec_named(name: str) -> Codec:
    if name == "orjson":
        return OrjsonCodec()
    return JsonCodec(fast=name == "msgspec")


async def _rounds(workload: str, rounds: int, codec: Codec) -> list[dict[str, float]]:
    values = [{"i": i, "name": f"item-{i}", "w": i / 7} for i in range(TASKS)]
    with bench_swarm(2, 500) as swarm:
        pids = {"client": os.getpid(), **swarm.pids()}
        async with AsyncClient(swarm.address, codec=codec) as client:
            driver = SdkDriver(client)
            await workloads.warm_up(driver, 2_000)
            out = []
            for _ in range(rounds):
                meter = CpuMeter(pids)
                meter.start()
                cpu0, t0 = time.process_time(), time.perf_counter()
                if workload == "w1":
                    await workloads.w1_noop(driver, TASKS)
                elif workload == "values":
                    got = await client.gather(await client.map("echo", values))
                    if got != values:
                        raise workloads.WrongResult("values: an output differs from its payload")
                else:
                    await workloads.w2_io(driver, TASKS, 1_000)
                wall = time.perf_counter() - t0
                per_task = meter.per_task(TASKS)
                out.append(
                    {
                        "client_us": (time.process_time() - cpu0) / TASKS * 1e6,
                        "orchestrator_us": per_task["orchestrator"],
                        "hosts_us": per_task["host0"] + per_task["host1"],
                        "tasks_per_s": TASKS / wall,
                    }
                )
    return out


async def _read_columns(call: Any, state: dict[str, int], room: asyncio.Event) -> None:
    """The floor's reader: counts column results (reading both columns, as the SDK does)."""
    while state["got"] < TASKS:
        msg = await call.read()
        if msg.WhichOneof("msg") == "results":
            state["got"] += len(list(msg.results.ok_ids))
            list(msg.results.ok_outputs)
            room.set()


async def _floor(rounds: int, batch: int = 1_000, window: int = 10_000) -> list[dict[str, float]]:
    """W1 through a client that only moves column batches (task.proto) on a raw Session, with
    the SDK's window, batch size and ack batching but no futures: what gRPC, asyncio and
    protobuf cost this process per task, under any SDK."""
    out = []
    with bench_swarm(2, 500) as swarm:
        channel = grpc.aio.insecure_channel(swarm.address, options=CHANNEL_OPTIONS)
        call = task_pb2_grpc.TaskServiceStub(channel).Session()
        opening = task_pb2.OpenSession(client_id="floor", column_results=True)
        await call.write(task_pb2.ClientMessage(open=opening))
        await call.read()
        for r in range(rounds + 1):  # the first round warms up
            payloads = [b"%d" % i for i in range(TASKS)]
            ids = [f"f{r}-{i:x}" for i in range(TASKS)]
            cpu0 = time.process_time()
            room = asyncio.Event()
            state = {"sent": 0, "got": 0, "acks": 0}
            reader = asyncio.create_task(_read_columns(call, state, room))
            while state["sent"] < TASKS:
                sent = state["sent"]
                n = min(window - (sent - state["got"]), batch, TASKS - sent)
                if n <= 0:
                    room.clear()
                    await room.wait()
                    continue
                msg = task_pb2.ClientMessage()
                msg.submit.kind = "echo"
                msg.submit.ids.extend(ids[sent : sent + n])
                msg.submit.payloads.extend(payloads[sent : sent + n])
                state["sent"] = sent + n
                await call.write(msg)
                if state["got"] - state["acks"] >= 1024:
                    ack = task_pb2.ClientMessage()
                    ack.ack.task_ids.extend(ids[state["acks"] : state["got"]])
                    state["acks"] = state["got"]
                    await call.write(ack)
            await reader
            if r:
                out.append({"client_us": (time.process_time() - cpu0) / TASKS * 1e6})
        call.cancel()
        await channel.close()
    return out


def codec_ns(repeat: int = 7, number: int = 20_000) -> dict[str, dict[str, float]]:
    """Median ns per call of encode and decode, per codec and payload."""
    out: dict[str, dict[str, float]] = {}
    for name in ("stdlib", "orjson", "msgspec"):
        codec = codec_named(name)
        for label, value in PAYLOADS.items():
            data = codec.encode(value)
            if codec.decode(data) != value:
                raise AssertionError(f"{name} does not round-trip {label}")
            enc = timeit.repeat(partial(codec.encode, value), number=number, repeat=repeat)
            dec = timeit.repeat(partial(codec.decode, data), number=number, repeat=repeat)
            out.setdefault(label, {})[f"{name} encode"] = statistics.median(enc) / number * 1e9
            out[label][f"{name} decode"] = statistics.median(dec) / number * 1e9
    return out


def graph_us(rounds: int = 15, layers: int = 50, width: int = 200) -> dict[str, float]:
    """Median µs per node of building W4's graph (`Graph.add`, the caller's part) and of making
    its futures (`graph_futures`, what `submit_graph` does before anything is sent)."""
    payloads, parents, _ = workloads.dag(layers, width)
    stub = cast("task_pb2_grpc.TaskServiceAsyncStub", None)  # never called: nothing is sent
    adds, futures = [], []
    for r in range(rounds):
        session = Session(
            stub,
            address="-",
            client_id=f"graph{r}",
            namespace="",
            codec=JsonCodec(),
            window=len(payloads),
            open_timeout_s=1.0,
            reconnect_timeout_s=1.0,
        )

        def new_ids(n: int) -> list[str]:
            return list(map("g-%x".__mod__, range(n)))

        gc.collect()  # each round from the same start: a full collection is a spike otherwise
        t0 = time.process_time()
        graph, nodes = Graph(), list[Node]()
        for payload, ps in zip(payloads, parents, strict=True):
            nodes.append(graph.add("dag", payload, depends_on=[nodes[j] for j in ps]))
        t1 = time.process_time()
        graph_futures(graph, session, session.codec, new_ids)
        t2 = time.process_time()
        adds.append((t1 - t0) / len(payloads) * 1e6)
        futures.append((t2 - t1) / len(payloads) * 1e6)
        del graph, nodes  # freed here, not inside the next round's timing
    return {"add_us": statistics.median(adds), "futures_us": statistics.median(futures)}


def _assign_batch(kind: str, n: int, payload: bytes, deps: int = 0) -> bytes:
    """A serialized column-form AssignBatch of n tasks of `kind`, each with `deps` dependencies
    (host.proto), as an orchestrator sends it."""
    batch = host_pb2.AssignBatch(kind=kind)
    batch.task_ids.extend([f"t-{i:x}" for i in range(n)])
    batch.attempts.extend([1] * n)
    batch.payloads.extend([payload] * n)
    if deps:
        batch.dep_counts.extend([deps] * n)
        batch.dep_task_ids.extend([f"d-{i:x}" for i in range(n * deps)])
        batch.dep_outputs.extend([b"output"] * (n * deps))
    return batch.SerializeToString()


def host_jobs_us(rounds: int = 50, n: int = 100, deps: int = 2) -> dict[str, float]:
    """Median µs per task of a host's own steps for a W4 assignment: a column AssignBatch of n
    tasks with `deps` dependencies each decoded into Jobs, and each Job's ctx.deps read once;
    and of one handler step's context copy and check (agent_host/executor.py)."""
    data = _assign_batch("dag", n, b"p|a,b", deps)
    context = contextvars.copy_context()
    jobs, steps = [], []
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(20):
            for job in jobs_from_pb(host_pb2.AssignBatch.FromString(data)):
                job.deps  # noqa: B018 - the read is what is measured
        t1 = time.process_time()
        for _ in range(20 * n):
            _same_context(context.copy(), context)
        t2 = time.process_time()
        jobs.append((t1 - t0) / (20 * n) * 1e6)
        steps.append((t2 - t1) / (20 * n) * 1e6)
    return {"jobs_us": statistics.median(jobs), "context_us": statistics.median(steps)}


async def host_echo_us(rounds: int = 60, n: int = 250, batches: int = 20) -> dict[str, float]:
    """Median CPU µs per task of a host's executor and outbox alone: column AssignBatches of n
    echo tasks decoded into jobs, run on 500 agents, their results encoded as the host's next
    message (what a host does per W1 task, without gRPC). A coroutine: the executor runs on
    the running loop."""
    woken = asyncio.Event()  # as a host's stream is woken by its outbox
    outbox = Outbox(woken.set)
    outbox.use_columns(True)
    ex = Executor(collect([builtin_handlers]), outbox, min_agents=500)
    data = _assign_batch("echo", n, b"x")
    per_task = []
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(batches):
            ex.submit(jobs_from_pb(host_pb2.AssignBatch.FromString(data)))
            if ex.busy:  # echo ends in its first step, run by submit (the executor's loop)
                raise workloads.WrongResult("host-echo: a job did not end in its first step")
            woken.clear()
            results = [m.SerializeToString() for m in outbox.take_results()]
        per_task.append((time.process_time() - t0) / (batches * n) * 1e6)
        if sum(map(len, results)) == 0:
            raise workloads.WrongResult("host-echo: no results")
    return {"executor_us": statistics.median(per_task)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what",
        choices=("w1", "values", "w2-hosts", "codecs", "floor", "graph", "host-jobs", "host-echo"),
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--codec", choices=("msgspec", "stdlib", "orjson"), default="msgspec")
    args = parser.parse_args(argv)
    if args.what == "codecs":
        print(json.dumps(codec_ns()))
        return 0
    if args.what in ("graph", "host-jobs", "host-echo"):
        if args.what == "host-echo":
            figures = run(host_echo_us())
        else:
            figures = graph_us() if args.what == "graph" else host_jobs_us()
        print(json.dumps({"what": args.what, "median": figures}))
        return 0
    if args.what == "floor":
        runs = run(_floor(args.rounds))
    else:
        runs = run(_rounds(args.what, args.rounds, codec_named(args.codec)))
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(json.dumps({"what": args.what, "codec": args.codec, "median": median, "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
