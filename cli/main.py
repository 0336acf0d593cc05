"""The `swarm` command: one entry point, one module per group of sub-commands.

Each command module exposes `register(subparsers)`, adding its parsers with a `run` default
that takes the parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import argcomplete
from swarm.common import envargs, logs
from swarm.common.io_stack import prefer_legacy_io

# Modules that contribute sub-commands, in the order `swarm --help` lists them.
COMMAND_MODULES = (
    "swarm.cli.up",
    "swarm.cli.client_cmds",
    "swarm.cli.observe_cmds",
    "swarm.cli.certs",
    "swarm.cli.bench",
    "swarm.cli.completion",
)


def swarm_version() -> str:
    """The installed distribution's version (pyproject.toml), the one `pip show swarm` prints."""
    try:
        return version("swarm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swarm",
        description="Run swarms of asyncio agents across processes and machines.",
        epilog=envargs.EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"swarm {swarm_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    # Every command logs in the same two formats; `up` and `host` declare theirs themselves.
    for p in envargs.parsers(parser):
        if p is not parser and not _has_commands(p) and not logs.has_option(p, "--log-format"):
            logs.add_format_arg(p)
    envargs.apply(parser)  # last: every option of every command exists by now
    return parser


def _has_commands(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def main(argv: Sequence[str] | None = None) -> int:
    prefer_legacy_io()  # before the command modules import grpc; children inherit it
    parser = build_parser()
    # Under the shell's completion script (`swarm completion`): print the candidates and exit.
    argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    logs.setup_unless_embedded(
        getattr(args, "log_level", "WARNING"), getattr(args, "log_format", "text")
    )
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
