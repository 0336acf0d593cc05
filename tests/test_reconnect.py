"""Hosts come back after the orchestrator does (issue 9, defect 9), on real processes.

The orchestrator is SIGKILLed and, after an outage long enough for any connection backoff to
grow, a new one starts on the same port: every host must be ACTIVE again within twice the
reconnect cap. A gRPC channel left in TRANSIENT_FAILURE retries on its own backoff (1 s growing
by 1.6x to 120 s by default) and fails every call fast in between, whatever the host's own
backoff says; this is what the test would catch.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from swarm.agent_host.host import HostConfig
from swarm.deploy.orphan import tied, tied_env
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

from tests.helpers import eventually

HOSTS = 4
CAP_S = HostConfig(address="").reconnect_max_s
# Long enough that gRPC's default channel backoff (1, 1.6, 2.56, 4.1, 6.55 s ...) has stretched
# past twice the cap: a channel that keeps its own backoff misses the restart by seconds.
OUTAGE_S = 9.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _children() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait(10)


def _spawn(
    procs: list[subprocess.Popen[bytes]], log: Path, module: str, *args: str
) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            tied(module, *args),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=tied_env(os.environ),
            start_new_session=True,
        )
    procs.append(proc)
    return proc


def _active(address: str) -> set[str] | None:
    """The ACTIVE hosts' ids, None while nothing answers. A fresh channel (and subchannel) per
    poll: the test's own channel must not lag behind a backoff of its own."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(address, options=options) as channel:
        try:
            status = task_pb2_grpc.TaskServiceStub(channel).GetStatus(
                task_pb2.GetStatusRequest(), timeout=1.0
            )
        except grpc.RpcError:
            return None
    return {h.host_id for h in status.hosts if h.state == types_pb2.ACTIVE}


def test_every_host_rejoins_a_restarted_orchestrator_within_twice_the_cap(tmp_path: Path) -> None:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    ids = {f"h{i}" for i in range(HOSTS)}
    with _children() as procs:
        log = tmp_path / "orchestrator.log"
        orch = _spawn(procs, log, "swarm.server", "--port", str(port), "--log-level", "WARNING")
        for host_id in sorted(ids):
            _spawn(
                procs,
                tmp_path / f"{host_id}.log",
                "swarm.agent_host",
                *("--connect", address, "--agents", "5", "--host-id", host_id),
            )
        hosts = procs[1:]
        eventually(lambda: _active(address) == ids, 30, 0.05, what="4 hosts ACTIVE")

        orch.send_signal(signal.SIGKILL)
        orch.wait(10)
        # The outage: the hosts keep retrying (and stay alive) all along.
        down_until = time.monotonic() + OUTAGE_S
        while time.monotonic() < down_until:
            assert all(p.poll() is None for p in hosts), "a host exited during the outage"
            time.sleep(0.1)

        _spawn(procs, log, "swarm.server", "--port", str(port), "--log-level", "WARNING")
        eventually(lambda: _active(address) is not None, 30, 0.01, what="the new orchestrator")
        listening = time.monotonic()
        try:
            eventually(lambda: _active(address) == ids, 2 * CAP_S, 0.02, what="4 hosts back")
        except AssertionError:
            logs = {p.name: p.read_text()[-600:] for p in sorted(tmp_path.glob("h*.log"))}
            raise AssertionError(f"back: {_active(address)} of {sorted(ids)}; {logs}") from None
        rejoin_s = time.monotonic() - listening
        assert rejoin_s <= 2 * CAP_S, f"all back {rejoin_s:.2f} s after the restart"
