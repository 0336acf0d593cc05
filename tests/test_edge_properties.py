"""Property-based edge suite (issue 10): every RPC and both streams, fed structured edge values
and raw bytes. After each case the service must be alive, a normal round trip must work, and a
refusal must have changed nothing (task and client counts in GetStatus).

The strategies are derived from the message descriptors, so every field of every message is
covered, a new field included: strings, numbers and lists get the edge values of the ranges the
.proto comments document (empty, at the limit, one past it, NUL, the namespace separator, NaN,
infinities, the largest uint32/uint64) as well as arbitrary ones.

    SWARM_HYPOTHESIS_PROFILE=long python -m pytest tests/test_edge_properties.py   # on demand
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from swarm.deploy.inproc import InProcessSwarm
from swarm.v1 import host_pb2, task_pb2, types_pb2

from tests.helpers import eventually
from tests.wire import CONNECT, SESSION, UNARY, Stream, raw_unary

settings.register_profile(
    "default",
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("long", parent=settings.get_profile("default"), max_examples=1_000)
settings.load_profile(os.environ.get("SWARM_HYPOTHESIS_PROFILE", "default"))

# What a call may end with: success or a refusal. UNKNOWN or INTERNAL is a crash of ours.
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND,
}
_F = FieldDescriptor
_INTS = {
    _F.TYPE_UINT32: (0, 2**32 - 1),
    _F.TYPE_UINT64: (0, 2**64 - 1),
    _F.TYPE_INT32: (-(2**31), 2**31 - 1),
    _F.TYPE_INT64: (-(2**63), 2**63 - 1),
}
EDGE_TEXT = ["", "a", "x" * 128, "x" * 129, "x" * 256, "x" * 257, "ü" * 256, "a\x00b", "a\x1fb"]
EDGE_FLOATS = [0.0, -0.0, -1.0, 1e-9, 3600.0, 3600.5, 2592001.0, 1e308, math.nan, math.inf]
BIG_LIST = 10_001  # one past max_ids and max_batch


def _scalar(f: FieldDescriptor) -> st.SearchStrategy[Any]:
    if f.type in _INTS:
        lo, hi = _INTS[f.type]
        edges = [lo, 0, 1, 1_000_000, 1_000_001, 2**53 + 1, hi]
        return st.sampled_from([e for e in edges if lo <= e <= hi]) | st.integers(lo, hi)
    if f.type in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        return st.sampled_from(EDGE_FLOATS) | st.floats(allow_nan=True, allow_infinity=True)
    if f.type == _F.TYPE_STRING:
        return st.sampled_from(EDGE_TEXT) | st.text(max_size=12)
    if f.type == _F.TYPE_BYTES:
        return st.binary(max_size=64)
    if f.type == _F.TYPE_BOOL:
        return st.booleans()
    if f.type == _F.TYPE_ENUM:
        return st.integers(0, 9)  # open enums: unknown numbers are legal on the wire
    raise TypeError(f"no strategy for {f.full_name}")


def _value(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if f.type == _F.TYPE_MESSAGE:
        return messages(f.message_type, depth + 1)
    return _scalar(f)


@st.composite
def _message(draw: st.DrawFn, d: Descriptor, depth: int) -> Message:
    msg = GetMessageClass(d)()
    chosen = {o.name: draw(st.sampled_from(list(o.fields))) for o in d.oneofs if o.fields}
    for f in d.fields:
        if f.containing_oneof is not None and chosen.get(f.containing_oneof.name) is not f:
            continue
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key, val = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            entries = draw(st.dictionaries(_scalar(key), _scalar(val), max_size=3))
            getattr(msg, f.name).update(entries)
        elif f.is_repeated:
            if f.type == _F.TYPE_STRING and draw(st.integers(0, 20)) == 0:
                getattr(msg, f.name).extend(f"id{i}" for i in range(BIG_LIST))
                continue
            items = draw(st.lists(_value(f, depth), max_size=3 if depth < 2 else 0))
            if f.type == _F.TYPE_MESSAGE:
                for item in items:
                    getattr(msg, f.name).add().CopyFrom(item)
            else:
                getattr(msg, f.name).extend(items)
        elif f.type == _F.TYPE_MESSAGE:
            if depth < 3 and draw(st.booleans()):
                getattr(msg, f.name).CopyFrom(draw(messages(f.message_type, depth + 1)))
        elif draw(st.integers(0, 3)):  # mostly set, sometimes left at its default
            setattr(msg, f.name, draw(_scalar(f)))
    return msg


def messages(d: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    return _message(d, depth)


# ---- the cluster and the checks after each case -------------------------------------------------

_ids = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=1, agents_per_host=4) as c:
        yield c


def _counts(cluster: InProcessSwarm) -> tuple[int, int]:
    s = cluster.status()
    t = s.tasks
    total = t.pending + t.queued + t.assigned + t.running + t.succeeded + t.failed + t.cancelled
    return total, len(s.clients)


def _round_trip(cluster: InProcessSwarm) -> None:
    """The service is alive and a normal submit-and-wait works."""
    task_id = f"rt-{next(_ids)}"
    spec = types_pb2.TaskSpec(id=task_id, kind="echo", payload=b"ok")
    cluster.stub.Submit(task_pb2.SubmitRequest(tasks=[spec]), timeout=10)
    reply = cluster.stub.Wait(task_pb2.WaitRequest(task_ids=[task_id], timeout_s=10), timeout=15)
    assert [r.output for r in reply.results] == [b"ok"]
    assert len(cluster.active_hosts()) == 1


def _tame(method: str, request: Any) -> Any:
    """Keep a valid Wait short and never drain the suite's own host: both would only add time."""
    if method == "Wait" and 0 <= request.timeout_s <= 3600:
        request.timeout_s = 0.01
    if method == "DrainHost" and request.host_id == "h0":
        request.host_id = "not-h0"
    return request


