"""W9's security pair: W1 and W3 with and without TLS + tokens, measured in the same run, beside
the transport's own TLS cost on the same stack (the floor no change of ours can go below).

    python -m swarm.bench.security_cost [--rounds 6] [--w1 20000] [--w3 1000] [--processes]

Each round runs both arms back to back (plain, then secure, alternating which goes first), on
an in-process swarm (server, 2 hosts and the client in one process: fewer moving parts, the
same gRPC wire), so load on the machine hits both arms alike. Per arm, besides W1 and W3:

* `w3_cpu_us`: the process's CPU time per W3 round trip (every thread: the client, the
  orchestrator, both hosts and gRPC's own). Everything runs in this one process, so this is the
  whole system's cost of one trip, and much steadier than a latency on a shared machine.
  `--processes` runs the orchestrator and hosts as processes of their own (LocalSwarm, as
  `swarm up` does); `w3_cpu_us` then sums the CPU of every process.
* `raw_relay_us` / `raw_relay_cpu_us`: the same for one one-task message through a relay that
  does no work (bench/ceiling.py's echo and relay, here in this process, on the same options
  and the same certificates): client -> relay -> echo and back, the four legs a W3 trip needs
  at least (client -> orchestrator -> host and back). Its secure - plain difference is what TLS
  costs gRPC itself per trip.

Reports the medians and the ratios secure/plain: W1 throughput (target >= 0.9) and W3 p50
latency (target <= 1.15), and the raw relay's ratio, the floor of the W3 one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import grpc
import psutil
from swarm.bench import ab, ceiling
from swarm.bench.drivers import SdkDriver
from swarm.bench.workloads import w1_noop, w3_latency, warm_up
from swarm.client import AsyncClient
from swarm.common import pki
from swarm.common.credentials import Credentials
from swarm.common.grpc_options import CHANNEL_OPTIONS, SERVER_OPTIONS
from swarm.deploy.inproc import InProcessSwarm
from swarm.deploy.local import LocalSwarm
from swarm.server.security import ServerSecurity
from swarm.v1 import task_pb2

W3_WARMUP = 50
T = TypeVar("T")


async def _cpu_per(
    n: int, work: Awaitable[T], cpu_s: Callable[[], float] = time.process_time
) -> tuple[T, float]:
    """`work`'s result and the CPU µs (`cpu_s`: this process's, by default) per each of its
    `n` steps."""
    c0 = cpu_s()
    result = await work
    return result, (cpu_s() - c0) / n * 1e6


def _cpu_of(pids: Iterable[int]) -> Callable[[], float]:
    """CPU seconds so far of these processes together (user + system)."""
    procs = [psutil.Process(pid) for pid in pids]
    return lambda: sum(t.user + t.system for t in (p.cpu_times() for p in procs))


async def _measure(
    address: str,
    creds: Credentials,
    w1: int,
    w3: int,
    cpu_s: Callable[[], float] = time.process_time,
) -> dict[str, float]:
    async with AsyncClient(address, credentials=creds) as client:
        driver = SdkDriver(client)
        await warm_up(driver, 500)
        w1_figures = await w1_noop(driver, w1)
        w3_figures, cpu_us = await _cpu_per(
            w3 + W3_WARMUP, w3_latency(driver, w3, W3_WARMUP), cpu_s
        )
        return {**w1_figures, **w3_figures, "w3_cpu_us": cpu_us}


@asynccontextmanager
async def _raw_server(
    security: ServerSecurity, upstream: grpc.aio.Channel | None
) -> AsyncIterator[str]:
    """bench/ceiling.py's echo (or, given `upstream`, its relay) on 127.0.0.1:0, TLS when
    `security` has a certificate; yields its address."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handler = grpc.stream_stream_rpc_method_handler(
        ceiling._echo if upstream is None else ceiling._relay(upstream),
        request_deserializer=task_pb2.ClientMessage.FromString,
        response_serializer=task_pb2.ServerMessage.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("swarm.bench.Echo", {"Session": handler})]
    )
    creds = security.server_credentials()
    if creds is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def raw_relay(home: Path | None, trips: int) -> dict[str, float]:
    """Round trips of one one-task message through a do-nothing relay: µs (median) and CPU µs."""
    security = ServerSecurity.resolve(home=str(home), env={}) if home else ServerSecurity()
    creds = Credentials.resolve(home=home, env={}) if home else Credentials()
    async with _raw_server(security, None) as echo_address:
        upstream = creds.aio_channel(echo_address, CHANNEL_OPTIONS)
        async with upstream, _raw_server(security, upstream) as relay_address:
            channel = creds.aio_channel(relay_address, CHANNEL_OPTIONS)
            async with channel:
                call = ceiling._open(channel)
                await ceiling._round_trip_us(call, W3_WARMUP)
                median_us, cpu_us = await _cpu_per(trips, ceiling._round_trip_us(call, trips))
                await call.done_writing()
    return {"raw_relay_us": median_us, "raw_relay_cpu_us": cpu_us}


def arm(home: Path | None, w1: int, w3: int, *, processes: bool = False) -> dict[str, float]:
    creds = Credentials.resolve(home=home, env={}) if home else Credentials()
    if processes:
        # As deployed: `swarm up`'s supervisor, the orchestrator and each host a process of
        # its own, secured from the state directory as `swarm up --state-dir` does it. The
        # journal stays off in both arms: a state directory would turn it on (journal_cost.py
        # measures that on its own).
        env = {"SWARM_HOME": str(home)} if home else {}
        memory = ("--journal", "memory")
        with LocalSwarm(2, 500, env=env, server_args=memory, on_exit="kill") as local:
            cpu_s = _cpu_of([os.getpid(), *local.pids().values()])
            figures = asyncio.run(_measure(local.address, creds, w1, w3, cpu_s))
    else:
        swarm = InProcessSwarm.secured(home, 2, 500) if home else InProcessSwarm(2, 500)
        with swarm:
            figures = asyncio.run(_measure(swarm.address, creds, w1, w3))
    return {**figures, **asyncio.run(raw_relay(home, w3))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="swarm-bench-security")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--w1", type=int, default=20_000)
    parser.add_argument("--w3", type=int, default=1_000)
    parser.add_argument(
        "--processes",
        action="store_true",
        help="orchestrator and hosts as processes of their own (LocalSwarm), not in this one",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "state"
        pki.init_state(home)
        runs = ab.alternate(
            args.rounds,
            "plain",
            "secure",
            lambda name, _r: arm(
                home if name == "secure" else None, args.w1, args.w3, processes=args.processes
            ),
        )
    ratios = ("w3_cpu_us", "raw_relay_us", "raw_relay_cpu_us")
    print(ab.report(runs, "plain", "secure", ratios=ratios, processes=args.processes))


if __name__ == "__main__":
    main()
