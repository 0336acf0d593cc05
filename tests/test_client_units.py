"""Client SDK pieces that need no server: error tables, codec, graph validation, sync face guard."""

from __future__ import annotations

import asyncio
import gc
import re
import weakref
from typing import Any

import grpc
import pytest
from swarm.client import (
    REASON_ERRORS,
    STATUS_ERRORS,
    AsyncClient,
    Backpressure,
    Client,
    Codec,
    DeadlineExceeded,
    DependencyFailed,
    Graph,
    HostLost,
    JsonCodec,
    Node,
    NotFound,
    Rejected,
    SwarmError,
    TaskCancelled,
    TaskError,
    TaskFailed,
    TaskTimedOut,
    Unavailable,
)
from swarm.client._codec import encode_payload
from swarm.client._errors import result_error, rpc_error, status_error
from swarm.client._graph import task_options
from swarm.v1 import types_pb2

# -- errors ----------------------------------------------------------------------------------

EXPECTED_STATUS = {
    "CANCELLED": Unavailable,
    "UNKNOWN": SwarmError,
    "INVALID_ARGUMENT": Rejected,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": Rejected,
    "PERMISSION_DENIED": SwarmError,
    "RESOURCE_EXHAUSTED": Backpressure,
    "FAILED_PRECONDITION": Rejected,
    "ABORTED": Unavailable,
    "OUT_OF_RANGE": Rejected,
    "UNIMPLEMENTED": SwarmError,
    "INTERNAL": SwarmError,
    "UNAVAILABLE": Unavailable,
    "DATA_LOSS": SwarmError,
    "UNAUTHENTICATED": SwarmError,
}


def test_every_status_code_but_ok_is_in_the_table() -> None:
    codes = {c for c in grpc.StatusCode if c is not grpc.StatusCode.OK}
    assert set(STATUS_ERRORS) == codes


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_status_code_maps_to_its_error(name: str) -> None:
    code = grpc.StatusCode[name]
    for given in (code, code.value[0]):  # by enum and by the number a SubmitReply carries
        err = status_error(given, "something went wrong")
        assert type(err) is EXPECTED_STATUS[name]
        assert err.code is code
        assert "something went wrong" in str(err)


def test_refusals_and_limits_name_their_field_other_codes_do_not_guess_one() -> None:
    limit = status_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "tasks[0].payload: 11 bytes, limit 10")
    assert isinstance(limit, Backpressure)
    assert (limit.field, limit.message) == ("tasks[0].payload", "11 bytes, limit 10")
    refused = status_error(grpc.StatusCode.INVALID_ARGUMENT, "tasks[2].kind: must not be empty")
    assert isinstance(refused, Rejected) and refused.field == "tasks[2].kind"
    lost = status_error(grpc.StatusCode.UNAVAILABLE, "socket: connection refused")
    assert lost.field == "" and lost.message == "socket: connection refused"


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_rpc_error_maps_a_real_aio_error(name: str) -> None:
    exc = grpc.aio.AioRpcError(
        grpc.StatusCode[name], grpc.aio.Metadata(), grpc.aio.Metadata(), details="nope"
    )
    assert type(rpc_error(exc)) is EXPECTED_STATUS[name]


def test_rejected_names_the_field_from_the_message_or_metadata() -> None:
    err = status_error(3, "tasks[3].depends_on[0]: task 'a' depends on unknown task 'b'")
    assert isinstance(err, Rejected)
    assert err.field == "tasks[3].depends_on[0]"
    assert err.message == "task 'a' depends on unknown task 'b'"
    assert str(err) == "tasks[3].depends_on[0]: task 'a' depends on unknown task 'b'"
    exc = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("swarm-field", "namespace")),
        details="too long",
    )
    err = rpc_error(exc)
    assert isinstance(err, Rejected) and err.field == "namespace"
    assert status_error(3, "plain words: no field here").field == ""


def test_unavailable_says_where_and_what_to_do() -> None:
    exc = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="refused"
    )
    err = rpc_error(exc, address="10.0.0.9:1234")
    assert isinstance(err, Unavailable)
    assert "10.0.0.9:1234" in str(err) and "SWARM_ADDRESS" in str(err)


def test_deadline_exceeded_is_a_timeout_error() -> None:
    assert issubclass(DeadlineExceeded, TimeoutError)


