"""Issue 13: `swarm get | wait | drain | top` and their SDK methods against a real cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from swarm.client import Client, NotFound
from swarm.deploy.inproc import InProcessSwarm

from tests.helpers import eventually, run_cli


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=2, agents_per_host=10) as c:
        yield c


def swarm(
    capsys: pytest.CaptureFixture[str], cluster: InProcessSwarm, *argv: str
) -> tuple[int, str, str]:
    return run_cli(capsys, cluster.address, *argv)


def known(client: Client, task_id: str) -> None:
    """Until the orchestrator has the task: the session sends submissions in batches."""

    def check() -> bool:
        try:
            return bool(client.get(task_id))
        except NotFound:
            return False

    eventually(check, what=f"{task_id} submitted")


def test_sdk_get_wait_by_id(cluster: InProcessSwarm) -> None:
    with Client(cluster.address) as client:
        client.submit("sleep", b"200", id="sdk-slow")
        known(client, "sdk-slow")
        (info,) = client.get("sdk-slow")
        assert info.kind == "sleep" and not info.final
        (done,) = client.wait("sdk-slow", timeout=30)
        assert done.state == "SUCCEEDED" and done.output == b"200" and done.host_id
        (again,) = client.get("sdk-slow")
        assert again.final and again.attempts == 1
        with pytest.raises(NotFound):
            client.get("sdk-unknown")


def test_get_and_wait_commands(cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]) -> None:
    with Client(cluster.address) as client:
        client.submit("echo", b"hello", id="cli-ok").result(timeout=30)
        bad = client.submit("fail", b"broken", id="cli-bad")
        with pytest.raises(Exception, match="broken"):
            bad.result(timeout=30)
        client.submit("sleep", b"60000", id="cli-long")
        known(client, "cli-long")
    code, out, _ = swarm(capsys, cluster, "get", "cli-ok")
    assert code == 0 and "SUCCEEDED" in out and "output: hello" in out
    code, out, _ = swarm(capsys, cluster, "get", "cli-bad", "--json")
    info = json.loads(out)
    assert code == 1 and info["state"] == "FAILED" and "RuntimeError" in info["traceback"]
    code, out, _ = swarm(capsys, cluster, "wait", "cli-ok", "cli-bad")
    assert code == 1 and "cli-ok  SUCCEEDED  echo" in out and "cli-bad  FAILED  fail" in out
    code, _, err = swarm(capsys, cluster, "wait", "cli-long", "--timeout", "0.2")
    assert code == 4 and "timed out" in err
    code, out, _ = swarm(capsys, cluster, "wait", "cli-ok", "cli-long", "--any")
    assert code == 0 and "cli-ok" in out
    code, _, err = swarm(capsys, cluster, "get", "nobody")
    assert code == 1 and "nobody" in err
    swarm(capsys, cluster, "cancel", "cli-long")


def test_top_prints_frames(cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = swarm(capsys, cluster, "top", "--count", "2", "--interval", "0.05")
    assert code == 0 and out.count("throughput") == 2 and "h0" in out


def test_drain_command(cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]) -> None:
    # Last in this module: it takes a host away.
    code, out, _ = swarm(capsys, cluster, "drain", "h1", "--grace", "1")
    assert code == 0 and "h1" in out
    eventually(lambda: [h.host_id for h in cluster.active_hosts()] == ["h0"], what="h1 gone")
    code, _, err = swarm(capsys, cluster, "drain", "nobody")
    assert code == 1 and "nobody" in err
