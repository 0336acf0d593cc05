"""Raw wire access for the edge tests: any message or any bytes on any method, and how it ended.

`Stream` drives one bidirectional call from a queue, so a test can send, read and see the final
status; `raw_unary` and `raw_stream` send bytes that need not decode. Nothing here knows what
the server should answer: the tests say that.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from swarm.v1 import host_pb2, host_pb2_grpc, task_pb2, task_pb2_grpc

UNARY = ("Submit", "Wait", "Cancel", "GetTasks", "GetStatus", "DrainHost")
SESSION = "/swarm.v1.TaskService/Session"
CONNECT = "/swarm.v1.HostService/Connect"


class Stream:
    """One Session or Connect call: send messages (or raw bytes), read replies, see its end."""

    def __init__(self, channel: grpc.Channel, method: str, *, raw: bool = False) -> None:
        self._out: queue.Queue[Any] = queue.Queue()
        self.replies: queue.Queue[Any] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.done = threading.Event()

        def requests() -> Iterator[Any]:
            while (msg := self._out.get()) is not None:
                yield msg

        if raw:
            call = channel.stream_stream(method)
        elif method == SESSION:
            call = task_pb2_grpc.TaskServiceStub(channel).Session
        else:
            call = host_pb2_grpc.HostServiceStub(channel).Connect
        self.call = call(requests())
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for msg in self.call:
                self.replies.put(msg)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.done.set()

    def send(self, msg: Any) -> None:
        self._out.put(msg)

    def next(self, timeout_s: float = 5.0) -> Any:
        return self.replies.get(timeout=timeout_s)

    def ended(self, timeout_s: float = 10.0) -> grpc.StatusCode:
        """The final status: OK for a clean end, else the error's code."""
        if not self.done.wait(timeout_s):
            raise AssertionError(f"the stream did not end within {timeout_s} s")
        return grpc.StatusCode.OK if self.error is None else self.error.code()

    @property
    def details(self) -> str:
        return "" if self.error is None else str(self.error.details())

    def half_close(self) -> None:
        """End our side: the server reads every message sent so far, then end of stream."""
        self._out.put(None)

    def close(self) -> None:
        self._out.put(None)
        self.call.cancel()
        self.done.wait(5)


def open_session(channel: grpc.Channel, client_id: str = "") -> Stream:
    s = Stream(channel, SESSION)
    s.send(task_pb2.ClientMessage(open=task_pb2.OpenSession(client_id=client_id)))
    return s


def hello(host_id: str = "raw-host", capacity: int = 1, **kw: Any) -> host_pb2.HostMessage:
    kw.setdefault("kinds", ["echo"])
    return host_pb2.HostMessage(hello=host_pb2.HostHello(host_id=host_id, capacity=capacity, **kw))


def raw_unary(channel: grpc.Channel, method: str, data: bytes) -> grpc.RpcError | None:
    """Send bytes as the request of TaskService.`method`; the error, or None when it answered."""
    call = channel.unary_unary(f"/swarm.v1.TaskService/{method}")
    try:
        call(data, timeout=5)
    except grpc.RpcError as exc:
        return exc
    return None


def violations(error: grpc.RpcError) -> list[str]:
    """The field names of the google.rpc.BadRequest detail of a refusal."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return []
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.extend(v.field for v in bad.field_violations)
    return fields


def join_host(address: str, creds: Any, host_id: str) -> tuple[Any, str]:
    """Open Connect as host `host_id` with `creds` (common/credentials.Credentials) and send a
    hello: ("welcome", "") when it is let in, else (status code, details)."""
    stub = creds.bind(host_pb2_grpc.HostServiceStub(creds.channel(address)))
    hello = host_pb2.HostMessage(
        hello=host_pb2.HostHello(host_id=host_id, pid=1, hostname="x", capacity=1, kinds=["echo"])
    )
    stream = stub.Connect(iter([hello]), timeout=10)
    try:
        first = next(stream)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    stream.cancel()
    return first.WhichOneof("msg"), ""
