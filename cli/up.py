"""`swarm up`, `swarm host` and `swarm demo`: running a swarm on this machine or joining one.

    swarm up --hosts 4 --port 0          # orchestrator + 4 hosts; Ctrl-C drains and stops them
                                         # (journal in ./.swarm: the next `swarm up` resumes)
    swarm host --connect 10.0.0.5:50051  # one more host, from another machine
    swarm demo                           # a local swarm, a small graph of tasks, a summary

Signals are handled here, at the entry point, and nowhere else in this process: the first
SIGINT/SIGTERM drains, the second kills.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from swarm.agent_host import main as host_main
from swarm.cli.own_credentials import own_credentials
from swarm.common import logs
from swarm.common.runtime import DEFAULT_PORT
from swarm.common.signals import two_stage
from swarm.deploy.spec import SwarmSpec
from swarm.deploy.supervisor import Supervisor
from swarm.server import app, journal_recovery, security

log = logging.getLogger("swarm.cli")

# Where `swarm up` keeps its journal when no state directory is named: this directory's own.
DEFAULT_STATE_DIR = ".swarm"


def register(sub: Any) -> None:
    """Add `up`, `host` and `demo` to the `swarm` command's sub-parsers."""
    up = sub.add_parser(
        "up",
        help="run an orchestrator and one agent host per core here",
        description="Run an orchestrator and agent hosts as supervised processes. "
        "Ctrl-C (or SIGTERM) drains the hosts and stops everything; a second Ctrl-C kills.",
    )
    add_swarm_args(up, port=DEFAULT_PORT)
    up.add_argument("--bind", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    up.add_argument("--log-level", default="WARNING", help="of this and every child process")
    logs.add_format_arg(up)  # passed to every child as well
    up.add_argument(
        "--unsafe-test-kinds",
        action="store_true",
        help="hosts also serve the built-in kinds that harm them (crash, burn): tests only",
    )
    security.add_args(up)
    up.add_argument(
        "--ca",
        default=None,
        metavar="PEM",
        help="with --tls-cert and no state directory: the CA bundle its certificate chains to, "
        "for this command's own hosts (default $SWARM_CA)",
    )
    up.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("SWARM_METRICS_PORT", "0")),
        metavar="PORT",
        help="the orchestrator's /metrics and dashboard (default 0: ephemeral, on loopback "
        "binds only; the URL is printed; $SWARM_METRICS_PORT)",
    )
    up.add_argument("--no-metrics", action="store_true", help="no HTTP port at all")
    journal_recovery.add_args(up)
    # The children's own options, declared by the children's parser builders: passed on when
    # given (or set by their SWARM_* variable), else each child keeps its own default.
    app.config_args(up, forward=True)
    host_main.pool_args(up.add_argument_group("host options"), forward=True)
    up.set_defaults(run=run_up)

    host = sub.add_parser(
        "host",
        help="join an agent host to a running orchestrator",
        description="Run one agent-host process connected to ADDR. The first Ctrl-C drains it "
        "(finish what runs, hand back the rest), the second exits at once.",
    )
    host_main.add_args(host)
    host.set_defaults(run=host_main.run_host)

    from swarm.cli import demo

    demo.register(sub)


def add_swarm_args(parser: argparse.ArgumentParser, *, port: int, agents: int = 500) -> None:
    """The shape of a local swarm, shared by `up` and `demo`."""
    parser.add_argument(
        "--hosts",
        type=int,
        default=os.cpu_count() or 1,
        help="agent-host processes (default: one per core, %(default)s here)",
    )
    parser.add_argument(
        "--agents-per-host",
        type=int,
        default=agents,
        help=f"agents in each host (default {agents})",
    )
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="MOD",
        help="import handlers from this module in every host (repeatable)",
    )
    parser.add_argument(
        "--port", type=int, default=port, help=f"0: an ephemeral port (default {port})"
    )
    parser.add_argument(
        "--drain-grace",
        type=float,
        default=5.0,
        metavar="S",
        help="on stop, how long hosts may finish running tasks (default 5)",
    )


def spec_from(args: argparse.Namespace, *, modules: tuple[str, ...] = ()) -> SwarmSpec:
    return SwarmSpec(
        hosts=args.hosts,
        agents_per_host=args.agents_per_host,
        modules=(*modules, *args.module),
        port=args.port,
        bind=getattr(args, "bind", "127.0.0.1"),
        drain_grace_s=args.drain_grace,
        log_level=getattr(args, "log_level", "WARNING"),
        log_format=getattr(args, "log_format", "text"),
        test_kinds=getattr(args, "unsafe_test_kinds", False),
    )


