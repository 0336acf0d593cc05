"""Entry point of a host process: `swarm host --connect ADDR` or `python -m swarm.agent_host`.

Signals are handled here only (swarm.common.signals.two_stage): the first SIGINT/SIGTERM
drains (finish what runs within the grace period, hand back the rest, leave), a second one
leaves at once. Either way the shutdown hooks run on the way out.
"""

from __future__ import annotations

import argparse

from swarm.agent_host import handlers as handler_mod
from swarm.agent_host.host import AgentHost, HostConfig
from swarm.common import envargs, logs
from swarm.common.credentials import add_client_args, client_credentials
from swarm.common.runtime import default_address, run
from swarm.common.signals import two_stage


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connect",
        default=None,
        metavar="ADDR",
        help="orchestrator address (default: $SWARM_ADDRESS or 127.0.0.1:50051)",
    )
    parser.add_argument("--agents", type=int, default=500, help="agents at start (default 500)")
    pool_args(parser)
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="MOD",
        help="import handlers from this module (repeatable)",
    )
    parser.add_argument("--host-id", default="", help="stable id (default hostname-pid)")
    parser.add_argument("--drain-grace", type=float, default=10.0, metavar="S")
    parser.add_argument(
        "--unsafe-test-kinds",
        action="store_true",
        help="also serve the built-in kinds that harm this host, for tests and benchmarks: "
        "crash (ends the process) and burn (holds the event loop); never on a shared swarm",
    )
    logs.add_args(parser, level="WARNING")
    add_client_args(parser, role="host")


def pool_args(parser: argparse.ArgumentParser, *, forward: bool = False) -> None:
    """How a host's pool grows and shrinks. forward=True (`swarm up`): left out of the
    namespace unless given, so that only those are passed on to the hosts."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if forward else value

    parser.add_argument(
        "--max-agents",
        type=int,
        default=default(0),
        help="grow the pool to this under load (default: --agents)",
    )
    parser.add_argument(
        "--idle-ttl",
        type=float,
        default=default(30.0),
        metavar="S",
        help="shrink the pool back to --agents after this long without queued work (default 30)",
    )


def config_from(args: argparse.Namespace) -> HostConfig:
    return HostConfig(
        address=args.connect or default_address(),
        host_id=args.host_id,
        agents=args.agents,
        max_agents=args.max_agents,
        drain_grace_s=args.drain_grace,
        idle_ttl_s=args.idle_ttl,
        credentials=client_credentials(args, role="host"),
    )


async def serve(config: HostConfig, modules: list[str], *, test_kinds: bool = False) -> None:
    host = AgentHost(config, handler_mod.load(modules, test_kinds=test_kinds))
    with two_stage(first=host.drain, second=host.stop):
        await host.run()


def run_host(args: argparse.Namespace) -> int:
    logs.setup(args.log_level, args.log_format)
    run(serve(config_from(args), args.module, test_kinds=args.unsafe_test_kinds))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="swarm-host", description="Swarm agent host", epilog=envargs.EPILOG
    )
    add_args(parser)
    envargs.apply(parser)
    return run_host(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
