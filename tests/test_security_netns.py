"""Multi-machine for real over mTLS (issue 11): the orchestrator bound to a real address in the
root network namespace, two hosts each in a namespace of its own behind a veth pair, joined by
their certificates from the swarm's CA (the client by its own, `client.pem`). A host killed,
frozen or cut off mid-run (the failover tests' three faults), its work finished by the other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from swarm.client import Client
from swarm.common import pki
from swarm.common.credentials import Credentials
from swarm.deploy.procs import read_port

from tests import netns
from tests.helpers import ROOT, eventually

pytestmark = pytest.mark.netns


@pytest.fixture
def two_machines() -> Iterator[tuple[netns.NetNs, netns.NetNs]]:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    with netns.NetNs() as a, netns.NetNs() as b:
        yield a, b


@pytest.mark.parametrize("fault", ["kill", "freeze", "cut"])
def test_failover_across_namespaces_over_mtls(
    two_machines: tuple[netns.NetNs, netns.NetNs], tmp_path: Path, fault: str
) -> None:
    a, b = two_machines
    home = tmp_path / "state"
    pki.init_state(home, server_names=[a.root_addr, b.root_addr])
    port_file = tmp_path / "port"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    with ExitStack() as stack:

        def spawn(args: list[str]) -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
            stack.callback(_reap, proc)
            return proc

        # Bound to the wildcard, so each namespace reaches it at its own veth's root address.
        spawn([
            sys.executable, "-m", "swarm.server", "--bind", "0.0.0.0", "--port", "0",
            "--port-file", str(port_file), "--state-dir", str(home),
            "--client-ca", str(home / pki.CA_CERT), "--log-level", "WARNING",
        ])  # fmt: skip
        port = eventually(lambda: read_port(port_file), timeout_s=30, what="the port file")
        hosts = {}
        for name, ns in (("ha", a), ("hb", b)):
            hosts[name] = spawn(ns.exec_args([
                sys.executable, "-m", "swarm.agent_host", "--connect", f"{ns.root_addr}:{port}",
                "--host-id", name, "--agents", "4", "--cert", str(home / pki.HOST_CERT),
                "--key", str(home / pki.HOST_KEY), "--ca", str(home / pki.CA_CERT),
            ]))  # fmt: skip
        creds = Credentials.resolve(home=home, env={})  # the admin token, client.pem
        with Client(f"{a.root_addr}:{port}", credentials=creds) as client:

            def both_active() -> bool:
                names = {h.host_id for h in client.status().hosts if h.state == "ACTIVE"}
                return names == {"ha", "hb"}

            eventually(both_active, timeout_s=30, what="both hosts joined over mTLS")
            futures = [client.submit("sleep", 500) for _ in range(32)]

            def busy_host() -> str | None:
                busy = [h.host_id for h in client.status().hosts if h.running]
                return busy[0] if busy else None

            # Whichever host runs tasks dies; the other, in its own namespace, finishes them.
            victim = eventually(busy_host, timeout_s=20, what="a host running tasks")
            if fault == "cut":  # its machine drops off the network; the process lives on
                {"ha": a, "hb": b}[victim].link_down()
            else:
                hosts[victim].send_signal(signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
            assert [f.result(timeout=60) for f in futures] == [500] * 32
            survivor = ({"ha", "hb"} - {victim}).pop()
            assert {h.host_id for h in client.status().hosts if h.state == "ACTIVE"} == {survivor}


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
