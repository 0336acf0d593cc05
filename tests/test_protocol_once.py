"""Exactly once on the wire (issue 9): reopen + resubmit, a second submitter, one content per
id, per-task cancel answers, and how a Session stream ends when it is taken over."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import grpc
import pytest
from swarm.deploy.inproc import InProcessSwarm
from swarm.v1 import task_pb2, types_pb2

from tests.helpers import eventually
from tests.raw_client import RawClient, spec


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=1, agents_per_host=20) as c:
        yield c


def test_reopen_then_resubmit_delivers_each_result_once_on_the_new_stream(
    cluster: InProcessSwarm,
) -> None:
    ids = [f"once-{i}" for i in range(5)]
    with RawClient(cluster.address, "reopener", ack=False) as client:
        client.submit_ok([spec(i, "echo", i) for i in ids])
        client.wait_results(5)
        client.disconnect()  # without an ack
        client.connect()
        eventually(lambda: all(client.deliveries[i] == 2 for i in ids), what="the 5 again")
        before = len(client.replies)
        client.submit_ok([spec(i, "echo", i) for i in ids])  # what it "has no result for"
        reply = client.replies[before]
        assert reply.accepted == 0 and sorted(reply.duplicates) == ids
        # A marker submitted after them finishes after them: had the resubmission queued the 5
        # results again, they would have been written before the marker's.
        client.submit_ok([spec("once-marker", "echo", "m")])
        client.wait_results(6)
        assert {i: client.deliveries[i] for i in ids} == dict.fromkeys(ids, 2)


def test_a_second_submitter_of_a_running_task_gets_its_result(cluster: InProcessSwarm) -> None:
    with RawClient(cluster.address, "first") as first, RawClient(cluster.address, "second") as two:
        first.submit_ok([spec("shared", "sleep", 300)])
        two.submit_ok([spec("shared", "sleep", 300)])
        assert list(two.replies[-1].duplicates) == ["shared"]
        (info,) = cluster.stub.GetTasks(task_pb2.GetTasksRequest(task_ids=["shared"])).tasks
        assert info.state in (types_pb2.ASSIGNED, types_pb2.RUNNING)  # joined while it ran
        # A unary submitter of the same id waits for it with Wait.
        reply = cluster.stub.Submit(task_pb2.SubmitRequest(tasks=[spec("shared", "sleep", 300)]))
        assert list(reply.duplicates) == ["shared"]
        done = cluster.stub.Wait(task_pb2.WaitRequest(task_ids=["shared"], timeout_s=10))
        assert [r.output for r in done.results] == [b"300"]
        for client in (first, two):
            assert client.wait_results(1)["shared"].output == b"300"
        first.assert_exactly_once(["shared"])
        two.assert_exactly_once(["shared"])


def test_a_known_id_with_other_content_is_refused_already_exists(
    cluster: InProcessSwarm,
) -> None:
    with RawClient(cluster.address, "content") as client:
        client.submit_ok([spec("same-id", "echo", "a")])
        client.submit([spec("fresh-id", "echo", "f"), spec("same-id", "echo", "b")])
        eventually(lambda: len(client.replies) == 2, what="the reply")
        reply = client.replies[1]
        assert reply.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
        assert reply.field == "tasks[1].payload" and "same-id" in reply.message
        client.wait_results(1)
        assert client.results["same-id"].output == b'"a"'
    with pytest.raises(grpc.RpcError) as exc:
        cluster.stub.Submit(task_pb2.SubmitRequest(tasks=[spec("same-id", "sleep", "a")]))
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "tasks[0].kind" in (exc.value.details() or "")
    with pytest.raises(grpc.RpcError) as exc:
        cluster.stub.GetTasks(task_pb2.GetTasksRequest(task_ids=["fresh-id"]))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND  # the whole batch was refused


def test_cancel_answers_per_task_and_cancels_the_known_ones(cluster: InProcessSwarm) -> None:
    cluster.stub.Submit(task_pb2.SubmitRequest(tasks=[spec("to-cancel", "sleep", 30_000)]))
    reply = cluster.stub.Cancel(task_pb2.CancelRequest(task_ids=["to-cancel", "no-such-task"]))
    assert list(reply.states) == [types_pb2.CANCELLED, types_pb2.TASK_STATE_UNSPECIFIED]
    (info,) = cluster.stub.GetTasks(task_pb2.GetTasksRequest(task_ids=["to-cancel"])).tasks
    assert info.state == types_pb2.CANCELLED


def test_a_session_taken_over_by_a_newer_one_ends_aborted(cluster: InProcessSwarm) -> None:
    def open_stream() -> tuple[grpc.Future, queue.Queue[task_pb2.ClientMessage | None]]:
        out: queue.Queue[task_pb2.ClientMessage | None] = queue.Queue()
        out.put(task_pb2.ClientMessage(open=task_pb2.OpenSession(client_id="taken")))
        call = cluster.stub.Session(iter(out.get, None))
        assert next(call).WhichOneof("msg") == "opened"
        return call, out

    old, old_out = open_stream()
    new, new_out = open_stream()
    with pytest.raises(grpc.RpcError) as exc:
        next(old)
    assert exc.value.code() == grpc.StatusCode.ABORTED
    assert "taken over" in (exc.value.details() or "")
    for call, out in ((old, old_out), (new, new_out)):
        out.put(None)
        call.cancel()
