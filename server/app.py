"""Composition root of the orchestrator process: builds the core, the services and the server.

    python -m swarm.server --port 50051
    python -m swarm.server --port 50051 --state-dir DIR   # durable: DIR/journal.sqlite

`Server` is also what tests start in-process: `async with Server(config, port=0) as s:` binds an
ephemeral port and exposes it as `s.port`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from swarm.common import envargs, logs
from swarm.common.faults import FaultInterceptor, FaultPlan
from swarm.common.grpc_options import SERVER_OPTIONS
from swarm.common.runtime import DEFAULT_PORT, run
from swarm.common.signals import two_stage
from swarm.server import compiled, garbage, journal_recovery, observe
from swarm.server.auth import TokenFileError
from swarm.server.config import OrchestratorConfig
from swarm.server.host_bindings import HostBindingsError
from swarm.server.host_service import HostServicer
from swarm.server.journal_base import JournalBackend, JournalError
from swarm.server.observe import ObserveServer, ssl_context
from swarm.server.orchestrator import Orchestrator
from swarm.server.security import InsecureBindError, ServerSecurity
from swarm.server.security import add_args as security_args
from swarm.server.security import from_args as security_from_args
from swarm.server.task_service import RESTARTING, SHUTDOWN, TaskServicer
from swarm.v1 import host_pb2, task_pb2

log = logging.getLogger("swarm.server")


class Server:
    """The orchestrator's gRPC server and its timer loop, owned and stopped together.

    Supervision: `start()` runs two loops, the timer loop (Orchestrator.run_timers) and the
    gRPC server. `wait()` returns once a stop is asked for (`request_stop()`, `stop()`) or the
    server terminated, and raises the error of a loop that died: the timer loop never ends on
    its own, so its end is a bug, and an orchestrator without timers must not run on (no lease
    expires, nothing is retried or timed out). `stop()`, and so `async with`, re-raises that
    error too, unless `wait()` already did, so in-process users learn of it as well.

    Shutdown order (`stop(grace_s)`):
      1. health NOT_SERVING on every service, so probes and balancers look elsewhere first,
         and every client Session ends with the shutdown status (task.proto, Session): its
         client learns that the orchestrator shut down, and that its unfinished tasks are not
         kept, rather than seeing an unexplained broken stream;
      2. stop accepting: grpc's server.stop(grace) starts, which refuses new RPCs at once;
      3. stop the timer loop (cancel, await): nothing is expired, retried or declared lost
         from here on, while the streams of a dying server end;
      4. server.stop(grace) completes: in-flight RPCs get grace_s, then are cancelled;
      5. the journal commits what is queued and closes (the next start resumes from it).
    `stop_now()` (a second signal) cuts step 4 short: every RPC is cancelled at once.
    """

    def __init__(
        self,
        config: OrchestratorConfig | None = None,
        *,
        bind: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        faults: FaultPlan | None = None,
        security: ServerSecurity | None = None,
        metrics_port: int | None = None,
        metrics_bind: str | None = None,
        journal: JournalBackend | None = None,
    ) -> None:
        self.config = config or OrchestratorConfig()
        self.journal_backend = journal  # None: nothing survives the process
        self.security = security or ServerSecurity()
        self.authority = self.security.authority()
        self.bind = bind
        self.requested_port = port
        self.orch = Orchestrator(self.config)
        self.port = 0
        self.faults = faults
        interceptors = [FaultInterceptor(faults)] if faults is not None else []
        interceptors += self.security.interceptors(self.authority)
        self._server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
        self._health = health.aio.HealthServicer()
        self.undecodable = garbage.RateLimitedWarning()
        self._loops: list[asyncio.Task[object]] = []
        self._ended = asyncio.Event()  # a stop was asked for, or a loop ended
        self._failure: BaseException | None = None
        self._failure_raised = False
        self._stopping_now: asyncio.Task[None] | None = None
        # The HTTP port (metrics, dashboard; server/observe.py): off when metrics_port is None.
        self.observe: ObserveServer | None = None
        if metrics_port is not None:
            self.observe = ObserveServer(
                self.orch,
                self.authority,
                bind=metrics_bind or bind,
                port=metrics_port,
                tls=ssl_context(self.security),
            )

    @property
    def address(self) -> str:
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"{host}:{self.port}"

    @property
    def failure(self) -> BaseException | None:
        """The error that ended a loop, once one did."""
        return self._failure

    async def start(self) -> None:
        server, auth = self._server, self.authority
        self.security.check_bind(self.bind)  # before anything listens
        if self.observe is not None:
            self.security.check_bind(self.observe.bind)
        if self.journal_backend is not None:  # recovered before anything is served
            writer = journal_recovery.attach(self.orch, self.journal_backend, self.config)
            writer.on_failure = self._journal_failed
        # Registered with a deserializer that never raises: undecodable requests are refused
        # with INVALID_ARGUMENT and one rate-limited warning (garbage.py).
        tasks = task_pb2.DESCRIPTOR.services_by_name["TaskService"]
        hosts = host_pb2.DESCRIPTOR.services_by_name["HostService"]
        garbage.register(server, TaskServicer(self.orch, auth), tasks, self.undecodable)
        garbage.register(server, HostServicer(self.orch, auth), hosts, self.undecodable)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = (
            tasks.full_name,
            hosts.full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        target, creds = f"{self.bind}:{self.requested_port}", self.security.server_credentials()
        if creds is None:
            self.port = server.add_insecure_port(target)
        else:
            self.port = server.add_secure_port(target, creds)
        if self.port == 0:
            raise OSError(f"could not bind {self.bind}:{self.requested_port}")
        await server.start()
        for name in ("", *names[:2]):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        seam = self.faults.on_tick if self.faults is not None else None
        self._own(self.orch.run_timers(seam), "orchestrator-timers")
        self._own(server.wait_for_termination(), "grpc-server")
        if self.observe is not None:
            await self.observe.start()
        log.info(
            "orchestrator listening on %s (core: %s)",
            self.address,
            "compiled by mypyc" if compiled() else "pure Python",
        )

    def _own(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._loop_ended)
        self._loops.append(task)

    def _journal_failed(self, exc: BaseException) -> None:
        # As a dead timer loop: answering on would promise durability that is not kept.
        if self._failure is None:
            self._failure = exc
            log.critical("the journal failed, the orchestrator stops: %s", exc)
        self._ended.set()

    def _loop_ended(self, task: asyncio.Task[object]) -> None:
        if not task.cancelled() and self._failure is None:
            exc = task.exception()
            if exc is None and task.get_name() == "orchestrator-timers":
                exc = RuntimeError("the timer loop returned")
            if exc is not None:
                self._failure = exc
                # The traceback goes with the error to whoever awaits wait() or stop().
                log.critical("%s failed, the orchestrator stops: %r", task.get_name(), exc)
        self._ended.set()

    async def wait(self) -> None:
        """Until a stop is asked for or a loop ended; raises the error of a loop that failed."""
        await self._ended.wait()
        if self._failure is not None:
            self._failure_raised = True
            raise self._failure

    def request_stop(self) -> None:
        """End wait() (the first SIGINT/SIGTERM); the caller then stops the server."""
        self._ended.set()

    def stop_now(self) -> None:
        """Cancel every RPC now instead of after the grace period (a second signal)."""
        if self._stopping_now is None:
            self._stopping_now = asyncio.create_task(self._server.stop(None), name="stop-now")

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop in the order the class docstring gives; re-raises a loop's failure once."""
        self._ended.set()
        if self.observe is not None:
            await self.observe.stop()
        await self._health.enter_graceful_shutdown()  # 1
        # Without a journal the tasks die with this process: tell clients so. With one they are
        # kept, and clients reconnect and carry on with the next start.
        self.orch.end_client_sessions(SHUTDOWN if self.journal_backend is None else RESTARTING)
        stopping = asyncio.create_task(self._server.stop(grace_s), name="grpc-stop")  # 2
        timers = [t for t in self._loops if t.get_name() == "orchestrator-timers"]
        for t in timers:
            t.cancel()
        await asyncio.gather(*timers, return_exceptions=True)  # 3
        await stopping  # 4
        if self._stopping_now is not None:
            await self._stopping_now
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self.orch.journal is not None:  # 5: what is queued is committed, the file closed
            await asyncio.to_thread(self.orch.journal.close)
        if self._failure is not None and not self._failure_raised:
            self._failure_raised = True
            raise self._failure

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def config_args(parser: argparse.ArgumentParser, *, forward: bool = False) -> None:
    """The OrchestratorConfig options. forward=True (`swarm up`): the same options, left out
    of the namespace unless given, so that only those are passed on to the orchestrator."""
    d = OrchestratorConfig()
    group = parser.add_argument_group("orchestrator options") if forward else parser

    def option(flag: str, default: object, **kw: Any) -> None:
        if forward:
            help_ = kw.pop("help", None)
            kw["help"] = f"{help_ + '; ' if help_ else ''}orchestrator's default {default}"
        group.add_argument(flag, default=argparse.SUPPRESS if forward else default, **kw)

    option("--heartbeat-interval", d.heartbeat_interval_s, type=float, metavar="S")
    option("--lease", d.lease_s, type=float, metavar="S")
    option("--prefetch", d.prefetch, type=int, help="tasks a host may hold beyond its agents")
    option(
        "--prefetch-time",
        d.prefetch_s,
        type=float,
        metavar="S",
        help="a host's prefetch: what it finishes in S at its recent pace",
    )
    option("--max-host-losses", d.max_host_losses, type=int)
    option("--max-retries", d.default_max_retries, type=int)
    option(
        "--timeout-grace",
        d.timeout_grace_s,
        type=float,
        metavar="S",
        help="time an attempt out here when its host reports nothing this long past timeout_s",
    )
    option("--result-ttl", d.result_ttl_s, type=float, metavar="S")
    option("--max-retained", d.max_retained, type=int, help="finished tasks kept at most")
    for flag, field, kind, help_ in LIMIT_OPTIONS:
        metavar = "S" if field.endswith("_s") else "BYTES" if field.endswith("_bytes") else "N"
        option(flag, getattr(d, field), type=kind, metavar=metavar, help=help_)


