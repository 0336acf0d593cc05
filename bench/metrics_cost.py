"""W9's metrics pair: W1 and W3 with /metrics and the dashboard's /api/state scraped every
second, against the same swarm without the HTTP port, measured in the same run.

    python -m swarm.bench.metrics_cost [--rounds 2] [--w1 20000] [--w3 1000]

Each round runs both arms back to back (alternating which goes first) on an in-process swarm,
as security_cost.py does. The scraper is a thread of its own doing what Prometheus and an open
dashboard page would: GET /metrics and GET /api/state once a second. Reports the medians and
the ratios scraped/plain: W1 throughput (target >= 0.97) and W3 p50 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import urllib.request

from swarm.bench import ab
from swarm.bench.drivers import SdkDriver
from swarm.bench.workloads import w1_noop, w3_latency, warm_up
from swarm.client import AsyncClient
from swarm.deploy.inproc import InProcessSwarm

SCRAPE_INTERVAL_S = 1.0


async def _measure(address: str, w1: int, w3: int) -> dict[str, float]:
    async with AsyncClient(address) as client:
        driver = SdkDriver(client)
        await warm_up(driver, 500)
        return {**await w1_noop(driver, w1), **await w3_latency(driver, w3)}


def _scrape(base: str, stop: threading.Event, counts: list[int]) -> None:
    while not stop.wait(SCRAPE_INTERVAL_S):
        for path in ("/metrics", "/api/state"):
            with urllib.request.urlopen(base + path, timeout=5) as reply:
                reply.read()
            counts[0] += 1


def arm(scraped: bool, w1: int, w3: int) -> dict[str, float]:
    with InProcessSwarm(hosts=2, agents_per_host=500, metrics_port=0 if scraped else None) as s:
        stop, counts = threading.Event(), [0]
        scraper = None
        if scraped:
            base = s.metrics_url.rstrip("/")
            scraper = threading.Thread(target=_scrape, args=(base, stop, counts), daemon=True)
            scraper.start()
        try:
            figures = asyncio.run(_measure(s.address, w1, w3))
        finally:
            stop.set()
            if scraper is not None:
                scraper.join(10)
        return {**figures, "scrapes": float(counts[0])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="swarm-bench-metrics")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--w1", type=int, default=20_000)
    parser.add_argument("--w3", type=int, default=1_000)
    args = parser.parse_args(argv)
    runs = ab.alternate(
        args.rounds, "plain", "scraped", lambda name, _r: arm(name == "scraped", args.w1, args.w3)
    )
    print(ab.report(runs, "plain", "scraped"))


if __name__ == "__main__":
    main()
