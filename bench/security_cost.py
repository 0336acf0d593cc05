"""W9's security pair: W1 and W3 with and without TLS + tokens, measured in the same run.

    python -m swarm.bench.security_cost [--rounds 2] [--w1 20000] [--w3 1000]

Each round runs both arms back to back (plain, then secure, alternating which goes first), on
an in-process swarm (server, 2 hosts and the client in one process: fewer moving parts, the
same gRPC wire), so load on the machine hits both arms alike. Reports the medians and the
ratios secure/plain: W1 throughput (target >= 0.9) and W3 p50 latency (target <= 1.15).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from swarm.bench import ab
from swarm.bench.drivers import SdkDriver
from swarm.bench.workloads import w1_noop, w3_latency, warm_up
from swarm.client import AsyncClient
from swarm.common import pki
from swarm.common.credentials import Credentials
from swarm.deploy.inproc import InProcessSwarm


async def _measure(address: str, creds: Credentials, w1: int, w3: int) -> dict[str, float]:
    async with AsyncClient(address, credentials=creds) as client:
        driver = SdkDriver(client)
        await warm_up(driver, 500)
        return {**await w1_noop(driver, w1), **await w3_latency(driver, w3)}


def arm(home: Path | None, w1: int, w3: int) -> dict[str, float]:
    creds = Credentials.resolve(home=home, env={}) if home else Credentials()
    swarm = InProcessSwarm.secured(home, 2, 500) if home else InProcessSwarm(2, 500)
    with swarm:
        return asyncio.run(_measure(swarm.address, creds, w1, w3))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="swarm-bench-security")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--w1", type=int, default=20_000)
    parser.add_argument("--w3", type=int, default=1_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "state"
        pki.init_state(home)
        runs = ab.alternate(
            args.rounds,
            "plain",
            "secure",
            lambda name, _r: arm(home if name == "secure" else None, args.w1, args.w3),
        )
    print(ab.report(runs, "plain", "secure"))


if __name__ == "__main__":
    main()
