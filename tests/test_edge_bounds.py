"""Issue 10, defects 3-5: every field has a range checked at the edge, undecodable input is
INVALID_ARGUMENT without a traceback, and streams that never start are bounded."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from swarm.deploy.inproc import InProcessSwarm
from swarm.server.config import OrchestratorConfig
from swarm.v1 import host_pb2, task_pb2, types_pb2

from tests.helpers import eventually
from tests.wire import CONNECT, SESSION, UNARY, Stream, hello, open_session, raw_unary, violations

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=1, agents_per_host=4) as c:
        yield c


def _hosts(cluster: InProcessSwarm) -> dict[str, int]:
    return {h.host_id: h.state for h in cluster.status().hosts}


# ---- defect 3: host fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"capacity": 2**32 - 1}, "hello.capacity"),
        ({"capacity": 10**9}, "hello.capacity"),
        ({"max_capacity": 10**9}, "hello.max_capacity"),
        ({"hostname": "h" * 100_000}, "hello.hostname"),
        ({"hostname": "bad\x00name"}, "hello.hostname"),
        ({"kinds": ["echo", "k\x00"]}, "hello.kinds[1]"),
        ({"running": [host_pb2.Attempt(task_id="", attempt=1)]}, "hello.running[0].task_id"),
    ],
)
def test_a_hello_out_of_range_is_refused_and_no_host_joins(
    cluster: InProcessSwarm, kw: dict[str, Any], field: str
) -> None:
    before = _hosts(cluster)
    msg = hello("bad-hello", **{"capacity": 1, **kw})
    s = Stream(cluster.channel, CONNECT)
    s.send(msg)
    assert s.ended() == INVALID
    assert s.details.startswith(field), s.details
    assert _hosts(cluster) == before


def _joined(cluster: InProcessSwarm, host_id: str) -> Stream:
    s = Stream(cluster.channel, CONNECT)
    s.send(hello(host_id))
    assert s.next().WhichOneof("msg") == "welcome"
    eventually(lambda: host_id in {h.host_id for h in cluster.active_hosts()})
    return s


def _hb(**kw: Any) -> host_pb2.HostMessage:
    return host_pb2.HostMessage(heartbeat=host_pb2.Heartbeat(**kw))


def _drain(grace_s: float) -> host_pb2.HostMessage:
    return host_pb2.HostMessage(draining=host_pb2.Draining(grace_s=grace_s))


_BAD_REASON = host_pb2.HostResult(task_id="t", attempt=1, error=types_pb2.TaskError(reason=99))  # type: ignore[arg-type]
_LONG_ID = host_pb2.Attempt(task_id="x" * 1000, attempt=1)


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (_hb(loop_lag_ms=math.nan), "heartbeat.loop_lag_ms"),
        (_hb(cpu_percent=math.inf), "heartbeat.cpu_percent"),
        (_hb(rss_bytes=2**64 - 1), "heartbeat.rss_bytes"),
        (_hb(capacity=2**32 - 1), "heartbeat.capacity"),
        (_hb(last_assign_seq=99), "heartbeat.last_assign_seq"),
        (_drain(math.nan), "draining.grace_s"),
        (_drain(math.inf), "draining.grace_s"),
        (_drain(1e308), "draining.grace_s"),
        (
            host_pb2.HostMessage(results=host_pb2.HostResultBatch(results=[_BAD_REASON])),
            "results.results[0].error.reason",
        ),
        (
            host_pb2.HostMessage(started=host_pb2.AttemptBatch(attempts=[_LONG_ID])),
            "started.attempts[0].task_id",
        ),
    ],
)
def test_an_invalid_host_message_ends_its_stream_and_the_host_is_lost(
    cluster: InProcessSwarm, msg: host_pb2.HostMessage, field: str
) -> None:
    host_id = f"h-{field}-{abs(hash(msg.SerializeToString())) % 10_000}"
    s = _joined(cluster, host_id)
    s.send(msg)
    assert s.ended() == INVALID
    assert s.details.startswith(field), s.details
    eventually(lambda: _hosts(cluster).get(host_id) not in (2, 3, 5), what="host lost")
    for h in cluster.status().hosts:
        assert math.isfinite(h.loop_lag_ms) and math.isfinite(h.cpu_percent)
        assert h.rss_bytes < 2**53


# ---- defect 3: client fields --------------------------------------------------------------------


def _submit(
    cluster: InProcessSwarm, *specs: types_pb2.TaskSpec, client_id: str = ""
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        cluster.stub.Submit(task_pb2.SubmitRequest(client_id=client_id, tasks=specs), timeout=10)
    return exc.value


def _spec(**kw: Any) -> types_pb2.TaskSpec:
    return types_pb2.TaskSpec(id="a", kind="echo", **kw)


@pytest.mark.parametrize(
    ("spec", "code", "field"),
    [
        (_spec(labels={"k\x00": "v"}), INVALID, "tasks[0].labels"),
        (_spec(labels={"k": "v\x00"}), INVALID, "tasks[0].labels"),
        (
            _spec(non_retryable=[f"E{i}" for i in range(100_000)]),
            EXHAUSTED,
            "tasks[0].non_retryable",
        ),
        (_spec(non_retryable=["bad\x00"]), INVALID, "tasks[0].non_retryable[0]"),
        (_spec(timeout_s=1e308), INVALID, "tasks[0].timeout_s"),
        (_spec(depends_on=["x\x00"]), INVALID, "tasks[0].depends_on[0]"),
    ],
)
def test_task_fields_out_of_range_are_refused(
    cluster: InProcessSwarm, spec: types_pb2.TaskSpec, code: grpc.StatusCode, field: str
) -> None:
    before = cluster.status().tasks
    err = _submit(cluster, spec)
    assert err.code() == code and err.details().startswith(field), err.details()
    assert cluster.status().tasks == before


@pytest.mark.parametrize("method", ["GetTasks", "Cancel", "Wait"])
def test_too_many_ids_are_refused_before_any_work(cluster: InProcessSwarm, method: str) -> None:
    ids = [f"id{i}" for i in range(200_000)]
    request: Any = getattr(task_pb2, f"{method}Request")(task_ids=ids)
    with pytest.raises(grpc.RpcError) as exc:
        getattr(cluster.stub, method)(request, timeout=10)
    assert exc.value.code() == EXHAUSTED and exc.value.details().startswith("task_ids")


@pytest.mark.parametrize("method", ["GetTasks", "Cancel", "Wait"])
def test_unknown_and_invalid_ids_are_named_by_index(cluster: InProcessSwarm, method: str) -> None:
    cluster.stub.Submit(task_pb2.SubmitRequest(tasks=[types_pb2.TaskSpec(id="known", kind="echo")]))
    make: Any = getattr(task_pb2, f"{method}Request")
    if method == "Cancel":
        # Cancel answers per task (an unknown id must not keep the others running): no status.
        reply = cluster.stub.Cancel(make(task_ids=["known", "nope"]), timeout=10)
        assert reply.states[1] == types_pb2.TASK_STATE_UNSPECIFIED
    else:
        with pytest.raises(grpc.RpcError) as exc:
            getattr(cluster.stub, method)(make(task_ids=["known", "nope"]), timeout=10)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
        assert exc.value.details().startswith("task_ids[1]:"), exc.value.details()
    with pytest.raises(grpc.RpcError) as exc:
        getattr(cluster.stub, method)(make(task_ids=["known", "bad\x00"]), timeout=10)
    assert exc.value.code() == INVALID and exc.value.details().startswith("task_ids[1]:")


def test_a_refused_batch_creates_no_client(cluster: InProcessSwarm) -> None:
    before = {c.client_id for c in cluster.status().clients}
    spec = types_pb2.TaskSpec(id="r1", kind="echo", depends_on=["ghost"])
    err = _submit(cluster, spec, client_id="refused-new-client")
    assert err.code() == INVALID
    assert {c.client_id for c in cluster.status().clients} == before


def test_a_refusal_carries_bad_request_details(cluster: InProcessSwarm) -> None:
    err = _submit(cluster, types_pb2.TaskSpec(id="a", kind=""))
    assert err.details().startswith("tasks[0].kind: ")
    assert violations(err) == ["tasks[0].kind"]


def test_drain_host_fields(cluster: InProcessSwarm) -> None:
    host_id = cluster.active_hosts()[0].host_id
    for grace in (math.nan, math.inf, -1.0):
        with pytest.raises(grpc.RpcError) as exc:
            cluster.stub.DrainHost(task_pb2.DrainHostRequest(host_id=host_id, grace_s=grace))
        assert exc.value.code() == INVALID and exc.value.details().startswith("grace_s")
    with pytest.raises(grpc.RpcError) as exc:
        cluster.stub.DrainHost(task_pb2.DrainHostRequest(host_id="x" * 1000))
    assert exc.value.code() == INVALID and exc.value.details().startswith("host_id")


# ---- defect 4: garbage --------------------------------------------------------------------------

GARBAGE = b"\x0a\xff\xff"  # field 1, length-delimited, a length that runs past the end


def test_undecodable_requests_are_invalid_argument_without_tracebacks(
    cluster: InProcessSwarm, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        for method in UNARY:
            err = raw_unary(cluster.channel, method, GARBAGE)
            assert err is not None and err.code() == INVALID, (method, err)
            assert "decode" in err.details()
    for method, first in [(SESSION, None), (SESSION, "open"), (CONNECT, None)]:
        s = Stream(cluster.channel, method, raw=True)
        if first == "open":
            s.send(task_pb2.ClientMessage(open=task_pb2.OpenSession()).SerializeToString())
        s.send(GARBAGE)
        assert s.ended() == INVALID, method
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    warnings = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert len(warnings) <= 1, [r.getMessage() for r in warnings]
    assert cluster.status().hosts  # alive


# ---- defect 5: streams that never start ---------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Iterator[InProcessSwarm]:
    config = OrchestratorConfig(
        first_message_timeout_s=0.5, max_session_streams=3, max_host_streams=2
    )
    with InProcessSwarm(hosts=1, agents_per_host=2, config=config) as c:
        yield c


@pytest.mark.parametrize("method", [SESSION, CONNECT])
def test_a_stream_without_a_first_message_ends_at_the_deadline(
    small: InProcessSwarm, method: str
) -> None:
    s = Stream(small.channel, method)
    assert s.ended(5) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "first message" in s.details


def test_streams_beyond_the_cap_are_resource_exhausted(small: InProcessSwarm) -> None:
    sessions = [open_session(small.channel, f"cap{i}") for i in range(3)]
    for s in sessions:
        assert s.next().WhichOneof("msg") == "opened"
    extra = open_session(small.channel, "cap-extra")
    assert extra.ended() == EXHAUSTED and "Session" in extra.details
    # the one host of `small` holds one Connect stream; one more fits, the next does not
    host = Stream(small.channel, CONNECT)
    host.send(hello("cap-host"))
    assert host.next().WhichOneof("msg") == "welcome"
    over = Stream(small.channel, CONNECT)
    over.send(hello("cap-host-2"))
    assert over.ended() == EXHAUSTED and "Connect" in over.details
    for s in [*sessions, host]:
        s.close()
    again = open_session(small.channel, "cap-again")  # freed slots are reusable
    assert again.next().WhichOneof("msg") == "opened"
    again.close()


def test_a_closed_session_that_owns_nothing_leaves_no_entry(small: InProcessSwarm) -> None:
    s = open_session(small.channel, "fleeting")
    assert s.next().WhichOneof("msg") == "opened"
    assert "fleeting" in {c.client_id for c in small.status().clients}
    s.close()
    eventually(lambda: "fleeting" not in {c.client_id for c in small.status().clients})
    # a client that submitted keeps its entry (its results may still come) after it closes
    s = open_session(small.channel, "owner")
    assert s.next().WhichOneof("msg") == "opened"
    s.send(
        task_pb2.ClientMessage(
            submit=task_pb2.SubmitBatch(tasks=[types_pb2.TaskSpec(id="own1", kind="echo")])
        )
    )
    assert s.next().submitted.code == 0
    s.close()
    eventually(
        lambda: (
            not {c.connected for c in small.status().clients if c.client_id == "owner"} - {False}
        )
    )
    assert "owner" in {c.client_id for c in small.status().clients}


@pytest.mark.parametrize(
    "bad",
    ["", "x" * 257, "a\x1fb", "a\ud800", "line\n", "tab\t"],
    ids=["empty", "too-long", "ns-separator", "lone-surrogate", "newline", "tab"],
)
def test_a_list_of_ids_names_its_first_bad_one_by_index(bad: str) -> None:
    """check_ids (acks, cancels, lookups) tests the whole list at once and, only when that
    fails, one by one: the bad id is named wherever it sits, and good lists pass."""
    from swarm.server.convert import check_ids
    from swarm.server.model import Rejected

    good = ["a", "b-1", "é" * 256, "with space"]
    check_ids(good, 10, "ack.task_ids")
    for at in (0, 2, 4):
        ids = [*good[:at], bad, *good[at:]]
        with pytest.raises(Rejected) as exc:
            check_ids(ids, 10, "ack.task_ids")
        assert exc.value.code == "INVALID_ARGUMENT" and exc.value.field == f"ack.task_ids[{at}]"
    with pytest.raises(Rejected) as exc:
        check_ids([*good, bad], 4, "ack.task_ids")
    assert exc.value.code == "RESOURCE_EXHAUSTED" and exc.value.field == "ack.task_ids"


def test_the_column_form_checks_each_column_in_one_pass_and_names_a_bad_item() -> None:
    """SpecReader.read_columns and host_wire.check_keys check whole columns in a loop and name
    the first bad item by index; empty ids are picked by the server, the others kept."""
    from swarm.server.config import OrchestratorConfig
    from swarm.server.convert import SpecReader
    from swarm.server.host_wire import check_keys
    from swarm.server.model import Rejected

    config = OrchestratorConfig(max_payload_bytes=8)
    reader = SpecReader(config)
    tasks = reader.read_columns(["a", "b", "c"], "echo", [b"1", b"22", b"333"], "default")
    assert [t.id for t in tasks] == ["a", "b", "c"] and not reader.picked_ids
    tasks = reader.read_columns(["a", "", "c", ""], "echo", [b""] * 4, "default")
    ids = [t.id for t in tasks]
    assert ids[0] == "a" and ids[2] == "c" and reader.picked_ids
    assert ids[1].startswith("s-") and ids[3].startswith("s-") and ids[1] != ids[3]
    refusals = [
        (["a", "b", "c"], [b"1", b"2", b"x" * 9], "RESOURCE_EXHAUSTED", "tasks[2].payload"),
        (["a", "b\n", "c"], [b"1", b"2", b"3"], "INVALID_ARGUMENT", "tasks[1].id"),
        (["a", "", "x" * 257], [b"1", b"2", b"3"], "INVALID_ARGUMENT", "tasks[2].id"),
    ]
    for ids_in, payloads, code, field in refusals:
        with pytest.raises(Rejected) as exc:
            reader.read_columns(ids_in, "echo", payloads, "default")
        assert (exc.value.code, exc.value.field) == (code, field)
    check_keys(["k1", "k2"], "results.task_ids")
    for keys, at in ((["k1", "k2", "k3", ""], 3), (["x" * 2000, "k"], 0)):
        with pytest.raises(Rejected) as exc:
            check_keys(keys, "results.task_ids")
        assert exc.value.field == f"results.task_ids[{at}]"
