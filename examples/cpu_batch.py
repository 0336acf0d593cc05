"""A CPU-bound batch: counting primes in pure Python, spread over one host process per core.

One Python process runs one core's worth of pure-Python work, whatever its event loop does; a
swarm runs a host process per core (`swarm up` starts one per core), so the same batch runs
about N times faster on N cores. This example times the batch here in one process, then on the
swarm, checks both give the same counts, and prints the speed-up.

    swarm up --module examples.cpu_batch
    python -m examples.cpu_batch [--connect ADDR] [--chunks 64] [--chunk-size 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from swarm.agent_host import TaskContext, handler
from swarm.client import AsyncClient

SLICE = 2_000  # numbers counted between yields to the host's event loop


def count_primes(lo: int, hi: int) -> int:
    """Primes in [lo, hi) by trial division: deliberately plain CPU work."""
    count = 0
    for n in range(max(lo, 2), hi):
        if n % 2 == 0:
            count += n == 2
            continue
        d = 3
        while d * d <= n:
            if n % d == 0:
                break
            d += 2
        else:
            count += 1
    return count


@handler("primes")
async def primes(ctx: TaskContext, payload: bytes) -> int:
    """Payload [lo, hi]: the number of primes in [lo, hi).

    Pure CPU in slices of `SLICE` numbers, yielding to the event loop between slices so that
    the host's heartbeats and other agents keep running. (A plain `def` handler would run in
    the host's thread pool instead; for pure-Python CPU work threads add no parallelism inside
    one process, because of the GIL: the processes are what scale.)
    """
    lo, hi = json.loads(payload)
    count = 0
    for start in range(lo, hi, SLICE):
        count += count_primes(start, min(start + SLICE, hi))
        await asyncio.sleep(0)
    return count


async def run(
    address: str | None = None, chunks: int = 64, chunk_size: int = 20_000
) -> dict[str, Any]:
    """Count primes below chunks * chunk_size here, then on the swarm; return the timings."""
    ranges = [[i * chunk_size, (i + 1) * chunk_size] for i in range(chunks)]
    started = time.perf_counter()
    local = [count_primes(lo, hi) for lo, hi in ranges]
    local_s = time.perf_counter() - started
    async with AsyncClient(address) as client:
        hosts = len((await client.status()).hosts)
        started = time.perf_counter()
        counts = await client.gather(await client.map("primes", ranges, timeout=120))
        swarm_s = time.perf_counter() - started
    if counts != local:
        raise AssertionError("the swarm and the local run disagree")
    return {
        "primes": sum(counts),
        "below": chunks * chunk_size,
        "hosts": hosts,
        "one_process_s": round(local_s, 3),
        "swarm_s": round(swarm_s, 3),
        "speed_up": round(local_s / swarm_s, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`python -m examples.cpu_batch`: run against `swarm up` and print the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", metavar="ADDR", help="default: $SWARM_ADDRESS or local")
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.connect, args.chunks, args.chunk_size))
    print(
        f"{result['primes']} primes below {result['below']:,}: "
        f"{result['one_process_s']} s in one process, {result['swarm_s']} s on "
        f"{result['hosts']} host processes: {result['speed_up']}x"
    )
    return result


if __name__ == "__main__":
    main()
