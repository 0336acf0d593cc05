"""A host that accepts work and never reports it, on a real orchestrator (issue 9, defect 6).

The host here is written from the .proto alone (the generated stubs): it says hello, confirms
every batch it receives in its heartbeats (so reconciliation finds nothing missing), and never
sends a started notice or a result. Only the orchestrator's own timeout can end its tasks.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import grpc
from swarm.v1 import host_pb2, host_pb2_grpc, types_pb2

from tests.helpers import local_swarm
from tests.raw_client import RawClient, spec


class SilentHost:
    """Heartbeats every interval, holds whatever it is sent, answers nothing else."""

    def __init__(self, address: str, capacity: int = 100, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.capacity = capacity
        self.held: dict[str, int] = {}
        self.cancels: list[tuple[str, int]] = []
        self.last_seq = 0
        self._lock = threading.Lock()
        self._out: queue.Queue[host_pb2.HostMessage | None] = queue.Queue()
        self._stop = threading.Event()
        self._channel = grpc.insecure_channel(address)
        self._stub = host_pb2_grpc.HostServiceStub(self._channel)
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> SilentHost:
        hello = host_pb2.HostHello(
            host_id="silent", pid=1, hostname="test", kinds=["echo"],
            capacity=self.capacity, max_capacity=self.capacity, session=1,
        )  # fmt: skip
        self._out.put(host_pb2.HostMessage(hello=hello))

        def requests() -> Iterator[host_pb2.HostMessage]:
            while (msg := self._out.get()) is not None:
                yield msg

        call = self._stub.Connect(requests())
        for target in (lambda: self._read(call), self._beat):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _read(self, call: Iterator[host_pb2.OrchestratorMessage]) -> None:
        try:
            for msg in call:
                which = msg.WhichOneof("msg")
                with self._lock:
                    if which == "assign":
                        self.last_seq = msg.assign.seq
                        for a in msg.assign.tasks:
                            self.held[a.task_id] = a.attempt
                    elif which == "cancel":
                        for a in msg.cancel.attempts:
                            self.cancels.append((a.task_id, a.attempt))
        except grpc.RpcError:
            pass  # the stream ended: leaving the with block

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                held = [host_pb2.Attempt(task_id=k, attempt=v) for k, v in self.held.items()]
                beat = host_pb2.Heartbeat(
                    running=len(held), free=max(0, self.capacity - len(held)),
                    capacity=self.capacity, last_assign_seq=self.last_seq, held=held,
                )  # fmt: skip
            self._out.put(host_pb2.HostMessage(heartbeat=beat))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._out.put(None)
        self._channel.close()
        for thread in self._threads:
            thread.join(5)


def test_tasks_held_by_a_host_that_never_answers_end_timeout() -> None:
    server_args = ["--heartbeat-interval", "0.1", "--lease", "0.5", "--timeout-grace", "0.5"]
    with (
        local_swarm(hosts=0, server_args=server_args) as c,
        SilentHost(c.address) as host,
        RawClient(c.address) as client,
    ):
        c.wait_hosts(1)
        ids = [f"t{i}" for i in range(50)]
        sent = time.monotonic()
        client.submit_ok([spec(i, "echo", i.encode(), timeout_s=0.5) for i in ids])
        # Due 0.5 s + 0.5 s grace after sending; today they are held forever.
        results = client.wait_results(len(ids), 15)
        took_s = time.monotonic() - sent
        assert all(r.state == types_pb2.FAILED for r in results.values()), results
        assert all(r.error.reason == types_pb2.TIMEOUT for r in results.values())
        assert took_s >= 0.9, f"timed out after {took_s:.2f} s, before timeout + grace"
        client.assert_exactly_once(ids)
        with host._lock:
            assert sorted(host.cancels) == sorted(host.held.items())  # told to abort each one
