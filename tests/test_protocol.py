"""The wire contract: generated code is current, standard services answer, bad input is refused
with the field named and changes nothing."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from swarm.deploy.inproc import InProcessSwarm
from swarm.v1 import host_pb2, host_pb2_grpc, task_pb2, types_pb2

from tests.helpers import eventually

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "protos" / "swarm" / "v1"


def test_generated_code_is_current(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--out", str(tmp_path)], check=True
    )
    fresh = sorted(p.name for p in (tmp_path / "swarm" / "v1").iterdir())
    checked_in = sorted(p.name for p in GENERATED.iterdir() if "_pb2" in p.name)
    assert fresh == checked_in
    stale = [
        n
        for n in fresh
        if not filecmp.cmp(tmp_path / "swarm" / "v1" / n, GENERATED / n, shallow=False)
    ]
    assert not stale, f"run `python protos/generate.py`: stale {stale}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=1, agents_per_host=10) as c:
        yield c


def test_health_and_reflection(cluster: InProcessSwarm) -> None:
    health = health_pb2_grpc.HealthStub(cluster.channel)
    for service in ("", "swarm.v1.TaskService", "swarm.v1.HostService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(cluster.channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"swarm.v1.TaskService", "swarm.v1.HostService", "grpc.health.v1.Health"} <= names


def _submit_error(
    cluster: InProcessSwarm, *specs: types_pb2.TaskSpec, namespace: str = ""
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        cluster.stub.Submit(task_pb2.SubmitRequest(namespace=namespace, tasks=specs), timeout=5)
    return exc.value


@pytest.mark.parametrize(
    ("specs", "code", "field"),
    [
        ([], grpc.StatusCode.INVALID_ARGUMENT, "tasks"),
        ([types_pb2.TaskSpec(id="a", kind="")], grpc.StatusCode.INVALID_ARGUMENT, "tasks[0].kind"),
        (
            [types_pb2.TaskSpec(id="a", kind="echo"), types_pb2.TaskSpec(id="b\n", kind="echo")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[1].id",
        ),
        (
            [types_pb2.TaskSpec(id="x" * 300, kind="echo")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[0].id",
        ),
        (
            [types_pb2.TaskSpec(id="a", kind="echo", timeout_s=float("nan"))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[0].timeout_s",
        ),
        (
            [types_pb2.TaskSpec(id="a", kind="echo", schedule_timeout_s=-1)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[0].schedule_timeout_s",
        ),
        (
            [types_pb2.TaskSpec(id="a", kind="echo", max_retries=1000)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[0].max_retries",
        ),
        (
            [types_pb2.TaskSpec(id="a", kind="echo", depends_on=["ghost"])],
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[0].depends_on[0]",
        ),
        (
            [
                types_pb2.TaskSpec(id="a", kind="echo", depends_on=["b"]),
                types_pb2.TaskSpec(id="b", kind="echo", depends_on=["a"]),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "depends_on",
        ),
        (
            [types_pb2.TaskSpec(id="a", kind="echo"), types_pb2.TaskSpec(id="a", kind="echo")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[1].id",
        ),
        (
            [types_pb2.TaskSpec(id="a", kind="echo", payload=b"x" * (17 * 1024 * 1024))],
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "tasks[0].payload",
        ),
        (
            [types_pb2.TaskSpec(id=f"n{i}", kind="echo") for i in range(10_001)],
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "tasks",
        ),
    ],
)
def test_bad_submissions_name_the_field_and_change_nothing(
    cluster: InProcessSwarm, specs: list[types_pb2.TaskSpec], code: grpc.StatusCode, field: str
) -> None:
    before = cluster.status().tasks
    error = _submit_error(cluster, *specs)
    assert error.code() == code
    assert field in error.details()
    assert cluster.status().tasks == before
    ids = [s.id for s in specs if s.id and len(s.id) < 256 and s.id.isprintable()]
    if ids:
        with pytest.raises(grpc.RpcError) as exc:
            cluster.stub.GetTasks(task_pb2.GetTasksRequest(task_ids=ids[:1]), timeout=5)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_namespace_and_unknown_ids(cluster: InProcessSwarm) -> None:
    err = _submit_error(cluster, types_pb2.TaskSpec(id="a", kind="echo"), namespace="bad\x1fns")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "namespace" in err.details()
    for call, request in [
        (cluster.stub.GetTasks, task_pb2.GetTasksRequest(task_ids=["nope"])),
        (cluster.stub.Wait, task_pb2.WaitRequest(task_ids=["nope"], timeout_s=1)),
    ]:
        with pytest.raises(grpc.RpcError) as exc:
            call(request, timeout=5)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in exc.value.details()
    # Cancel answers per task: an unknown id is TASK_STATE_UNSPECIFIED, the others are cancelled.
    reply = cluster.stub.Cancel(task_pb2.CancelRequest(task_ids=["nope"]), timeout=5)
    assert list(reply.states) == [types_pb2.TASK_STATE_UNSPECIFIED]
    with pytest.raises(grpc.RpcError) as exc:
        cluster.stub.Wait(task_pb2.WaitRequest(task_ids=[], timeout_s=-1), timeout=5)
    assert (
        exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "timeout_s" in exc.value.details()
    )
    with pytest.raises(grpc.RpcError) as exc:
        cluster.stub.DrainHost(task_pb2.DrainHostRequest(host_id="nobody"), timeout=5)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_bad_stream_batch_is_refused_and_the_stream_lives_on(cluster: InProcessSwarm) -> None:
    from tests.raw_client import RawClient, spec

    with RawClient(cluster.address, "bad-batch") as client:
        client.submit([spec("ok1", "echo", b"1"), spec("bad", "echo", depends_on=["ghost"])])
        eventually(lambda: len(client.replies) == 1, 10)
        client.submit_ok([spec("ok2", "echo", b"2")])
        first = client.replies[0]
        assert first.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert first.field == "tasks[1].depends_on[0]" and "ghost" in first.message
        client.wait_results(1)
        assert set(client.results) == {"ok2"}  # nothing of the refused batch ran


def test_sessions_and_host_streams_refuse_a_wrong_first_message(cluster: InProcessSwarm) -> None:
    from swarm.v1 import task_pb2_grpc

    stub = task_pb2_grpc.TaskServiceStub(cluster.channel)
    call = stub.Session(iter([task_pb2.ClientMessage(ack=task_pb2.AckBatch(task_ids=["x"]))]))
    with pytest.raises(grpc.RpcError) as exc:
        list(call)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "open" in exc.value.details()
    hosts = host_pb2_grpc.HostServiceStub(cluster.channel)
    bad = host_pb2.HostMessage(hello=host_pb2.HostHello(host_id="", capacity=1))
    with pytest.raises(grpc.RpcError) as exc:
        list(hosts.Connect(iter([bad])))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "host_id" in exc.value.details()
    assert len(cluster.active_hosts()) == 1


def test_the_server_picks_ids_for_tasks_without_one(cluster: InProcessSwarm) -> None:
    from tests.raw_client import RawClient, spec

    with RawClient(cluster.address, "no-ids") as client:
        client.submit_ok([spec("", "echo", b"a"), spec("mine", "echo", b"b")])
        ids = list(client.replies[-1].task_ids)
        assert len(ids) == 2 and ids[0] and ids[1] == "mine"
        client.wait_results(2)
        assert {client.results[i].output for i in ids} == {b"a", b"b"}
    reply = cluster.stub.Submit(task_pb2.SubmitRequest(tasks=[spec("", "echo", b"c")]), timeout=5)
    assert len(reply.task_ids) == 1 and reply.task_ids[0]


def test_a_result_never_comes_before_the_reply_that_names_its_task(
    cluster: InProcessSwarm,
) -> None:
    """A client that lets the server pick ids learns them from the SubmitReply, so each result
    must come after the reply to its batch, however fast batches and results flow; and every
    task gets exactly one result."""
    s = _column_session(cluster, "picked-order", columns=True)
    batches, per_batch = 150, 4
    try:
        for b in range(batches):  # sent back to back: replies and results interleave
            batch = task_pb2.SubmitBatch(
                batch_id=b, ids=[""] * per_batch, payloads=[b"%d" % b] * per_batch, kind="echo"
            )
            s.send(task_pb2.ClientMessage(submit=batch))
        named: set[str] = set()
        replies = 0
        results: dict[str, int] = {}
        while replies < batches or len(results) < batches * per_batch:
            msg = s.next(10)
            if msg.WhichOneof("msg") == "submitted":
                assert msg.submitted.code == 0, msg.submitted.message
                named.update(msg.submitted.task_ids)
                replies += 1
            elif msg.WhichOneof("msg") == "results":
                for task_id in msg.results.ok_ids:
                    assert task_id in named, f"result for {task_id} before the reply naming it"
                    results[task_id] = results.get(task_id, 0) + 1
        assert len(named) == batches * per_batch
        assert set(results) == named and set(results.values()) == {1}
    finally:
        s.close()


def _column_session(
    cluster: InProcessSwarm, client_id: str, *, columns: bool, namespace: str = ""
) -> Any:
    from tests.wire import SESSION, Stream

    s = Stream(cluster.channel, SESSION)
    opening = task_pb2.OpenSession(client_id=client_id, column_results=columns, namespace=namespace)
    s.send(task_pb2.ClientMessage(open=opening))
    opened = s.next()
    assert opened.WhichOneof("msg") == "opened"
    assert opened.opened.column_depends_on  # this server reads dependencies in columns
    return s


def _submit_columns(s: Any, batch_id: int, ids: list[str], payloads: list[bytes], **kw: Any) -> Any:
    batch = task_pb2.SubmitBatch(batch_id=batch_id, ids=ids, payloads=payloads, **kw)
    s.send(task_pb2.ClientMessage(submit=batch))
    reply = s.next()
    assert reply.WhichOneof("msg") == "submitted" and reply.submitted.batch_id == batch_id
    return reply.submitted


def _results(
    s: Any, n: int
) -> tuple[dict[str, tuple[bytes, int, str]], list[types_pb2.TaskResult]]:
    """Read result batches until n results came: (column successes by id, row results)."""
    ok: dict[str, tuple[bytes, int, str]] = {}
    rows: list[types_pb2.TaskResult] = []
    while len(ok) + len(rows) < n:
        msg = s.next(10)
        if msg.WhichOneof("msg") != "results":
            continue
        b = msg.results
        assert len(b.ok_ids) == len(b.ok_outputs) == len(b.ok_attempts) == len(b.ok_host_ids)
        ok.update(
            zip(b.ok_ids, zip(b.ok_outputs, b.ok_attempts, b.ok_host_ids, strict=True), strict=True)
        )
        rows += b.results
    return ok, rows


def test_column_batches_in_both_directions_and_rows_for_failures(cluster: InProcessSwarm) -> None:
    s = _column_session(cluster, "columns", columns=True)
    try:
        reply = _submit_columns(s, 1, ["c0", "c1", "c2"], [b"a", b"b", b""], kind="echo")
        assert reply.code == 0 and reply.accepted == 3 and not reply.task_ids
        fail = task_pb2.SubmitBatch(batch_id=2, ids=["c3"], payloads=[b"no"], kind="fail")
        s.send(task_pb2.ClientMessage(submit=fail))
        ok, rows = _results(s, 4)
        host = cluster.active_hosts()[0].host_id
        assert ok == {"c0": (b"a", 1, host), "c1": (b"b", 1, host), "c2": (b"", 1, host)}
        assert [(r.task_id, r.state, r.error.message) for r in rows] == [
            ("c3", types_pb2.FAILED, "no")
        ]
    finally:
        s.close()


def test_a_column_submit_gets_row_results_on_a_session_that_did_not_ask(
    cluster: InProcessSwarm,
) -> None:
    s = _column_session(cluster, "rows", columns=False)
    try:
        reply = _submit_columns(s, 1, ["", "r1"], [b"x", b"y"], kind="echo")
        picked = list(reply.task_ids)
        assert reply.code == 0 and len(picked) == 2 and picked[0] and picked[1] == "r1"
        ok, rows = _results(s, 2)
        assert not ok and {(r.task_id, r.output) for r in rows} == {(picked[0], b"x"), ("r1", b"y")}
    finally:
        s.close()


def _graph(ids: list[str], dep_counts: list[int], depends_on: list[str]) -> dict[str, Any]:
    """A column batch of echo tasks with empty payloads and these dependency columns."""
    return {
        "ids": ids,
        "payloads": [b""] * len(ids),
        "kind": "echo",
        "dep_counts": dep_counts,
        "depends_on": depends_on,
    }


@pytest.mark.parametrize(
    ("batch", "code", "field"),
    [
        (
            {
                "ids": ["a"],
                "payloads": [b""],
                "kind": "echo",
                "tasks": [types_pb2.TaskSpec(id="b", kind="echo")],
            },
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks",
        ),
        (
            {"ids": ["a", "b"], "payloads": [b""], "kind": "echo"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "payloads",
        ),
        (
            {"ids": ["a", "b\n"], "payloads": [b"", b""], "kind": "echo"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[1].id",
        ),
        (
            {"ids": ["a"], "payloads": [b""], "kind": ""},
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[0].kind",
        ),
        (
            {"ids": ["a", "b"], "payloads": [b"", b"x" * (17 << 20)], "kind": "echo"},
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "tasks[1].payload",
        ),
        # Dependencies in the column form (SubmitBatch.dep_counts, depends_on).
        (
            {"ids": ["a", "b"], "payloads": [b"", b""], "kind": "echo", "dep_counts": [0]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "dep_counts",
        ),
        (
            {"ids": ["a", "b"], "payloads": [b"", b""], "kind": "echo", "dep_counts": [0, 1]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "depends_on",
        ),
        (
            {"ids": ["a"], "payloads": [b""], "kind": "echo", "depends_on": ["x"]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "depends_on",
        ),
        (  # dependency columns beside rows: refused, not ignored
            {
                "ids": [],
                "payloads": [],
                "tasks": [types_pb2.TaskSpec(id="a", kind="echo")],
                "dep_counts": [0],
            },
            grpc.StatusCode.INVALID_ARGUMENT,
            "dep_counts",
        ),
        (
            _graph(["x0", "a"], [0, 2], ["x0", "bad\n"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[1].depends_on[1]",
        ),
        (
            _graph(["a"], [1], [""]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[0].depends_on[0]",
        ),
        (
            _graph(["a"], [10_001], ["d"] * 10_001),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "tasks[0].depends_on",
        ),
        (
            _graph(["x1", "a"], [0, 1], ["no-such-task"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "tasks[1].depends_on[0]",
        ),
    ],
)
def test_bad_column_batches_name_the_field_and_change_nothing(
    cluster: InProcessSwarm, batch: dict[str, Any], code: grpc.StatusCode, field: str
) -> None:
    s = _column_session(cluster, f"bad-columns-{field}", columns=True)
    try:
        reply = _submit_columns(s, 7, **batch)
        assert (reply.code, reply.field) == (code.value[0], field)
        with pytest.raises(grpc.RpcError) as exc:  # nothing of the batch was applied
            cluster.stub.GetTasks(task_pb2.GetTasksRequest(task_ids=["a"]), timeout=5)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        s.close()


def test_a_graph_in_the_column_form_runs_with_its_dependencies(cluster: InProcessSwarm) -> None:
    """dep_counts and depends_on (task.proto, SubmitBatch) carry a diamond and a chain, within
    one batch and across two, in the default namespace and another: each task runs only once
    its dependencies succeeded, so its result comes after theirs. (That their outputs reach the
    handler is the SDK's test: tests/test_client_e2e.py, one-kind graphs.)"""
    for ns in ("", "graphs"):
        s = _column_session(cluster, f"column-deps-{ns or 'default'}", columns=True, namespace=ns)
        try:
            batches = [
                task_pb2.SubmitBatch(
                    batch_id=1,
                    ids=["g-a", "g-b", "g-c", "g-d"],
                    payloads=[b"a", b"b", b"c", b"d"],
                    kind="echo",
                    dep_counts=[0, 1, 1, 2],
                    depends_on=["g-a", "g-a", "g-b", "g-c"],
                ),
                task_pb2.SubmitBatch(
                    batch_id=2, ids=["g-e"], payloads=[b"e"], kind="echo", dep_counts=[1],
                    depends_on=["g-d"],
                ),
            ]  # fmt: skip
            for batch in batches:
                s.send(task_pb2.ClientMessage(submit=batch))
            replies: dict[int, task_pb2.SubmitReply] = {}
            order: list[str] = []
            while len(order) < 5 or len(replies) < 2:  # results may overtake the second reply
                msg = s.next(10)
                if msg.WhichOneof("msg") == "submitted":
                    replies[msg.submitted.batch_id] = msg.submitted
                elif msg.WhichOneof("msg") == "results":
                    assert not msg.results.results, msg.results.results
                    order += msg.results.ok_ids
            assert [(r.code, r.accepted) for _, r in sorted(replies.items())] == [(0, 4), (0, 1)]
            assert sorted(order) == ["g-a", "g-b", "g-c", "g-d", "g-e"]
            pos = {t: i for i, t in enumerate(order)}
            assert pos["g-a"] < pos["g-b"] < pos["g-d"] < pos["g-e"]
            assert pos["g-a"] < pos["g-c"] < pos["g-d"]
        finally:
            s.close()
