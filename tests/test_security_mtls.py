"""mTLS (issue 11): with --client-ca every peer presents a certificate from the swarm's CA, and
a host may join by its certificate alone, bound to the host id its common name allows. Clients
present the client certificate `swarm certs init` made, picked up from the state directory,
and their token decides what they may do; a client certificate is no host credential."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from swarm.cli.main import main as swarm_main
from swarm.common import pki
from swarm.common.credentials import Credentials
from swarm.deploy.inproc import InProcessSwarm
from swarm.server.security import ServerSecurity
from swarm.v1 import task_pb2, task_pb2_grpc

from tests.certs import sdk_and_cli_work_from
from tests.helpers import eventually
from tests.raw_client import spec
from tests.wire import join_host


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("swarm-mtls") / "state"
    pki.init_state(d)
    assert swarm_main(["certs", "--dir", str(d), "host", "gpu-2"]) == 0
    return d


@pytest.fixture(scope="module")
def swarm(home: Path) -> Iterator[InProcessSwarm]:
    security = ServerSecurity.resolve(home=str(home), client_ca=str(home / pki.CA_CERT), env={})
    full = Credentials.resolve(home=home, role="host", env={})
    cert_only = Credentials(ca=full.ca, cert=full.cert, key=full.key)
    with InProcessSwarm(
        hosts=1,
        agents_per_host=2,
        security=security,
        host_credentials=cert_only,  # no join token: the certificate is the credential
        credentials=admin(home),
    ) as s:
        yield s


def admin(home: Path) -> Credentials:
    """The admin token and the client certificate, both found in the state directory."""
    creds = Credentials.resolve(home=home, env={})
    assert creds.cert == (home / pki.CLIENT_CERT).read_bytes()
    return creds


def join(swarm: InProcessSwarm, creds: Credentials, host_id: str) -> Any:
    return join_host(swarm.address, creds, host_id)


def test_hosts_join_by_certificate_and_run_tasks(swarm: InProcessSwarm, home: Path) -> None:
    assert [h.host_id for h in swarm.active_hosts()] == ["h0"]
    creds = admin(home)
    stub = creds.bind(task_pb2_grpc.TaskServiceStub(creds.channel(swarm.address)))
    stub.Submit(task_pb2.SubmitRequest(tasks=[spec("m1", "echo", 1)]))
    eventually(
        lambda: stub.GetTasks(task_pb2.GetTasksRequest(task_ids=["m1"])).tasks[0].result.output
    )


def test_a_pinned_certificate_joins_only_as_its_host_id(swarm: InProcessSwarm, home: Path) -> None:
    ca = (home / pki.CA_CERT).read_bytes()
    pinned = Credentials(
        ca=ca,
        cert=(home / "host-gpu-2.pem").read_bytes(),
        key=(home / "host-gpu-2.key").read_bytes(),
    )
    code, details = join(swarm, pinned, "h0")
    assert code is grpc.StatusCode.PERMISSION_DENIED and "gpu-2" in details
    assert join(swarm, pinned, "gpu-2")[0] == "welcome"
    # The shared certificate may claim any free id, but not one bound to another credential.
    shared = Credentials(
        ca=ca, cert=(home / pki.HOST_CERT).read_bytes(), key=(home / pki.HOST_KEY).read_bytes()
    )
    code, details = join(swarm, shared, "gpu-2")
    assert code is grpc.StatusCode.PERMISSION_DENIED and "gpu-2" in details


def test_a_peer_without_a_certificate_fails_the_handshake(
    swarm: InProcessSwarm, home: Path
) -> None:
    creds = Credentials(
        ca=(home / pki.CA_CERT).read_bytes(), token=(home / pki.ADMIN_TOKEN).read_text().strip()
    )
    stub = creds.bind(task_pb2_grpc.TaskServiceStub(creds.channel(swarm.address)))
    with pytest.raises(grpc.RpcError) as info:
        stub.GetStatus(task_pb2.GetStatusRequest(), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_clients_pick_their_certificate_up_from_swarm_home(
    swarm: InProcessSwarm, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk_and_cli_work_from(home, swarm.address, monkeypatch)


def test_a_client_certificate_cannot_join_as_a_host(swarm: InProcessSwarm, home: Path) -> None:
    client_cert = Credentials(
        ca=(home / pki.CA_CERT).read_bytes(),
        cert=(home / pki.CLIENT_CERT).read_bytes(),
        key=(home / pki.CLIENT_KEY).read_bytes(),
    )
    code, details = join(swarm, client_cert, "sneaky")
    assert code is grpc.StatusCode.PERMISSION_DENIED and "client certificate" in details
    assert "sneaky" not in {h.host_id for h in swarm.status().hosts}