EXPECTED_REASON = {
    types_pb2.FAILURE_REASON_UNSPECIFIED: TaskFailed,
    types_pb2.HANDLER_ERROR: TaskFailed,
    types_pb2.TIMEOUT: TaskTimedOut,
    types_pb2.DEPENDENCY_FAILED: DependencyFailed,
    types_pb2.HOST_LOST: HostLost,
    types_pb2.SCHEDULE_TIMEOUT: TaskTimedOut,
    types_pb2.NO_HANDLER: TaskFailed,
    types_pb2.CANCELLED_BY_CLIENT: TaskCancelled,
    types_pb2.TOO_LARGE: TaskFailed,
}


def test_every_failure_reason_is_in_the_table() -> None:
    assert set(REASON_ERRORS) == set(types_pb2.FailureReason.values())
    assert {k: v for k, v in REASON_ERRORS.items()} == EXPECTED_REASON


@pytest.mark.parametrize("reason", sorted(EXPECTED_REASON))
def test_result_error_carries_the_remote_details(reason: int) -> None:
    state = types_pb2.CANCELLED if reason == types_pb2.CANCELLED_BY_CLIENT else types_pb2.FAILED
    result = types_pb2.TaskResult(
        task_id="t1",
        state=state,
        attempts=2,
        host_id="h7",
        error=types_pb2.TaskError(
            reason=reason,  # type: ignore[arg-type]
            type="ValueError",
            message="bad value",
            traceback='Traceback (most recent call last):\n  File "x.py"\nValueError: bad value\n',
        ),
    )
    err = result_error(result)
    assert type(err) is EXPECTED_REASON[reason]
    assert isinstance(err, TaskError)
    assert (err.task_id, err.remote_type, err.remote_message) == ("t1", "ValueError", "bad value")
    assert (err.attempts, err.host_id) == (2, "h7")
    assert "t1" in str(err) and "ValueError: bad value" in str(err) and "h7" in str(err)
    assert any("Remote traceback" in note for note in err.__notes__)


def test_a_cancelled_result_without_reason_is_task_cancelled() -> None:
    result = types_pb2.TaskResult(task_id="t", state=types_pb2.CANCELLED)
    assert isinstance(result_error(result), TaskCancelled)


def test_an_unknown_reason_number_still_maps() -> None:
    result = types_pb2.TaskResult(task_id="t", state=types_pb2.FAILED)
    result.error.reason = 99  # type: ignore[assignment]
    err = result_error(result)
    assert type(err) is TaskFailed and err.reason == "REASON_99"


# -- codec -----------------------------------------------------------------------------------


def test_bytes_pass_through_untouched() -> None:
    codec = JsonCodec()
    raw = bytes(range(256))
    data, decode = encode_payload(codec, raw)
    assert data is raw and decode is False
    assert encode_payload(codec, bytearray(b"ab")) == (b"ab", False)
    assert encode_payload(codec, memoryview(b"cd")) == (b"cd", False)


def test_values_go_through_json_and_none_is_empty() -> None:
    codec = JsonCodec()
    assert encode_payload(codec, {"a": [1, 2.5, "é"]}) == ('{"a":[1,2.5,"é"]}'.encode(), True)
    assert encode_payload(codec, None) == (b"", True)
    assert codec.decode(b"") is None
    assert codec.decode(b'{"n":1}') == {"n": 1}
    assert codec.decode(codec.encode([1, "x", None])) == [1, "x", None]


@pytest.mark.parametrize("fast", [True, False], ids=["msgspec", "stdlib"])
def test_both_json_paths_agree_on_json_shaped_values(fast: bool) -> None:
    """msgspec (the default when installed) and the stdlib fallback write the same bytes and
    read them back exactly: big ints, int keys, unicode, nesting."""
    codec, std = JsonCodec(fast=fast), JsonCodec(fast=False)
    values: list[object] = [
        0,
        -7,
        2**70,
        0.1,
        "é\u2603",
        True,
        None,
        [1, [2, {"k": "v"}]],
        {"a": 1, "b": [None]},
    ]
    for value in values:
        assert codec.encode(value) == std.encode(value)
        assert codec.decode(codec.encode(value)) == value
    assert codec.encode({1: 2}) == b'{"1":2}' and codec.encode((1, 2)) == b"[1,2]"
    assert codec.decode(b"NaN") != codec.decode(b"NaN")  # a stdlib host's NaN still decodes
    with pytest.raises(ValueError):
        codec.decode(b"[1,")
    with pytest.raises(TypeError):
        codec.encode(object())