# The limits and retention of server/config.py (its comments say what each bounds), one
# option each: flag, OrchestratorConfig field, type, help.
LIMIT_OPTIONS: tuple[tuple[str, str, type, str], ...] = (
    ("--max-retained-bytes", "max_retained_bytes", int, "of finished tasks kept"),
    ("--client-ttl", "client_ttl_s", float, "a gone client's undelivered results kept"),
    ("--max-tasks", "max_tasks", int, "unfinished tasks held (then RESOURCE_EXHAUSTED)"),
    ("--max-task-bytes", "max_task_bytes", int, "of unfinished tasks' payloads"),
    ("--max-unacked-results", "max_unacked_results", int, "per client"),
    ("--max-unacked-result-bytes", "max_unacked_result_bytes", int, "per client"),
    ("--max-unacked-bytes-total", "max_unacked_bytes_total", int, "all clients together"),
    ("--max-clients", "max_clients", int, "client entries (result outboxes)"),
    ("--max-watchers", "max_watchers", int, "other clients sent one task's result"),
    ("--max-batch", "max_batch", int, "tasks in one request"),
    ("--max-payload-bytes", "max_payload_bytes", int, "one task's payload"),
    ("--max-output-bytes", "max_output_bytes", int, "one task's output"),
    ("--max-depends-on", "max_depends_on", int, "dependencies of one task"),
    ("--max-ids", "max_ids", int, "ids in one GetTasks, Wait, Cancel or ack"),
    ("--max-session-streams", "max_session_streams", int, "open client streams"),
    ("--max-host-streams", "max_host_streams", int, "open host streams"),
    ("--max-host-capacity", "max_host_capacity", int, "agents one host may report"),
    ("--retry-backoff", "retry_backoff_s", float, "first wait before a retry"),
    ("--retry-backoff-max", "retry_backoff_max_s", float, "longest wait before a retry"),
)


