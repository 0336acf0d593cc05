"""The transport's ceiling, measured in the same run: a raw batched echo over the same stack.

An echo process (grpc.aio on uvloop, as the orchestrator) answers each `SubmitBatch` on one
Session-shaped stream with a `ResultBatch` echoing every task's payload, so each task is encoded
and decoded as in the real system, but nothing else happens. The client keeps a window of
batches in flight and measures tasks/s with batches of 100 and 1,000, and the round trip of one
one-task message: the most any design on this stack could do on this machine today.

A hub design pays two such hops (client to orchestrator, orchestrator to host), so the same is
measured through a relay: a second process that decodes each message, re-encodes it to the echo
process and passes the reply back, as an orchestrator that did no work at all would.

    python -m swarm.bench.ceiling --port-file F [--upstream ADDR]   # started by measure()
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from swarm.common.grpc_options import CHANNEL_OPTIONS, SERVER_OPTIONS
from swarm.common.runtime import run
from swarm.deploy.procs import poll, read_port
from swarm.v1 import task_pb2, types_pb2

METHOD = "/swarm.bench.Echo/Session"
SUCCEEDED = types_pb2.SUCCEEDED


async def _echo(
    requests: AsyncIterator[task_pb2.ClientMessage], context: grpc.aio.ServicerContext
) -> AsyncIterator[task_pb2.ServerMessage]:
    async for msg in requests:
        out = task_pb2.ServerMessage()
        add = out.results.results.add
        for t in msg.submit.tasks:
            add(task_id=t.id, state=SUCCEEDED, output=t.payload)
        yield out


def _open(channel: grpc.aio.Channel) -> grpc.aio.StreamStreamCall:
    session = channel.stream_stream(
        METHOD,
        request_serializer=task_pb2.ClientMessage.SerializeToString,
        response_deserializer=task_pb2.ServerMessage.FromString,
    )
    return session()


def _relay(upstream: grpc.aio.Channel) -> object:
    async def relay(request_iterator: object, context: grpc.aio.ServicerContext) -> None:
        up = _open(upstream)

        async def down() -> None:
            while (reply := await up.read()) is not grpc.aio.EOF:
                await context.write(reply)

        replies = asyncio.create_task(down())
        try:
            while (msg := await context.read()) is not grpc.aio.EOF:
                await up.write(msg)
            await up.done_writing()
            await replies
        finally:
            replies.cancel()
            up.cancel()

    return relay


async def serve(port_file: str, upstream_address: str | None) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    upstream = None
    if upstream_address:
        upstream = grpc.aio.insecure_channel(upstream_address, options=CHANNEL_OPTIONS)
    handler = grpc.stream_stream_rpc_method_handler(
        _echo if upstream is None else _relay(upstream),
        request_deserializer=task_pb2.ClientMessage.FromString,
        response_serializer=task_pb2.ServerMessage.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("swarm.bench.Echo", {"Session": handler})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    with open(port_file, "w") as f:  # noqa: ASYNC230 - once, before serving
        f.write(str(port))
    await server.wait_for_termination()


def _batch(start: int, size: int) -> task_pb2.ClientMessage:
    msg = task_pb2.ClientMessage()
    add = msg.submit.tasks.add
    for i in range(start, start + size):
        add(id=f"t{i}", kind="echo", payload=b"%d" % i)
    return msg


async def _throughput(
    call: grpc.aio.StreamStreamCall, tasks: int, batch: int, window: int
) -> float:
    """Tasks/s for `tasks` tasks in batches of `batch`, at most `window` batches in flight."""
    batches = tasks // batch
    sent = received = 0
    t0 = time.perf_counter()
    while received < batches:
        while sent < batches and sent - received < window:
            await call.write(_batch(sent * batch, batch))
            sent += 1
        reply = await call.read()
        for r in reply.results.results:
            if r.output != r.task_id[1:].encode():
                raise AssertionError(f"echo returned {r.output!r} for {r.task_id}")
        received += 1
    return batches * batch / (time.perf_counter() - t0)


async def _round_trip_us(call: grpc.aio.StreamStreamCall, trips: int) -> float:
    """Median microseconds for one one-task message to go out and come back."""
    samples = []
    for i in range(trips):
        t0 = time.perf_counter()
        await call.write(_batch(i, 1))
        await call.read()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return samples[len(samples) // 2]


async def _measure(address: str, tasks: int, trips: int) -> dict[str, float]:
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        call = _open(channel)
        await _throughput(call, 2000, 100, 4)  # warm-up
        out = {
            "tasks_per_s_b100": await _throughput(call, tasks, 100, 8),
            "tasks_per_s_b1000": await _throughput(call, tasks, 1000, 4),
            "round_trip_us": await _round_trip_us(call, trips),
        }
        await call.done_writing()
        return out


def _start(tmp: str, name: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port_file = Path(tmp) / name
    args = [sys.executable, "-m", "swarm.bench.ceiling", "--port-file", str(port_file)]
    proc = subprocess.Popen([*args, *extra], start_new_session=True)
    port = poll(lambda: read_port(port_file), 30, f"{name} port")
    return proc, f"127.0.0.1:{port}"


async def measure(tasks: int = 50_000, trips: int = 1_000) -> dict[str, float]:
    """Start an echo process and a relay in front of it, measure both ways, stop them."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="swarm-ceiling-") as tmp:
            echo, echo_address = _start(tmp, "echo")
            procs.append(echo)
            relay, relay_address = _start(tmp, "relay", "--upstream", echo_address)
            procs.append(relay)
            direct = await _measure(echo_address, tasks, trips)
            relayed = await _measure(relay_address, tasks, trips)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
    out = {f"ceiling_{k}": v for k, v in direct.items()}
    out.update({f"ceiling_relay_{k}": v for k, v in relayed.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the benchmark's raw echo server")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--upstream", help="relay to this echo server instead of answering")
    args = parser.parse_args(argv)
    run(serve(args.port_file, args.upstream))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