def _check_unary(cluster: InProcessSwarm, method: str, call: Any) -> None:
    before = _counts(cluster)
    try:
        call()
    except grpc.RpcError as exc:
        assert exc.code() in REFUSALS, (method, exc.code(), exc.details())
        assert _counts(cluster) == before, f"{method} was refused but changed the counts"
    _round_trip(cluster)


REQUESTS = {
    m: task_pb2.DESCRIPTOR.services_by_name["TaskService"].methods_by_name[m].input_type
    for m in UNARY
}


@pytest.mark.parametrize("method", UNARY)
@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_unary_structured(cluster: InProcessSwarm, method: str, data: st.DataObject) -> None:
    request = _tame(method, data.draw(messages(REQUESTS[method])))
    _check_unary(cluster, method, lambda: getattr(cluster.stub, method)(request, timeout=10))


@pytest.mark.parametrize("method", UNARY)
@given(raw=st.binary(max_size=256))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_unary_raw_bytes(cluster: InProcessSwarm, method: str, raw: bytes) -> None:
    def call() -> None:
        err = raw_unary(cluster.channel, method, raw)
        if err is not None:
            raise err

    if method in ("Wait", "DrainHost"):
        # Bytes that decode may ask for a long wait or a drain: read them as the message does.
        try:
            request = GetMessageClass(REQUESTS[method]).FromString(raw)
        except Exception:
            pass  # undecodable: sent as they are
        else:
            raw = _tame(method, request).SerializeToString()
    _check_unary(cluster, method, call)


def _frames(d: Descriptor) -> st.SearchStrategy[bytes]:
    structured = messages(d).map(lambda m: m.SerializeToString())
    return st.one_of(structured, st.binary(max_size=64))


def _run_stream(cluster: InProcessSwarm, method: str, frames: list[bytes]) -> list[Any]:
    s = Stream(cluster.channel, method, raw=True)
    for frame in frames:
        s.send(frame)
    # The server reads every frame before the end of stream, so a refusal shows as the status;
    # otherwise the stream ends as a peer's half-close ends it.
    s.half_close()
    code = s.ended()
    assert code in {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE} | REFUSALS, (code, s.details)
    s.close()
    replies = []
    while not s.replies.empty():
        replies.append(s.replies.get())
    return replies


@given(
    first=messages(task_pb2.ClientMessage.DESCRIPTOR),
    rest=st.lists(_frames(task_pb2.ClientMessage.DESCRIPTOR), max_size=4),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_session_stream(
    cluster: InProcessSwarm, first: task_pb2.ClientMessage, rest: list[bytes]
) -> None:
    tasks_before, clients_before = _counts(cluster)
    replies = _run_stream(cluster, SESSION, [first.SerializeToString(), *rest])
    accepted = any(task_pb2.ServerMessage.FromString(r).submitted.accepted for r in replies if r)
    if not accepted:  # nothing was submitted: nothing may stay once the session closed
        eventually(lambda: _counts(cluster) == (tasks_before, clients_before), 5)
    _round_trip(cluster)


@given(
    hello=messages(host_pb2.HostMessage.DESCRIPTOR),
    rest=st.lists(_frames(host_pb2.HostMessage.DESCRIPTOR), max_size=4),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_connect_stream(
    cluster: InProcessSwarm, hello: host_pb2.HostMessage, rest: list[bytes]
) -> None:
    if hello.WhichOneof("msg") == "hello" and hello.hello.host_id == "h0":
        hello.hello.host_id = "not-h0"  # never take over the suite's own host
    _run_stream(cluster, CONNECT, [hello.SerializeToString(), *rest])
    live = (2, 3, 5)  # ACTIVE, DRAINING, SUSPECT
    eventually(lambda: [h.host_id for h in cluster.status().hosts if h.state in live] == ["h0"], 10)
    _round_trip(cluster)
