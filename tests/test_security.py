"""Issue 11: TLS, tokens, tenant isolation and host credentials, over real gRPC with real
certificates (made here by swarm.common.pki with `cryptography`) and real token files."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from swarm.cli.main import main as swarm_main
from swarm.client import Client, Unavailable
from swarm.common import pki
from swarm.common.credentials import Credentials
from swarm.deploy.inproc import InProcessSwarm
from swarm.server.app import Server
from swarm.server.keys import NS_SEP
from swarm.server.security import InsecureBindError
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

from tests.certs import add_token, sdk_and_cli_work_from
from tests.helpers import ROOT, eventually
from tests.raw_client import spec
from tests.wire import join_host

A, B = "tenant-a", "tenant-b"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("swarm-home") / "state"
    pki.init_state(d)
    return d


@pytest.fixture(scope="module")
def tokens(home: Path) -> dict[str, str]:
    return {
        A: add_token(home, "--namespace", A),
        B: add_token(home, "--namespace", B),
        "admin": (home / pki.ADMIN_TOKEN).read_text().strip(),
        "host": (home / pki.HOST_TOKEN).read_text().strip(),
        "host2": add_token(home, "--role", "host"),
        "gpu": add_token(home, "--role", "host", "--host-id", "gpu-1"),
    }


@pytest.fixture(scope="module")
def swarm(home: Path, tokens: dict[str, str]) -> Iterator[InProcessSwarm]:
    with InProcessSwarm.secured(home, hosts=1, agents_per_host=4) as s:
        yield s


def stub(swarm: InProcessSwarm, home: Path, token: str | None) -> task_pb2_grpc.TaskServiceStub:
    creds = Credentials(ca=(home / pki.CA_CERT).read_bytes(), token=token)
    return creds.bind(task_pb2_grpc.TaskServiceStub(creds.channel(swarm.address)))


def code_of(call: Any, *args: Any, **kw: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10, **kw)
    return info.value.code(), info.value.details() or ""


def session(s: task_pb2_grpc.TaskServiceStub, client_id: str, *more: task_pb2.ClientMessage) -> Any:
    opening = task_pb2.ClientMessage(open=task_pb2.OpenSession(client_id=client_id))
    return s.Session(iter([opening, *more]), timeout=10)


def assert_stream_refuses(stream: Any, field: str) -> None:
    """The Session opens, then ends INVALID_ARGUMENT naming `field`."""
    assert next(stream).WhichOneof("msg") == "opened"
    with pytest.raises(grpc.RpcError) as ended:
        next(stream)
    assert ended.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (ended.value.details() or "").startswith(field)


# ---- authentication ----


def test_without_a_token_every_rpc_but_health_is_unauthenticated(
    swarm: InProcessSwarm, home: Path
) -> None:
    anon = stub(swarm, home, None)
    for call, request in (
        (anon.GetStatus, task_pb2.GetStatusRequest()),
        (anon.Submit, task_pb2.SubmitRequest(tasks=[spec("x", "echo", 1)])),
        (anon.GetTasks, task_pb2.GetTasksRequest(task_ids=["x"])),
    ):
        assert code_of(call, request)[0] is grpc.StatusCode.UNAUTHENTICATED
    assert code_of(lambda **kw: list(session(anon, "c")))[0] is grpc.StatusCode.UNAUTHENTICATED
    channel = Credentials(ca=(home / pki.CA_CERT).read_bytes()).channel(swarm.address)
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    with pytest.raises(grpc.RpcError) as info:
        list(refl.ServerReflectionInfo(iter([ask]), timeout=10))
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    code, _ = code_of(
        stub(swarm, home, "swarm_not-a-token-at-all").GetStatus, task_pb2.GetStatusRequest()
    )
    assert code is grpc.StatusCode.UNAUTHENTICATED


def test_a_wrong_ca_fails_the_handshake(swarm: InProcessSwarm) -> None:
    other = Credentials(ca=pki.make_ca("not the swarm's CA").cert, token="whatever-token-123")
    s = other.bind(task_pb2_grpc.TaskServiceStub(other.channel(swarm.address)))
    with pytest.raises(grpc.RpcError) as info:
        s.GetStatus(task_pb2.GetStatusRequest(), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    plain = task_pb2_grpc.TaskServiceStub(grpc.insecure_channel(swarm.address))
    with pytest.raises(grpc.RpcError) as info:  # plaintext to a TLS port: no answer either
        plain.GetStatus(task_pb2.GetStatusRequest(), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_the_sdk_says_why_a_tls_connection_fails(swarm: InProcessSwarm, home: Path) -> None:
    def connect(creds: Credentials) -> None:
        with Client(swarm.address, credentials=creds, connect_timeout_s=1):
            raise AssertionError("connected")

    wrong_ca = Credentials(ca=pki.make_ca("not the swarm's CA").cert, token="whatever-token-123")
    with pytest.raises(Unavailable, match=r"does not chain to the CA bundle.*SWARM_CA"):
        connect(wrong_ca)
    wrong_name = Credentials(ca=(home / pki.CA_CERT).read_bytes(), server_name="elsewhere.test")
    with pytest.raises(Unavailable, match=r"does not list the address.*--tls-server-name"):
        connect(wrong_name)


def test_the_sdk_runs_tasks_over_tls_with_a_token(
    swarm: InProcessSwarm, home: Path, tokens: dict[str, str]
) -> None:
    creds = Credentials(ca=(home / pki.CA_CERT).read_bytes(), token=tokens[A])
    with Client(swarm.address, credentials=creds) as client:
        assert client.submit("echo", {"n": 1}).result(timeout=10) == {"n": 1}
        assert client.status().hosts  # hosts are listed to every client


# ---- isolation between namespaces ----


def test_tenant_b_cannot_reach_tenant_a_by_any_rpc(
    swarm: InProcessSwarm, home: Path, tokens: dict[str, str]
) -> None:
    a, b, admin = (stub(swarm, home, tokens[k]) for k in (A, B, "admin"))
    a.Submit(task_pb2.SubmitRequest(client_id="a-client", tasks=[spec("t1", "echo", 7)]))
    picked = a.Submit(task_pb2.SubmitRequest(tasks=[spec("", "echo", 1)])).task_ids[0]
    assert len(picked) == 2 + 32 and int(picked[2:], 16) >= 0  # "s-" + 128 random bits
    eventually(lambda: a.GetTasks(task_pb2.GetTasksRequest(task_ids=["t1"])).tasks[0].result.output)
    escape = f"{A}{NS_SEP}t1"
    for who in (b, admin):  # admin's namespace is default: the separator escape from there
        for call, req in (
            (who.GetTasks, task_pb2.GetTasksRequest(task_ids=["t1"])),
            (who.Wait, task_pb2.WaitRequest(task_ids=["t1"], timeout_s=1)),
            (who.Cancel, task_pb2.CancelRequest(task_ids=["t1"])),
        ):
            if call is who.Cancel:  # answered per task: tenant A's t1 is unknown here
                states = who.Cancel(req, timeout=10).states
                assert list(states) == [types_pb2.TASK_STATE_UNSPECIFIED]
            else:
                assert code_of(call, req)[0] is grpc.StatusCode.NOT_FOUND
            del req.task_ids[:]
            req.task_ids.append(escape)
            assert code_of(call, req)[0] is grpc.StatusCode.INVALID_ARGUMENT
            req.namespace = A
            code, details = code_of(call, req)
            assert code is grpc.StatusCode.PERMISSION_DENIED and A in details
        dep = spec("d", "echo", 1, depends_on=[escape])
        assert code_of(who.Submit, task_pb2.SubmitRequest(tasks=[dep]))[0] is (
            grpc.StatusCode.INVALID_ARGUMENT
        )
        dep = spec("d", "echo", 1, depends_on=["t1"])  # resolves in the caller's namespace
        assert code_of(who.Submit, task_pb2.SubmitRequest(tasks=[dep]))[0] in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION,
        )
    # A Session under A's client id: refused, naming it; a stream cancel by escape: ignored.
    code, details = code_of(lambda **kw: list(session(b, "a-client")))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "a-client" in details
    code, _ = code_of(
        b.Submit, task_pb2.SubmitRequest(client_id="a-client", tasks=[spec("z", "echo", 1)])
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    # A task of A that waits (no host runs its kind), cancelled by escape on a stream: an id
    # with the separator is invalid, so the stream ends INVALID_ARGUMENT and nothing applies.
    a.Submit(task_pb2.SubmitRequest(tasks=[spec("slow", "no-such-kind", 1)]))
    escape_slow = f"{A}{NS_SEP}slow"
    cancel = task_pb2.ClientMessage(cancel=task_pb2.CancelRequest(task_ids=[escape_slow]))
    assert_stream_refuses(session(admin, "admin-client", cancel), "cancel.task_ids[0]")
    state = a.GetTasks(task_pb2.GetTasksRequest(task_ids=["slow"])).tasks[0].state
    assert state == types_pb2.QUEUED
    # An ack by escape (which would drop A's result) ends the stream the same way.
    ack = task_pb2.ClientMessage(ack=task_pb2.AckBatch(task_ids=[escape]))
    assert_stream_refuses(session(b, "b-client", ack), "ack.task_ids[0]")
    # GetStatus: B sees no client of A; the admin sees every client.
    assert "a-client" not in {c.client_id for c in b.GetStatus(task_pb2.GetStatusRequest()).clients}
    assert "a-client" in {c.client_id for c in a.GetStatus(task_pb2.GetStatusRequest()).clients}
    assert "a-client" in {c.client_id for c in admin.GetStatus(task_pb2.GetStatusRequest()).clients}


def test_drain_host_needs_an_admin(
    swarm: InProcessSwarm, home: Path, tokens: dict[str, str]
) -> None:
    code, _ = code_of(
        stub(swarm, home, tokens[B]).DrainHost, task_pb2.DrainHostRequest(host_id="h0")
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(
        stub(swarm, home, tokens["admin"]).DrainHost, task_pb2.DrainHostRequest(host_id="nobody")
    )
    assert code is grpc.StatusCode.NOT_FOUND  # allowed through; no such host


# ---- hosts ----


def join(swarm: InProcessSwarm, home: Path, token: str | None, host_id: str) -> Any:
    return join_host(
        swarm.address, Credentials(ca=(home / pki.CA_CERT).read_bytes(), token=token), host_id
    )


def test_a_host_without_credentials_cannot_join(
    swarm: InProcessSwarm, home: Path, tokens: dict[str, str]
) -> None:
    assert join(swarm, home, None, "intruder")[0] is grpc.StatusCode.UNAUTHENTICATED
    code, _ = join(swarm, home, tokens[A], "intruder")  # a client token is no host credential
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "intruder" not in {h.host_id for h in swarm.status().hosts}


def test_a_host_cannot_take_over_another_hosts_id(
    swarm: InProcessSwarm, home: Path, tokens: dict[str, str]
) -> None:
    code, details = join(swarm, home, tokens["host2"], "h0")  # h0 joined with the join token
    assert code is grpc.StatusCode.PERMISSION_DENIED and "h0" in details
    code, details = join(swarm, home, tokens["gpu"], "h0")  # pinned to gpu-1
    assert code is grpc.StatusCode.PERMISSION_DENIED and "gpu-1" in details
    assert join(swarm, home, tokens["gpu"], "gpu-1")[0] == "welcome"
    assert join(swarm, home, tokens["gpu"], "gpu-1")[0] == "welcome"  # reconnects as itself
    # The real h0 was never lost; gpu-1 goes once its streams end.
    eventually(lambda: [h.host_id for h in swarm.active_hosts()] == ["h0"])


# ---- rotation, defaults, the state directory ----


def test_a_revoked_token_stops_working_after_a_reload(swarm: InProcessSwarm, home: Path) -> None:
    token = add_token(home, "--namespace", "tenant-c")
    s = stub(swarm, home, token)
    eventually(lambda: _works(s), what="the new token is accepted")
    swarm_main(["certs", "--dir", str(home), "revoke", token[-8:]])
    eventually(lambda: not _works(s), what="the revoked token is refused")
    assert code_of(s.GetStatus, task_pb2.GetStatusRequest())[0] is grpc.StatusCode.UNAUTHENTICATED


def _works(s: task_pb2_grpc.TaskServiceStub) -> bool:
    try:
        s.GetStatus(task_pb2.GetStatusRequest(), timeout=5)
    except grpc.RpcError as exc:
        assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
        return False
    return True


def test_the_state_directory_is_owner_only(home: Path) -> None:
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for f in home.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_up_refuses_a_public_bind_without_tls(capsys: pytest.CaptureFixture[str]) -> None:
    assert swarm_main(["up", "--bind", "0.0.0.0", "--hosts", "0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in err
    assert "swarm certs init" in err and "--insecure-i-know-what-i-am-doing" in err
    proc = subprocess.run(
        [sys.executable, "-m", "swarm.server", "--bind", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2 and "without TLS and authentication" in proc.stderr


def test_the_server_itself_refuses_a_public_bind() -> None:
    async def start() -> None:
        server = Server(bind="0.0.0.0", port=0)
        with pytest.raises(InsecureBindError, match="TLS and authentication"):
            await server.start()

    asyncio.run(start())


def test_the_sdk_and_the_cli_pick_credentials_up_from_swarm_home(
    swarm: InProcessSwarm, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk_and_cli_work_from(home, swarm.address, monkeypatch)
    monkeypatch.delenv("SWARM_HOME")
    monkeypatch.setenv("SWARM_CA", str(home / pki.CA_CERT))
    monkeypatch.setenv("SWARM_TOKEN_FILE", str(home / pki.ADMIN_TOKEN))
    assert swarm_main(["status", "--connect", swarm.address]) == 0


def test_swarm_up_serves_tls_and_tokens_beyond_loopback_from_a_state_dir(home: Path) -> None:
    # Real processes: the orchestrator bound to 0.0.0.0, a host joining with the join token,
    # the supervisor's own status channel with the admin token, all from --state-dir.
    argv = ["up", "--bind", "0.0.0.0", "--port", "0", "--hosts", "1", "--agents-per-host", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarm.cli.main", *argv, "--state-dir", str(home)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once every host is connected
        assert line.startswith("swarm listening on "), line
        address = line.split()[3]
        with Client(address, credentials=Credentials.resolve(home=home, env={})) as client:
            assert client.submit("echo", 3).result(timeout=20) == 3
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        if proc.stdout is not None:
            proc.stdout.close()
