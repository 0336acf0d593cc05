"""Failure handling through real processes: hung hosts, poison tasks, lost messages, retries,
timeouts and cancellation. Every test checks the invariant: each accepted task has exactly one
final state and its client received exactly one result."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
from swarm.deploy.local import LocalSwarm
from swarm.v1 import task_pb2, types_pb2

from tests.helpers import eventually, local_swarm
from tests.raw_client import RawClient, spec

FAST = ["--heartbeat-interval", "0.1", "--lease", "0.3"]


def _state(c: LocalSwarm, host_id: str) -> int | None:
    return next((h.state for h in c.status().hosts if h.host_id == host_id), None)


def test_frozen_host_is_lost_within_the_lease_then_rejoins_and_works() -> None:
    with (
        local_swarm(hosts=2, agents_per_host=50, server_args=FAST) as c,
        RawClient(c.address) as client,
    ):
        ids = [f"s{i}" for i in range(400)]
        client.submit_ok([spec(i, "sleep", 100) for i in ids])
        eventually(lambda: all(h.running > 0 for h in c.status().hosts), 10, what="both hosts busy")
        c.stop_host(0)
        stopped = time.monotonic()
        eventually(lambda: _state(c, "h0") is None, 5, 0.005, what="h0 declared lost")
        detect_s = time.monotonic() - stopped
        assert detect_s < 0.3 + 0.3, f"lost after {detect_s:.3f} s; lease 0.3 s"
        client.wait_results(len(ids), 60)  # h0's work finished on h1
        c.cont_host(0)
        eventually(lambda: _state(c, "h0") == types_pb2.ACTIVE, 10, what="h0 rejoined")
        more = [f"m{i}" for i in range(400)]
        client.submit_ok([spec(i, "sleep", 20) for i in more])
        client.wait_results(len(ids) + len(more), 60)
        done = {h.host_id: h.tasks_done for h in c.status().hosts}
        assert done["h0"] > 0, done  # the new session of h0 took new work
        assert all(r.state == types_pb2.SUCCEEDED for r in client.results.values())
        client.assert_exactly_once(ids + more)


def test_crash_task_is_quarantined_after_k_hosts_while_others_complete() -> None:
    with (
        local_swarm(
            hosts=2, agents_per_host=20, restart=True, server_args=["--max-host-losses", "3"]
        ) as c,
        RawClient(c.address) as client,
    ):
        ids = [f"e{i}" for i in range(3000)]
        client.submit_ok([spec("poison", "crash"), *[spec(i, "sleep", 5) for i in ids]])
        results = client.wait_results(len(ids) + 1, 90)
        poison = results["poison"]
        assert poison.state == types_pb2.FAILED and poison.error.reason == types_pb2.HOST_LOST
        # The third host's exit reaches the orchestrator (its stream) before, at times, the
        # restarting thread polls it: wait for the count rather than read it at once.
        eventually(lambda: sum(c.restarts) >= 3, 10, what="three restarts")
        bad = [r for i, r in results.items() if i != "poison" and r.state != types_pb2.SUCCEEDED]
        assert not bad, bad[:3]
        client.assert_exactly_once(["poison", *ids])


def _faults(*rules: dict[str, object]) -> list[str]:
    return ["--faults", json.dumps(list(rules))]


def test_a_dropped_result_message_is_recovered_by_reconciliation() -> None:
    drop = {
        "method": "Connect",
        "direction": "in",
        "message": "results",
        "action": "drop",
        "after": 3,
    }
    with (
        local_swarm(hosts=2, agents_per_host=50, server_args=[*FAST, *_faults(drop)]) as c,
        RawClient(c.address) as client,
    ):
        ids = [f"t{i}" for i in range(2000)]
        for i in range(0, len(ids), 100):  # many small batches, so many result messages
            client.submit([spec(t, "echo", t.encode()) for t in ids[i : i + 100]])
        results = client.wait_results(len(ids), 30)
        assert all(results[t].output == t.encode() for t in ids)
        client.assert_exactly_once(ids)


def test_a_stream_broken_mid_batch_loses_and_doubles_nothing() -> None:
    cut = {
        "method": "Connect",
        "direction": "in",
        "message": "results",
        "action": "break",
        "after": 5,
    }
    with (
        local_swarm(hosts=2, agents_per_host=50, server_args=[*FAST, *_faults(cut)]) as c,
        RawClient(c.address) as client,
    ):
        ids = [f"t{i}" for i in range(2000)]
        for i in range(0, len(ids), 100):
            client.submit([spec(t, "sleep", 2) for t in ids[i : i + 100]])
        client.wait_results(len(ids), 30)
        client.assert_exactly_once(ids)
        c.wait_hosts(2)  # the cut host reconnected


def test_a_lost_submit_reply_then_a_retry_makes_one_task() -> None:
    lose = {"method": "Submit", "direction": "out", "action": "drop"}
    with local_swarm(hosts=1, agents_per_host=10, server_args=_faults(lose)) as c:
        request = task_pb2.SubmitRequest(tasks=[spec("once", "echo", b"1")])
        with pytest.raises(grpc.RpcError) as exc:
            c.stub.Submit(request, timeout=0.5)
        assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        reply = c.stub.Submit(request, timeout=5)  # the client retries after the lost reply
        assert list(reply.duplicates) == ["once"]
        done = c.stub.Wait(task_pb2.WaitRequest(task_ids=["once"], timeout_s=5))
        assert [r.output for r in done.results] == [b"1"]
        assert c.status().tasks.succeeded == 1


def test_retries_then_the_final_error_carries_the_remote_traceback() -> None:
    with (
        local_swarm(hosts=1, agents_per_host=10, modules=["tests.handlers_for_tests"]) as c,
        RawClient(c.address) as client,
    ):
        client.submit_ok(
            [
                spec("recovers", "flaky", b"3", max_retries=3),
                spec("gives-up", "fail", b"always", max_retries=2),
                spec("no-retry", "flaky", b"9", max_retries=5, non_retryable=["ValueError"]),
            ]
        )
        r = client.wait_results(3, 30)
        assert r["recovers"].state == types_pb2.SUCCEEDED and r["recovers"].output == b"3"
        assert r["recovers"].attempts == 3
        e = r["gives-up"]
        assert e.state == types_pb2.FAILED and e.attempts == 3
        assert e.error.type == "RuntimeError" and e.error.message == "always"
        assert "Traceback" in e.error.traceback and "raise RuntimeError" in e.error.traceback
        assert r["no-retry"].attempts == 1 and r["no-retry"].error.type == "ValueError"
        client.assert_exactly_once(["recovers", "gives-up", "no-retry"])


def test_timeouts_and_cancellation_reach_the_handler(tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    with (
        local_swarm(hosts=1, agents_per_host=10, modules=["tests.handlers_for_tests"]) as c,
        RawClient(c.address) as client,
    ):
        client.submit_ok(
            [
                spec("slow", "sleep", 5000, timeout_s=0.2),
                spec("victim", "cancellable", str(marker).encode()),
                spec("after-victim", "echo", depends_on=["victim"]),
                spec("nobody", "unserved-kind", schedule_timeout_s=0.3),
            ]
        )
        eventually(
            lambda: (
                c.stub.GetTasks(task_pb2.GetTasksRequest(task_ids=["victim"])).tasks[0].state
                == types_pb2.RUNNING
            ),
            10,
        )
        reply = c.stub.Cancel(task_pb2.CancelRequest(task_ids=["victim"]))
        assert list(reply.states) == [types_pb2.CANCELLED]
        r = client.wait_results(4, 30)
        assert r["slow"].state == types_pb2.FAILED and r["slow"].error.reason == types_pb2.TIMEOUT
        assert r["victim"].state == types_pb2.CANCELLED
        assert r["after-victim"].error.reason == types_pb2.DEPENDENCY_FAILED
        assert r["nobody"].error.reason == types_pb2.SCHEDULE_TIMEOUT
        eventually(marker.exists, 10, what="CancelledError delivered to the handler")
        assert marker.read_text() == "victim"
        client.assert_exactly_once(["slow", "victim", "after-victim", "nobody"])
