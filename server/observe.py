"""The orchestrator's HTTP port: Prometheus metrics, the dashboard and its JSON, on the loop.

    GET /metrics           Prometheus text format (server/metrics.py)
    GET /                  the dashboard (server/dashboard/, shipped in the package)
    GET /api/state         what the dashboard draws (server/dashboard_api.py)
    GET /api/task?id=ID[&namespace=NS]   one task
    GET /healthz           "ok", never behind a credential (for probes)

A small asyncio HTTP/1.0-style server rather than prometheus_client's threaded one: a scrape
must read core state on the event-loop thread that mutates it (no locks exist in the core),
and one GET per connection is all Prometheus and the page need.

When authentication is on, everything but the page's static files and /healthz needs an admin
token as `Authorization: Bearer TOKEN` (Prometheus: `authorization: {credentials: ...}`; the
page asks for it once and keeps it in the browser's localStorage). With TLS on, the port
serves HTTPS with the orchestrator's certificate, so that token never crosses in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import tempfile
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from swarm.server.dashboard_api import Observer
from swarm.server.keys import DEFAULT_NAMESPACE
from swarm.server.metrics import SwarmCollector
from swarm.server.orchestrator import Orchestrator
from swarm.server.security import ServerSecurity
from swarm.server.tenancy import Authority

log = logging.getLogger("swarm.server.observe")

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT_S = 10.0
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed"}  # fmt: skip


def _asset(name: str) -> bytes:
    return resources.files("swarm.server").joinpath("dashboard", name).read_bytes()


def ssl_context(security: ServerSecurity) -> ssl.SSLContext | None:
    """HTTPS from the orchestrator's own certificate, when it has one."""
    if security.cert is None or security.key is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain reads files only: the PEMs go through a private temporary directory.
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        for path, data in ((cert, security.cert), (key, security.key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert, key)
    return ctx


class ObserveServer:
    def __init__(
        self,
        orch: Orchestrator,
        authority: Authority,
        *,
        bind: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.orch = orch
        self.authority = authority
        self.bind, self.requested_port, self.tls = bind, port, tls
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = SwarmCollector(orch)
        self.registry.register(self.collector)
        self.observer = Observer(orch, self.registry)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sampler: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.bind, self.requested_port, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.orch.observer = self.observer  # from here on the edge reports batches and losses
        self._sampler = asyncio.create_task(self.observer.sample_forever(), name="observe-series")
        log.info("metrics and dashboard on %s", self.url)

    async def stop(self) -> None:
        self.orch.observer = None
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ---- one request per connection ------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            if len(head) > MAX_HEAD:
                return
            status, ctype, body = self._respond(head.decode("latin-1"))
            hdrs = [
                f"HTTP/1.1 {status} {REASONS.get(status, '')}",
                f"Content-Type: {ctype}",
                f"Content-Length: {len(body)}",
                "Cache-Control: no-store",
                "X-Content-Type-Options: nosniff",
                "Connection: close",
            ]
            if status == 401:
                hdrs.append('WWW-Authenticate: Bearer realm="swarm"')
            writer.write(("\r\n".join(hdrs) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass  # the peer went away: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    def _respond(self, head: str) -> tuple[int, str, bytes]:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return 400, "text/plain", b"bad request line\n"
        method, target = parts[0], urlsplit(parts[1])
        if method != "GET":
            return 405, "text/plain", b"GET only\n"
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        path = target.path
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path in ("/", "/index.html"):
            return 200, STATIC["index.html"], _asset("index.html")
        if path.startswith("/static/") and path[8:] in STATIC:
            return 200, STATIC[path[8:]], _asset(path[8:])
        denied = self._check(headers.get("authorization", ""))
        if denied is not None:
            return denied
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/api/state":
            return self._json(self.observer.state())
        if path == "/api/task":
            query = parse_qs(target.query)
            task_id = query.get("id", [""])[0]
            namespace = query.get("namespace", [DEFAULT_NAMESPACE])[0] or DEFAULT_NAMESPACE
            found = self.observer.task(namespace, task_id) if task_id else None
            if found is None:
                return 404, "application/json", b'{"error": "no such task"}'
            return self._json(found)
        return 404, "text/plain", b"not found\n"

    def _check(self, authorization: str) -> tuple[int, str, bytes] | None:
        """None when the caller may read; else the refusal. Admin only, when auth is on."""
        tokens = self.authority.tokens
        if tokens is None:
            return None
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        grant = tokens.lookup(token) if token else None
        if grant is None:
            return 401, "application/json", b'{"error": "an admin token is needed"}'
        if not grant.is_admin:
            return 403, "application/json", b'{"error": "this token is not an admin token"}'
        return None

    @staticmethod
    def _json(value: Any) -> tuple[int, str, bytes]:
        return 200, "application/json", json.dumps(value).encode()


def add_args(parser: Any) -> None:
    """The orchestrator's HTTP-port flags (each also from its SWARM_* variable)."""
    env = os.environ.get
    port = env("SWARM_METRICS_PORT")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(port) if port else None,
        metavar="PORT",
        help="serve Prometheus /metrics and the dashboard here (0: ephemeral; default: off, "
        "or $SWARM_METRICS_PORT)",
    )
    parser.add_argument(
        "--metrics-bind",
        default=env("SWARM_METRICS_BIND"),
        metavar="ADDR",
        help="listen address of the HTTP port (default: --bind)",
    )
    parser.add_argument(
        "--metrics-port-file",
        default=env("SWARM_METRICS_PORT_FILE"),
        metavar="FILE",
        help="write the HTTP port's number here once it listens (for --metrics-port 0)",
    )
