"""A research-style agent swarm: a fan-out of agent tasks over HTTP, then one reduce.

Each `research` task fetches a document about one topic from a small local HTTP server (which
`main()` starts, standing in for a web API), counts its words and remembers, in its agent's
private `state`, how many topics that agent has researched and which. The HTTP connection pool
is a host-wide resource: created once per host process by an `@on_startup` hook and shared by
all its agents, so keep-alive connections are reused across tasks instead of reopened. Then a
`summarize` task receives every finding (through `ctx.deps`) and ranks them.

    swarm up --module examples.research_swarm
    python -m examples.research_swarm [--connect ADDR] [--topics 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from swarm.agent_host import TaskContext, handler, on_startup
from swarm.client import AsyncClient

WORDS = ["agent", "swarm", "task", "graph", "host", "queue", "result", "lease", "batch", "stream"]


# -- handlers (run in the hosts) ------------------------------------------------------------


class HttpPool:
    """A tiny keep-alive HTTP/1.1 GET client over asyncio streams (think aiohttp's session).

    Idle connections are kept per origin and reused; at most `size` stay open per origin.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.opened = 0  # connections ever opened: stays small when reuse works
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
        self._idle = {}

    async def get(self, url: str) -> bytes:
        parts = urlsplit(url)
        origin = (parts.hostname or "127.0.0.1", parts.port or 80)
        idle = self._idle.setdefault(origin, [])
        if idle:
            reader, writer = idle.pop()
        else:
            reader, writer = await asyncio.open_connection(*origin)
            self.opened += 1
        try:
            writer.write(f"GET {parts.path} HTTP/1.1\r\nHost: {origin[0]}\r\n\r\n".encode())
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if len(idle) < self.size:
            idle.append((reader, writer))
        else:
            writer.close()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"GET {url}: {status.decode().strip()}")
        return body


@on_startup
async def open_pool(resources: dict[str, Any]) -> None:
    """Once per host: the HTTP pool every agent of this host shares."""
    resources["http"] = HttpPool()


@handler("research")
async def research(ctx: TaskContext, payload: bytes) -> dict[str, Any]:
    """Payload {"api": url, "topic": str}: fetch the topic's document, report what it found."""
    job = json.loads(payload)
    pool: HttpPool = ctx.resources["http"]
    text = (await pool.get(f"{job['api']}/doc/{job['topic']}")).decode()
    words = text.split()
    seen = ctx.state.setdefault("topics", [])  # this agent's memory, across its tasks
    seen.append(job["topic"])
    return {
        "topic": job["topic"],
        "words": len(words),
        "top_word": max(set(words), key=words.count),
        "agent": f"{ctx.agent_id}",
        "agent_topics": len(seen),
        "pool_connections": pool.opened,
    }


@handler("summarize")
async def summarize(ctx: TaskContext, payload: bytes) -> dict[str, Any]:
    """Reduce: every finding arrives in ctx.deps, in the order the topics were given."""
    findings = [json.loads(d) for d in ctx.deps]
    top = sorted(findings, key=lambda f: (-f["words"], f["topic"]))[: json.loads(payload)["top"]]
    return {
        "topics": len(findings),
        "words": sum(f["words"] for f in findings),
        "longest": [f["topic"] for f in top],
        "most_topics_by_one_agent": max(f["agent_topics"] for f in findings),
        "most_connections_in_a_host_pool": max(f["pool_connections"] for f in findings),
    }


# -- the local "web API" and the client side ------------------------------------------------


def document(topic: str) -> str:
    """The text the API serves for a topic: deterministic, so results can be checked."""
    rng = random.Random(topic)
    return " ".join(rng.choice(WORDS) for _ in range(50 + rng.randrange(200)))


class _Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the hosts' pools can reuse connections

    def do_GET(self) -> None:
        body = document(self.path.rsplit("/", 1)[-1]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextmanager
def local_api() -> Iterator[str]:
    """Serve `document(topic)` at http://127.0.0.1:PORT/doc/TOPIC while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, name="example-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def run(address: str | None = None, topics: int = 40) -> dict[str, Any]:
    """Research `topics` topics on the swarm at `address` and return the summary."""
    names = [f"topic-{i:03d}" for i in range(topics)]
    with local_api() as api:
        async with AsyncClient(address) as client:
            summary_future = await client.scatter_gather(
                "research",
                [{"api": api, "topic": name} for name in names],
                "summarize",
                {"top": 3},
                timeout=30,
            )
            summary: dict[str, Any] = await summary_future.result(timeout=120)
    assert summary["words"] == sum(len(document(n).split()) for n in names)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`python -m examples.research_swarm`: run against `swarm up` and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", metavar="ADDR", help="default: $SWARM_ADDRESS or local")
    parser.add_argument("--topics", type=int, default=40)
    args = parser.parse_args(argv)
    summary = asyncio.run(run(args.connect, args.topics))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
