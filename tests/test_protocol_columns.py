"""The host wire's two forms (host.proto): rows for a host that does not ask, columns for one that
sets hello.columns, both end to end, and column messages checked like rows (field named, nothing
applied)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from swarm.agent_host.outbox import Outbox
from swarm.common.grpc_options import BATCH_BYTES
from swarm.deploy.inproc import InProcessSwarm
from swarm.v1 import host_pb2, task_pb2, types_pb2

from tests.helpers import eventually
from tests.wire import CONNECT, Stream, hello


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=0) as c:
        yield c


def _join(
    cluster: InProcessSwarm,
    host_id: str,
    columns: bool,
    capacity: int = 8,
    kinds: tuple[str, ...] | list[str] = ("echo",),
) -> Stream:
    s = Stream(cluster.channel, CONNECT)
    s.send(hello(host_id, capacity=capacity, kinds=list(kinds), columns=columns))
    first = s.next()
    assert first.WhichOneof("msg") == "welcome"
    assert first.welcome.columns is columns  # the orchestrator answers in the form asked for
    eventually(lambda: host_id in {h.host_id for h in cluster.active_hosts()})
    return s


def _assign(s: Stream) -> host_pb2.AssignBatch:
    while True:
        msg = s.next()
        if msg.WhichOneof("msg") == "assign":
            return msg.assign


def _submit(cluster: InProcessSwarm, *specs: types_pb2.TaskSpec) -> None:
    cluster.stub.Submit(task_pb2.SubmitRequest(tasks=specs), timeout=5)


def _wait(cluster: InProcessSwarm, ids: list[str]) -> dict[str, types_pb2.TaskResult]:
    reply = cluster.stub.Wait(task_pb2.WaitRequest(task_ids=ids, timeout_s=10), timeout=15)
    return {r.task_id: r for r in reply.results}


def test_a_host_that_does_not_ask_gets_rows_only(cluster: InProcessSwarm) -> None:
    s = _join(cluster, "rows-host", columns=False)
    try:
        _submit(cluster, types_pb2.TaskSpec(id="r1", kind="echo", payload=b"one"))
        batch = _assign(s)
        assert not batch.task_ids and not batch.attempts and not batch.payloads
        assert [(a.task_id, a.kind, a.payload) for a in batch.tasks] == [("r1", "echo", b"one")]
        a = batch.tasks[0]
        result = host_pb2.HostResult(task_id=a.task_id, attempt=a.attempt, output=b"ONE")
        s.send(host_pb2.HostMessage(results=host_pb2.HostResultBatch(results=[result])))
        done = _wait(cluster, ["r1"])
        assert done["r1"].state == types_pb2.SUCCEEDED
        assert done["r1"].output == b"ONE"
    finally:
        s.close()


def test_columns_carry_plain_tasks_and_rows_the_rest(cluster: InProcessSwarm) -> None:
    s = _join(cluster, "col-host", columns=True)
    try:
        _submit(
            cluster,
            types_pb2.TaskSpec(id="c1", kind="echo", payload=b"a"),
            types_pb2.TaskSpec(id="c2", kind="echo", payload=b"b"),
            types_pb2.TaskSpec(id="c3", kind="echo", payload=b"c", timeout_s=30),
            types_pb2.TaskSpec(id="c4", kind="echo", payload=b"d", labels={"k": "v"}),
        )
        got: dict[str, tuple[int, str, bytes]] = {}
        rows: list[host_pb2.Assignment] = []
        while len(got) < 4:
            batch = _assign(s)
            kinds = list(batch.kinds) or [batch.kind] * len(batch.task_ids)
            assert len(batch.attempts) == len(batch.payloads) == len(kinds) == len(batch.task_ids)
            for key, attempt, kind, payload in zip(
                batch.task_ids, batch.attempts, kinds, batch.payloads, strict=True
            ):
                got[key] = (attempt, kind, payload)
            for a in batch.tasks:
                rows.append(a)
                got[a.task_id] = (a.attempt, a.kind, a.payload)
        assert {k: v[1:] for k, v in got.items()} == {
            "c1": ("echo", b"a"),
            "c2": ("echo", b"b"),
            "c3": ("echo", b"c"),
            "c4": ("echo", b"d"),
        }
        # What the column form cannot say travels as rows, in the same stream.
        assert {a.task_id for a in rows} == {"c3", "c4"}
        assert {a.task_id: a.timeout_s for a in rows}["c3"] == 30
        assert dict({a.task_id: a for a in rows}["c4"].labels) == {"k": "v"}
        # Successes in columns, a failure as a row, in one message.
        failure = host_pb2.HostResult(
            task_id="c4",
            attempt=got["c4"][0],
            error=types_pb2.TaskError(reason=types_pb2.NO_HANDLER, type="X"),
        )
        s.send(
            host_pb2.HostMessage(
                results=host_pb2.HostResultBatch(
                    results=[failure],
                    task_ids=["c1", "c2", "c3"],
                    attempts=[got["c1"][0], got["c2"][0], got["c3"][0]],
                    outputs=[b"A", b"B", b"C"],
                )
            )
        )
        done = _wait(cluster, ["c1", "c2", "c3", "c4"])
        assert {k: (r.state, r.output) for k, r in done.items() if k != "c4"} == {
            "c1": (types_pb2.SUCCEEDED, b"A"),
            "c2": (types_pb2.SUCCEEDED, b"B"),
            "c3": (types_pb2.SUCCEEDED, b"C"),
        }
        assert done["c4"].state == types_pb2.FAILED
        assert done["c4"].error.reason == types_pb2.NO_HANDLER
    finally:
        s.close()


def test_column_results_are_fenced_by_attempt(cluster: InProcessSwarm) -> None:
    s = _join(cluster, "fence-host", columns=True, capacity=1)
    try:
        _submit(cluster, types_pb2.TaskSpec(id="f1", kind="echo", payload=b"x"))
        batch = _assign(s)
        assert list(batch.task_ids) == ["f1"]
        before = cluster.status().stale_results
        stale = host_pb2.HostResultBatch(
            task_ids=["f1"], attempts=[batch.attempts[0] + 1], outputs=[b"late"]
        )
        s.send(host_pb2.HostMessage(results=stale))
        eventually(lambda: cluster.status().stale_results == before + 1)
        good = host_pb2.HostResultBatch(
            task_ids=["f1"], attempts=[batch.attempts[0]], outputs=[b"X"]
        )
        s.send(host_pb2.HostMessage(results=good))
        assert _wait(cluster, ["f1"])["f1"].output == b"X"
    finally:
        s.close()


_BAD_COLUMNS = [
    (
        host_pb2.HostResultBatch(task_ids=["a", "b"], attempts=[1], outputs=[b"", b""]),
        "results.attempts",
    ),
    (host_pb2.HostResultBatch(task_ids=["a"], attempts=[1], outputs=[]), "results.outputs"),
    (
        host_pb2.HostResultBatch(task_ids=["a", ""], attempts=[1, 1], outputs=[b"", b""]),
        "results.task_ids[1]",
    ),
    (
        host_pb2.HostResultBatch(task_ids=["a", "x" * 1000], attempts=[1, 1], outputs=[b"", b""]),
        "results.task_ids[1]",
    ),
    (
        host_pb2.HostResultBatch(task_ids=["a", "b"], attempts=[1, 0], outputs=[b"", b""]),
        "results.attempts[1]",
    ),
]


@pytest.mark.parametrize("case", range(len(_BAD_COLUMNS)))
def test_bad_columns_end_the_stream_naming_the_field_and_apply_nothing(
    cluster: InProcessSwarm, case: int
) -> None:
    batch, field = _BAD_COLUMNS[case]
    kind = f"bad-{case}"  # a kind of its own: a task requeued from another case never comes here
    s = _join(cluster, f"bad-host-{case}", columns=True, capacity=1, kinds=[kind])
    _submit(cluster, types_pb2.TaskSpec(id=f"bad-{case}", kind=kind, payload=b"x"))
    assigned = _assign(s)
    key, attempt = assigned.task_ids[0], assigned.attempts[0]
    # The good item first: the message is refused whole, so it is not applied either.
    batch.task_ids[0] = key
    if batch.attempts:
        batch.attempts[0] = attempt
    s.send(host_pb2.HostMessage(results=batch))
    assert s.ended() == grpc.StatusCode.INVALID_ARGUMENT
    assert s.details.startswith(field), s.details
    reply = cluster.stub.GetTasks(task_pb2.GetTasksRequest(task_ids=[key]), timeout=5)
    assert reply.tasks[0].state != types_pb2.SUCCEEDED


def test_dependency_outputs_travel_flattened_in_the_columns(cluster: InProcessSwarm) -> None:
    s = _join(cluster, "dep-host", columns=True)
    try:
        _submit(cluster, *[types_pb2.TaskSpec(id=f"p{i}", kind="echo") for i in (1, 2)])
        parents = _assign(s)
        s.send(
            host_pb2.HostMessage(
                results=host_pb2.HostResultBatch(
                    task_ids=parents.task_ids, attempts=parents.attempts, outputs=[b"P1", b"P2"]
                )
            )
        )
        _wait(cluster, ["p1", "p2"])
        _submit(
            cluster,
            types_pb2.TaskSpec(id="d1", kind="echo", depends_on=["p1", "p2"]),
            types_pb2.TaskSpec(id="d2", kind="echo"),
            types_pb2.TaskSpec(id="d3", kind="echo", depends_on=["p2"]),
        )
        batch = _assign(s)
        assert not batch.tasks
        counts = dict(zip(batch.task_ids, batch.dep_counts, strict=True))
        assert counts == {"d1": 2, "d2": 0, "d3": 1}
        deps = list(zip(batch.dep_task_ids, batch.dep_outputs, strict=True))
        got, at = {}, 0
        for key in batch.task_ids:
            got[key] = deps[at : at + counts[key]]
            at += counts[key]
        assert got == {"d1": [("p1", b"P1"), ("p2", b"P2")], "d2": [], "d3": [("p2", b"P2")]}
    finally:
        s.close()


@pytest.mark.parametrize("columns", [False, True])
def test_the_reference_host_runs_work_in_either_form(columns: bool) -> None:
    with InProcessSwarm(hosts=0, modules=["tests.handlers_for_tests"]) as c:
        c.add_host(agents=4, columns=columns)
        specs = [types_pb2.TaskSpec(id=f"e{i}", kind="echo", payload=b"%d" % i) for i in range(200)]
        specs += [types_pb2.TaskSpec(id="fails", kind="fail", payload=b"boom")]
        specs += [types_pb2.TaskSpec(id="timed", kind="echo", payload=b"t", timeout_s=30)]
        # A DAG: each sum's dependencies' outputs reach its handler, in depends_on order.
        specs += [
            types_pb2.TaskSpec(id="sum", kind="sum_deps", depends_on=["e1", "e2", "e3"]),
            types_pb2.TaskSpec(id="sum2", kind="sum_deps", depends_on=["sum", "e10"]),
            types_pb2.TaskSpec(
                id="order",
                kind="expect_deps",
                payload=json.dumps({"me": "order", "deps": ["e1", "e2"]}).encode(),
                depends_on=["id1", "id2"],
            ),
            types_pb2.TaskSpec(id="id1", kind="echo", payload=b"e1"),
            types_pb2.TaskSpec(id="id2", kind="echo", payload=b"e2"),
        ]
        _submit(c, *specs)
        done = _wait(c, [s.id for s in specs])
        assert {k: r.output for k, r in done.items() if k.startswith("e")} == {
            f"e{i}": b"%d" % i for i in range(200)
        }
        assert done["timed"].output == b"t"
        assert done["fails"].state == types_pb2.FAILED
        assert done["fails"].error.message == "boom"
        assert (done["sum"].output, done["sum2"].output) == (b"6", b"16")
        assert done["order"].state == types_pb2.SUCCEEDED, done["order"].error.message


def test_the_host_outbox_cuts_column_batches_by_bytes_and_falls_back_to_rows() -> None:
    out = Outbox()
    out.use_columns(True)
    big = b"x" * (BATCH_BYTES // 3)
    for key in ("a", "b", "c"):
        out.result(key, 1, big)
    out.error("d", 2, types_pb2.HANDLER_ERROR, "E", "bad", "")
    msgs = out.take_results()
    assert len(msgs) == 2  # no message over BATCH_BYTES but for its largest result
    assert [list(m.results.task_ids) for m in msgs] == [["a", "b"], ["c"]]
    assert [[r.task_id for r in m.results.results] for m in msgs] == [[], ["d"]]
    assert all(m.ByteSize() <= BATCH_BYTES + 1024 for m in msgs)
    # A session without the column form: what was gathered in columns goes out as rows.
    out.result("e", 1, b"E")
    out.use_columns(False)
    out.result("f", 1, b"F")
    (msg,) = out.take_results()
    assert not msg.results.task_ids
    assert [(r.task_id, r.output) for r in msg.results.results] == [("e", b"E"), ("f", b"F")]