def forwarded(args: argparse.Namespace, add: Callable[..., None]) -> list[str]:
    """The command line that repeats the options `add(parser, forward=True)` declared and
    `args` holds (given, or from their SWARM_* variable)."""
    probe = argparse.ArgumentParser(add_help=False)
    add(probe, forward=True)
    argv: list[str] = []
    for action in probe._actions:
        if action.dest in vars(args):
            argv += [action.option_strings[0], str(getattr(args, action.dest))]
    return argv


def config_from_args(args: argparse.Namespace) -> OrchestratorConfig:
    return OrchestratorConfig(
        heartbeat_interval_s=args.heartbeat_interval,
        lease_s=args.lease,
        prefetch=args.prefetch,
        prefetch_s=args.prefetch_time,
        max_host_losses=args.max_host_losses,
        default_max_retries=args.max_retries,
        timeout_grace_s=args.timeout_grace,
        result_ttl_s=args.result_ttl,
        max_retained=args.max_retained,
        tick_s=min(0.05, args.heartbeat_interval),
        **{field: getattr(args, field_dest(flag)) for flag, field, _, _ in LIMIT_OPTIONS},
    )


def field_dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def write_port_file(path: str, port: int) -> None:
    """Atomically (write, then rename), so a reader never sees an empty file."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(str(port))
    tmp.replace(path)


async def serve(
    config: OrchestratorConfig,
    bind: str,
    port: int,
    port_file: str | None,
    faults: FaultPlan | None = None,
    security: ServerSecurity | None = None,
    metrics: argparse.Namespace | None = None,
    journal: JournalBackend | None = None,
) -> None:
    """Run until SIGINT or SIGTERM, then stop within a second (a second signal: at once).
    A loop that fails ends it with that loop's error (see Server)."""
    m = metrics or argparse.Namespace(metrics_port=None, metrics_bind=None, metrics_port_file=None)
    server = Server(
        config,
        bind=bind,
        port=port,
        faults=faults,
        security=security,
        metrics_port=m.metrics_port,
        metrics_bind=m.metrics_bind,
        journal=journal,
    )
    await server.start()
    with two_stage(first=server.request_stop, second=server.stop_now):
        try:
            print(f"swarm orchestrator listening on {server.address}", flush=True)
            if server.observe is not None:
                print(f"swarm orchestrator metrics and dashboard on {server.observe.url}")
                if m.metrics_port_file:
                    write_port_file(m.metrics_port_file, server.observe.port)
            if port_file:
                write_port_file(port_file, server.port)
            await server.wait()
        finally:
            await server.stop(1.0)