def test_a_value_json_cannot_encode_is_rejected_not_pickled() -> None:
    with pytest.raises(Rejected) as info:
        encode_payload(JsonCodec(), object(), "payloads[4]")
    assert info.value.field == "payloads[4]"
    assert "JsonCodec" in str(info.value)


class UpperCodec:
    """A codec of our own, to show the hook: text in upper case."""

    def encode(self, value: object) -> bytes:
        return str(value).upper().encode()

    def decode(self, data: bytes) -> object:
        return data.decode().lower()


def test_a_codec_hook_replaces_json() -> None:
    codec = UpperCodec()
    assert isinstance(codec, Codec)
    assert encode_payload(codec, "hi") == (b"HI", True)
    assert AsyncClient("127.0.0.1:1", codec=codec).codec is codec


# -- graph -----------------------------------------------------------------------------------


def test_graph_nodes_refer_to_earlier_nodes() -> None:
    g = Graph()
    a = g.add("fetch", {"url": "u"})
    b = g.add("fetch", b"raw", id="b")
    c = g.add("merge", depends_on=[a, b, "older-task"], priority=5, timeout=2, max_retries=1)
    assert len(g) == 3 and [n.index for n in g.nodes] == [0, 1, 2]
    assert c.depends_on == (a, b, "older-task")
    assert c.options == {"priority": 5, "timeout_s": 2.0, "max_retries": 1}


def test_a_dropped_graph_is_freed_without_the_garbage_collector() -> None:
    """A graph and its nodes hold no reference cycle: dropped, they are freed at once, not when
    a full collection comes round (a large graph is tens of thousands of objects)."""
    g = Graph()
    nodes: list[Node] = []
    for _ in range(100):
        nodes.append(g.add("echo", b"x", depends_on=nodes[-2:]))
    graph = weakref.ref(g)
    gc.disable()
    try:
        del g, nodes
        assert graph() is None
    finally:
        gc.enable()


def test_graph_refuses_bad_input_naming_the_field() -> None:
    g, other = Graph(), Graph()
    stranger = other.add("echo")
    g.add("echo", id="x")
    cases = [
        (lambda: g.add(""), "nodes[1].kind"),
        (lambda: g.add("echo", depends_on=[stranger]), "nodes[1].depends_on[0]"),
        (lambda: g.add("echo", depends_on=[42]), "nodes[1].depends_on[0]"),  # type: ignore[list-item]
        (lambda: g.add("echo", depends_on=[""]), "nodes[1].depends_on[0]"),
        (lambda: g.add("echo", depends_on=["ok", 42]), "nodes[1].depends_on[1]"),  # type: ignore[list-item]
        (lambda: g.add("echo", depends_on=(g.nodes[0], stranger)), "nodes[1].depends_on[1]"),
        (lambda: g.add(5), "nodes[1].kind"),  # type: ignore[arg-type]
        (lambda: g.add("echo", id="x"), "nodes[1].id"),
        (lambda: g.add("echo", timeout=0), "timeout"),
        (lambda: g.add("echo", max_retries=-1), "max_retries"),
        (lambda: g.add("echo", depends_on="abc"), "nodes[1].depends_on"),
        (lambda: g.add("echo", depends_on=5), "nodes[1].depends_on"),  # type: ignore[arg-type]
        (lambda: g.add("echo", depends_on=["a\ud800"]), "nodes[1].depends_on[0]"),
        (lambda: g.add("echo\n"), "nodes[1].kind"),
        (lambda: g.add("echo", id=b"x"), "nodes[1].id"),  # type: ignore[arg-type]
        (lambda: g.add("echo", id=""), "nodes[1].id"),
    ]
    for add, field in cases:
        with pytest.raises(Rejected) as info:
            add()
        assert info.value.field == field
    assert len(g) == 1  # nothing refused was added