def run_up(args: argparse.Namespace) -> int:
    logs.setup(args.log_level, args.log_format)
    try:
        spec = spec_from(args)
        # Refused here, before any process starts, with the message saying what to pass.
        server_security = security.from_args(args)
        server_security.check_bind(spec.bind)
        # Whatever secures the orchestrator, its own hosts and status channel get what they
        # need to join and watch (or the start is refused, naming the flag to pass).
        env, status_credentials = own_credentials(args, server_security, os.environ)
    except (ValueError, OSError) as exc:
        print(f"swarm up: {exc}", file=sys.stderr)
        return 2
    spec = dataclasses.replace(
        spec,
        server_args=(
            *spec.server_args,
            *security.args_of(args),
            *_journal_args(args),
            *app.forwarded(args, app.config_args),
        ),
        host_args=(*spec.host_args, *app.forwarded(args, host_main.pool_args)),
        restart_orchestrator=args.journal not in ("memory", "off"),
    )
    metrics_file = _metrics_args(args, spec.bind)
    if metrics_file is not None:
        more = ("--metrics-port", str(args.metrics_port), "--metrics-port-file", metrics_file)
        spec = dataclasses.replace(spec, server_args=(*spec.server_args, *more))
    # The stdlib loop on purpose: see the supervisor's docstring.
    try:
        return asyncio.run(_up(Supervisor(spec, env=env, credentials=status_credentials)))
    finally:
        if metrics_file is not None:
            Path(metrics_file).unlink(missing_ok=True)


def _metrics_args(args: argparse.Namespace, bind: str) -> str | None:
    """Where the orchestrator writes its HTTP port, when it serves one: by default on loopback
    only (beyond it, only when --metrics-port is given, and then behind TLS and tokens)."""
    explicit = "--metrics-port" in sys.argv or "SWARM_METRICS_PORT" in os.environ
    if args.no_metrics or not (security.is_loopback(bind) or explicit):
        return None
    fd, path = tempfile.mkstemp(prefix="swarm-metrics-port-")
    os.close(fd)
    os.unlink(path)  # the orchestrator creates it once it listens
    return path


def _journal_args(args: argparse.Namespace) -> list[str]:
    """The orchestrator's journal flags. On by default: in --state-dir, else $SWARM_HOME (the
    directory `swarm certs` fills, shared: the journal is one more file in it), else ./.swarm,
    so that a crashed orchestrator, restarted by the supervisor, and the next `swarm up` here
    resume the tasks accepted before."""
    if args.journal in ("memory", "off"):
        return ["--journal", "memory"]
    out = ["--journal", "sqlite", "--journal-sync", args.journal_sync]
    if not (args.state_dir or os.environ.get("SWARM_HOME")):
        out += ["--state-dir", DEFAULT_STATE_DIR]
    return [*out, *(["--fresh"] if args.fresh else [])]


def _say(sup: Supervisor, event: str, message: str) -> None:
    """A progress line on stderr; under --log-format json a log record, so that every line
    there stays one JSON object."""
    if sup.spec.log_format == "json":
        log.warning("swarm up: %s", message, extra={"event": event})
    else:
        print(f"swarm up: {message}", file=sys.stderr, flush=True)


async def _up(sup: Supervisor) -> int:
    def drain() -> None:
        _say(sup, "up_draining", "draining hosts (Ctrl-C again to kill)")
        sup.stop()

    # Our children run in sessions of their own, so a terminal's Ctrl-C reaches only us:
    # we turn it into exactly one SIGTERM per host (drain), or SIGKILL on the second.
    with two_stage(first=drain, second=sup.kill):
        code = await sup.run(on_ready=_announce)
    _say(sup, "up_stopped" if code == 0 else "up_failed", "stopped" if code == 0 else "failed")
    return code


def _announce(sup: Supervisor) -> None:
    """One line that scripts can parse, then how to use it."""
    orch = sup.orchestrator
    pids = " ".join(str(p) for p in sup.host_pids)
    spec = sup.spec
    print(
        f"swarm listening on {sup.address} "
        f"(orchestrator pid {orch.pid if orch else '?'}; host pids {pids or '-'})",
        flush=True,
    )
    if spec.bind not in ("127.0.0.1", "localhost", "::1"):
        print(f"  bound to {spec.bind}: other machines use this machine's address", flush=True)
    print(
        f"  {spec.hosts} hosts x {spec.agents_per_host} agents"
        f"{'; modules ' + ', '.join(spec.modules) if spec.modules else ''}\n"
        f"  clients: SWARM_ADDRESS={sup.address}   more hosts: swarm host --connect {sup.address}\n"
        "  Ctrl-C drains and stops",
        flush=True,
    )
    for i, arg in enumerate(spec.server_args):
        if arg == "--metrics-port-file":
            path = Path(spec.server_args[i + 1])
            if path.exists():
                tls_flags = {"--tls-cert", "--state-dir"} & set(spec.server_args)
                tls = tls_flags or "SWARM_HOME" in os.environ
                scheme = "https" if tls else "http"
                host = "127.0.0.1" if security.is_loopback(spec.bind) else spec.bind
                url = f"{scheme}://{host}:{path.read_text().strip()}/"
                print(f"  dashboard {url}   metrics {url}metrics", flush=True)