def tune_gc() -> None:
    """Fewer full collections: the process holds up to max_retained finished tasks, and a full
    collection walks all of them (~60 ms at 100,000) to find cycles that tasks do not form
    (a task drops its dependents when it finishes). Start-up objects are frozen out of it."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(max(young, 10_000), middle, 100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="swarm-orchestrator", description="Swarm orchestrator", epilog=envargs.EPILOG
    )
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--port-file", help="write the bound port here (for --port 0)")
    logs.add_args(parser, level="INFO")
    parser.add_argument(
        "--faults", default=None, help="fault-seam plan: JSON or a file (default: $SWARM_FAULTS)"
    )
    config_args(parser)
    security_args(parser)
    observe.add_args(parser)
    journal_recovery.add_args(parser)
    envargs.apply(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    faults = FaultPlan.from_env(args.faults)
    if faults is not None:
        log.warning("fault seams ON: %d rules", len(faults.rules))
    tune_gc()
    try:
        security = security_from_args(args)
        security.check_bind(args.bind)
        config = config_from_args(args)  # ConfigError (a ValueError): which setting, and why
        journal = journal_recovery.open_backend(journal_recovery.from_args(args))
    except (InsecureBindError, ValueError, OSError, JournalError) as exc:
        print(f"swarm orchestrator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        run(serve(config, args.bind, args.port, args.port_file, faults, security, args, journal))
    # Unreadable at start (the journal, the token file, the host id bindings), or a journal
    # write failed: the message names the file.
    except (JournalError, TokenFileError, HostBindingsError) as exc:
        print(f"swarm orchestrator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:
        log.critical("the orchestrator exits on an error", exc_info=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