def test_task_options_refuse_what_the_wire_cannot_carry() -> None:
    """Every option is checked when given, as nothing later can refuse it without failing the
    whole stream: a wrong type, a number outside its proto field, a string UTF-8 cannot
    encode."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"priority": 2**31}, "priority"),
        ({"priority": -(2**31) - 1}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"max_retries": 2**32}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"labels": ["a", "b"]}, "labels"),
        ({"labels": {"": "v"}}, "labels['']"),
        ({"labels": {"k": b"v"}}, "labels['k']"),
        ({"labels": {"k": "\ud800"}}, "labels['k']"),
    ]
    for given, field in cases:
        args: dict[str, Any] = {"priority": 0, "timeout": None, "max_retries": None, "labels": None}
        with pytest.raises(Rejected) as info:
            task_options(**{**args, **given})
        assert info.value.field == field, given
    assert task_options(2**31 - 1, 0.5, 0, {"k": ""}) == {
        "priority": 2**31 - 1,
        "timeout_s": 0.5,
        "max_retries": 0,
        "labels": {"k": ""},
    }


# -- sync face -------------------------------------------------------------------------------


def test_sync_client_in_a_running_loop_raises_instead_of_deadlocking() -> None:
    async def inside_a_loop() -> None:
        client = Client("127.0.0.1:1")
        with pytest.raises(RuntimeError, match=r"running event loop.*AsyncClient"):
            client.connect()
        with pytest.raises(RuntimeError, match="AsyncClient"):
            client.submit("echo", b"x")
        with pytest.raises(RuntimeError, match="AsyncClient"), Client("127.0.0.1:1"):
            pass

    asyncio.run(inside_a_loop())


def test_sync_client_reports_an_unreachable_address() -> None:
    with pytest.raises(Unavailable, match=re.escape("127.0.0.1:1")):
        Client("127.0.0.1:1", connect_timeout_s=0.2).connect()


def test_async_client_reports_an_unreachable_address() -> None:
    async def go() -> None:
        with pytest.raises(
            Unavailable, match=r"cannot reach the Swarm orchestrator at 127\.0\.0\.1:1"
        ):
            async with AsyncClient("127.0.0.1:1", connect_timeout_s=0.2):
                pass

    asyncio.run(go())


def test_a_client_refuses_a_namespace_or_client_id_the_wire_cannot_carry() -> None:
    """Caught when the client is made, not when its first session fails to open."""
    for kwargs in ({"namespace": "team\ud800"}, {"client_id": b"me"}, {"window": "10"}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            AsyncClient("127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_async_client_checks_input_before_anything_is_sent() -> None:
    async def go() -> None:
        client = AsyncClient("127.0.0.1:1")
        with pytest.raises(Rejected) as info:
            await client.map("", [b"x"])
        assert info.value.field == "kind"
        with pytest.raises(Rejected) as info:
            await client.map("echo", [b"x"], labels={"team": 7})  # type: ignore[dict-item]
        assert info.value.field == "labels['team']"
        with pytest.raises(Unavailable, match="not connected"):
            await client.submit("echo", b"x")
        await client.close()

    asyncio.run(go())


def test_a_graph_holds_each_dependency_ack_until_its_dependents_are_accepted() -> None:
    """graph_futures' futures through AckHolds: a finished dependency's ack waits until every
    dependent is accepted; a task nothing depends on is acked at once (explicit, picked and
    outside ids alike)."""
    from swarm.client._flow import AckHolds
    from swarm.client._graph import graph_futures
    from swarm.client._session import Session

    session = Session(
        None,  # type: ignore[arg-type]  # nothing is sent
        address="-",
        client_id="t",
        namespace="",
        codec=JsonCodec(),
        window=10,
        open_timeout_s=1.0,
        reconnect_timeout_s=1.0,
    )
    g = Graph()
    a = g.add("k", b"a", id="a")
    b = g.add("k", b"b")
    c = g.add("k", b"c", depends_on=[a, b])
    d = g.add("k", {"v": 1}, depends_on=(a, "earlier"))
    futs, fresh = graph_futures(g, session, session.codec, lambda n: [f"p{i}" for i in range(n)])
    assert [f.id for f in fresh] == ["a", "p1", "p2", "p3"]
    assert [futs[n].id for n in (a, b, c, d)] == ["a", "p1", "p2", "p3"]
    assert futs[c]._opts == {"depends_on": ["a", "p1"]}
    assert futs[d]._opts == {"depends_on": ["a", "earlier"]}
    assert futs[d]._payload == b'{"v":1}' and futs[b]._payload == b"b"

    holds = AckHolds()
    holds.pin(fresh)
    assert holds.acks_of(["a", "p1", "p2", "earlier"]) == ["p2"]
    assert holds.unpin([futs[c]]) == ["p1"]  # a is still pinned by d
    assert holds.unpin([futs[a], futs[b]]) == []
    assert sorted(holds.unpin([futs[d]])) == ["a", "earlier"]
    assert not holds
