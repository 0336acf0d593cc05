"""Issue 13: Prometheus metrics from a real orchestrator under load, scraped over real HTTP.

Values must move while work runs (throughput, histograms, per-host load), unserved kinds must
show, and with authentication on the port must refuse anything but an admin token.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from swarm.client import Client
from swarm.common import pki
from swarm.deploy.inproc import InProcessSwarm
from swarm.server.config import OrchestratorConfig
from swarm.server.journal_sqlite import SqliteJournal

from tests.helpers import eventually, local_swarm

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def scrape(swarm: InProcessSwarm) -> Samples:
    status, body = get(swarm.metrics_url + "metrics")
    assert status == 200
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(swarm: InProcessSwarm, ok: Callable[[Samples], bool], what: str) -> Samples:
    def check() -> Samples | None:
        samples = scrape(swarm)
        return samples if ok(samples) else None

    return eventually(check, what=what)


@pytest.fixture(scope="module")
def swarm() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=2, agents_per_host=20, metrics_port=0) as s:
        yield s


def test_metrics_move_under_load(swarm: InProcessSwarm) -> None:
    before = scrape(swarm)
    assert value(before, "swarm_hosts", state="active") == 2
    assert value(before, "swarm_host_agents", host="h0") == 20
    with Client(swarm.address) as client:
        slow = client.map("sleep", [b"1000"] * 30)  # holds agents: in flight while it sleeps

        def out_there(s: Samples) -> float:
            return sum(value(s, "swarm_tasks", state=st) for st in ("assigned", "running"))

        during = scrape_until(swarm, lambda s: out_there(s) == 30, "tasks in flight")
        held = value(during, "swarm_host_inflight_tasks", host="h0")
        assert held + value(during, "swarm_host_inflight_tasks", host="h1") == 30
        kinds = (
            value(during, "swarm_kind_tasks", kind="sleep", state=st)
            for st in ("assigned", "running")
        )
        assert sum(kinds) == 30
        fast = client.map("echo", [b"x"] * 2000)
        client.gather(slow + fast)
        failing = client.submit("fail", b"on purpose", max_retries=1)
        with pytest.raises(Exception, match="on purpose"):
            failing.result(timeout=30)
        unserved = client.submit("no-such-kind", b"")
        after = scrape_until(
            swarm, lambda s: value(s, "swarm_queue_depth", kind="no-such-kind") == 1, "unserved"
        )
        client.cancel(unserved)
    done = value(after, "swarm_tasks_finished_total", state="succeeded")
    assert done - value(before, "swarm_tasks_finished_total", state="succeeded") >= 2030
    assert value(after, "swarm_tasks_finished_total", state="failed") >= 1
    assert value(after, "swarm_task_retries_total") >= 1
    assert value(after, "swarm_queue_unserved", kind="no-such-kind") == 1
    for name in ("swarm_task_queue_wait_seconds", "swarm_task_run_seconds"):
        assert value(after, f"{name}_count") > value(before, f"{name}_count")
    assert value(after, "swarm_task_latency_seconds_count") > 0
    h0 = value(after, "swarm_host_tasks_done", host="h0")
    h1 = value(after, "swarm_host_tasks_done", host="h1")
    assert h0 + h1 >= 2030
    assert value(after, "swarm_uptime_seconds") > value(before, "swarm_uptime_seconds")


def test_dashboard_json_and_task_lookup(swarm: InProcessSwarm) -> None:
    with Client(swarm.address) as client:
        fut = client.submit("fail", b"look me up", id="lookup-me")
        with pytest.raises(Exception, match="look me up"):
            fut.result(timeout=30)
    status, body = get(swarm.metrics_url + "api/task?id=lookup-me")
    assert status == 200
    task = json.loads(body)
    assert task["state"] == "failed" and task["attempts"] == 1
    assert task["host"] in ("h0", "h1")
    assert "look me up" in task["error"]["message"] and "RuntimeError" in task["error"]["traceback"]
    assert get(swarm.metrics_url + "api/task?id=nobody")[0] == 404
    state = json.loads(get(swarm.metrics_url + "api/state")[1])
    assert {h["id"] for h in state["hosts"]} == {"h0", "h1"}
    assert any(f["id"] == "lookup-me" for f in state["failures"])
    assert get(swarm.metrics_url)[0] == 200  # the page
    assert get(swarm.metrics_url + "healthz") == (200, b"ok\n")


def test_recent_failures_outlive_retention() -> None:
    """Under load retention evicts a finished task within seconds (W2: 100,000 retained at
    10,000 tasks/s); the dashboard keeps the failures it has seen, and finds one that
    successes followed before the page asked."""
    config = OrchestratorConfig(max_retained=200)
    with InProcessSwarm(hosts=1, agents_per_host=50, config=config, metrics_port=0) as s:

        def failures() -> list[str]:
            state = json.loads(get(s.metrics_url + "api/state")[1])
            return [f["id"] for f in state["failures"]]

        with Client(s.address) as client:
            early = client.submit("fail", b"early", id="early-failure", max_retries=0)
            client.gather([early], return_exceptions=True)
            assert failures() == ["early-failure"]
            client.gather(client.map("echo", [b"x"] * 1000))  # evicts it
            assert get(s.metrics_url + "api/task?id=early-failure")[0] == 404
            late = client.submit("fail", b"late", id="late-failure", max_retries=0)
            client.gather([late], return_exceptions=True)
            client.gather(client.map("echo", [b"x"] * 150))  # still retained, far from the end
        got = failures()
    assert got == ["late-failure", "early-failure"]


def test_journal_families_with_a_journal_and_none_without(
    tmp_path: Path, swarm: InProcessSwarm
) -> None:
    assert not [k for k in scrape(swarm) if k[0].startswith("swarm_journal")]
    journal = SqliteJournal(tmp_path / "journal")
    with InProcessSwarm(hosts=1, agents_per_host=10, journal=journal, metrics_port=0) as s:
        with Client(s.address) as client:
            client.gather(client.map("echo", [b"x"] * 50))
        after = scrape_until(
            s, lambda m: value(m, "swarm_journal_records_total") >= 50, "journal records"
        )
    assert value(after, "swarm_journal_commits_total") >= 1
    assert ("swarm_journal_pending_batches", ()) in after


def test_the_port_wants_an_admin_token_when_auth_is_on(tmp_path: Path) -> None:
    home = tmp_path / "state"
    pki.init_state(home)
    admin = (home / pki.ADMIN_TOKEN).read_text().strip()
    host = (home / pki.HOST_TOKEN).read_text().strip()
    with InProcessSwarm.secured(home, hosts=1, agents_per_host=2, metrics_port=0) as s:
        url = s.metrics_url
        assert url.startswith("https://")  # TLS on: the token never crosses in clear
        ctx = ssl.create_default_context(cafile=str(home / pki.CA_CERT))
        ctx.check_hostname = False
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))
        urllib.request.install_opener(opener)
        try:
            assert get(url + "metrics")[0] == 401
            assert get(url + "metrics", "wrong")[0] == 401
            assert get(url + "api/state", host)[0] == 403
            status, body = get(url + "metrics", admin)
            assert status == 200 and b"swarm_hosts" in body
            assert get(url)[0] == 200  # the page itself holds no data: it asks for the token
        finally:
            urllib.request.install_opener(urllib.request.build_opener())


def test_a_lost_host_shows_as_an_event_and_in_the_counters(tmp_path: Path) -> None:
    """Real processes, the flags as a user passes them: `--metrics-port 0` and its port file."""
    port_file = tmp_path / "metrics-port"
    args = ["--metrics-port", "0", "--metrics-port-file", str(port_file)]
    with local_swarm(hosts=2, agents_per_host=4, server_args=args) as c:
        c.wait_hosts(2)
        base = f"http://127.0.0.1:{int(port_file.read_text())}/"
        c.kill_host(0)

        def lost() -> dict[str, Any] | None:
            state = json.loads(get(base + "api/state")[1])
            return state if state["losses"] else None

        state = eventually(lost, what="the loss event")
        (event,) = state["losses"]
        assert event["host_id"] == "h0" and event["reason"]
        assert 0 <= event["silent_s"] < 10
        _, body = get(base + "metrics")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert families["swarm_hosts_lost"].samples[0].value == 1
        detection = families["swarm_host_loss_detection_seconds"]
        assert any(s.name.endswith("_count") and s.value == 1 for s in detection.samples)
