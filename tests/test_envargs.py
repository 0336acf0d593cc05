"""Every option also from a SWARM_* variable (swarm.common.envargs), and `swarm up` passing the
orchestrator's and the hosts' options on to its children (real processes, their argv)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from swarm.cli.main import build_parser
from swarm.client import Backpressure, Client
from swarm.common import envargs
from swarm.server import app

from tests import test_deploy

tag = test_deploy.tag  # the fixture: every process a test starts is gone at its end


def toy(env: dict[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy", exit_on_error=False)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", exit_on_error=False)
    run.add_argument("--max-retained", type=int, default=10)
    run.add_argument("--wait", action="store_true")
    run.add_argument("--fmt", choices=("text", "json"), default="text")
    run.add_argument("--module", action="append", default=[])
    other = sub.add_parser("other", exit_on_error=False)
    other.add_argument("--plain", default="built-in")
    envargs.apply(parser, env)
    return parser


def test_variables_set_defaults_and_the_command_line_wins() -> None:
    env = {
        "SWARM_MAX_RETAINED": "5",
        "SWARM_WAIT": "yes",
        "SWARM_FMT": "json",
        "SWARM_MODULE": "a, b",
    }
    args = toy(env).parse_args(["run"])
    assert (args.max_retained, args.wait, args.fmt, args.module) == (5, True, "json", ["a", "b"])
    args = toy(env).parse_args(["run", "--max-retained", "7", "--fmt", "text", "--module", "c"])
    assert (args.max_retained, args.fmt, args.module) == (7, "text", ["c"])
    assert toy({"SWARM_WAIT": "0"}).parse_args(["run"]).wait is False
    assert toy({}).parse_args(["other"]).plain == "built-in"
    assert toy({"SWARM_PLAIN": "from env"}).parse_args(["other"]).plain == "from env"


def test_a_bad_variable_fails_only_the_command_that_reads_it_and_names_it() -> None:
    env = {"SWARM_MAX_RETAINED": "lots", "SWARM_WAIT": "maybe", "SWARM_FMT": "xml"}
    assert toy(env).parse_args(["other"]).plain == "built-in"
    for name in env:
        with pytest.raises(argparse.ArgumentError, match=f"\\${name}="):
            toy({name: env[name]}).parse_args(["run"])
    # Given on the command line, the bad variable is not read at all.
    given = ["run", "--max-retained", "3", "--fmt", "json", "--wait"]
    assert toy(env).parse_args(given).max_retained == 3


def test_swarm_commands_take_their_options_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWARM_LOG_FORMAT", "json")
    monkeypatch.setenv("SWARM_LEASE", "4.5")
    parser = build_parser()
    assert "SWARM_MAX_RETAINED" in parser.format_help()
    assert parser.parse_args(["status"]).log_format == "json"
    up = parser.parse_args(["up", "--max-retained", "9"])
    assert app.forwarded(up, app.config_args) == ["--lease", "4.5", "--max-retained", "9"]


def test_a_limit_out_of_range_is_a_usage_error_naming_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "swarm.server", "--port", "0", "--max-batch", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "max_batch" in done.stderr and "Traceback" not in done.stderr


def _argv(pid: int) -> list[str]:
    return psutil.Process(pid).cmdline()


def _after(argv: list[str], flag: str) -> str:
    """The value argparse would take: that of the flag's last occurrence."""
    return argv[len(argv) - 1 - argv[::-1].index(flag) + 1]


def test_swarm_up_passes_orchestrator_and_host_options_to_its_children(
    tmp_path: Path, tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_PREFETCH", "5")  # a variable reaches the orchestrator too
    monkeypatch.setenv("SWARM_MAX_AGENTS", "3")  # overridden by the command line below
    up = test_deploy.Up(
        tmp_path,
        tag,
        *("--hosts", "1", "--agents-per-host", "2", "--no-metrics"),
        *("--lease", "7.5", "--max-retained", "123", "--max-agents", "9", "--idle-ttl", "4"),
        *("--max-payload-bytes", "10", "--client-ttl", "60"),  # limits: every one of config.py
    )
    try:
        orch = _argv(up.orchestrator_pid)
        assert (_after(orch, "--lease"), _after(orch, "--prefetch")) == ("7.5", "5")
        assert _after(orch, "--max-retained") == "123"
        assert _after(orch, "--max-payload-bytes") == "10"
        assert _after(orch, "--client-ttl") == "60.0"
        with Client(up.address) as client:  # and the orchestrator holds to it
            with pytest.raises(Backpressure, match="11 bytes, limit 10") as refused:
                client.submit("echo", b"x" * 11).result(timeout=30)
            assert refused.value.field == "tasks[0].payload"
            assert client.submit("echo", b"x" * 10).result(timeout=30) == b"x" * 10
        assert "--result-ttl" not in orch  # not given: the orchestrator keeps its default
        host = _argv(up.host_pids[0])
        assert (_after(host, "--max-agents"), _after(host, "--idle-ttl")) == ("9", "4.0")
        assert os.environ["SWARM_MAX_AGENTS"] == "3"
        up.ctrl_c()
        assert up.proc.wait(30) == 0
    finally:
        up.close()
