"""A deliberately plain client of the raw protocol, used to check the invariants.

It records every result message exactly as the server delivered it (the SDK deduplicates,
which would hide a double delivery), acknowledges what it received, and can reconnect under
the same client_id.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

from tests.helpers import eventually


class RawClient:
    def __init__(self, address: str, client_id: str = "raw", *, ack: bool = True) -> None:
        self.address = address
        self.client_id = client_id
        self.ack = ack
        self.results: dict[str, types_pb2.TaskResult] = {}
        self.deliveries: Counter[str] = Counter()
        # Deliveries of each session (one Counter per connect): within one, never twice.
        self.sessions: list[Counter[str]] = []
        self.replies: list[task_pb2.SubmitReply] = []
        self._lock = threading.Lock()
        self._batch = 0
        self._out: queue.Queue[task_pb2.ClientMessage | None] | None = None
        self._call: Any = None
        self._thread: threading.Thread | None = None
        self._channel = grpc.insecure_channel(address)
        self.stub = task_pb2_grpc.TaskServiceStub(self._channel)

    def __enter__(self) -> RawClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        out: queue.Queue[task_pb2.ClientMessage | None] = queue.Queue()
        out.put(task_pb2.ClientMessage(open=task_pb2.OpenSession(client_id=self.client_id)))
        self._out = out
        session: Counter[str] = Counter()
        with self._lock:
            self.sessions.append(session)

        def requests() -> Iterator[task_pb2.ClientMessage]:
            while (msg := out.get()) is not None:
                yield msg

        self._call = self.stub.Session(requests())
        self._thread = threading.Thread(
            target=self._read, args=(self._call, out, session), daemon=True
        )
        self._thread.start()

    def disconnect(self) -> None:
        if self._out is not None:
            self._out.put(None)
        if self._call is not None:
            self._call.cancel()
        if self._thread is not None:
            self._thread.join(5)
        self._out = self._call = self._thread = None

    def close(self) -> None:
        self.disconnect()
        self._channel.close()

    def _read(
        self, call: Any, out: queue.Queue[task_pb2.ClientMessage | None], session: Counter[str]
    ) -> None:
        try:
            for msg in call:
                which = msg.WhichOneof("msg")
                if which == "results":
                    ids = []
                    with self._lock:
                        for r in msg.results.results:
                            self.deliveries[r.task_id] += 1
                            session[r.task_id] += 1
                            self.results[r.task_id] = r
                            ids.append(r.task_id)
                    if self.ack:
                        out.put(task_pb2.ClientMessage(ack=task_pb2.AckBatch(task_ids=ids)))
                elif which == "submitted":
                    with self._lock:
                        self.replies.append(msg.submitted)
        except grpc.RpcError:
            pass  # cancelled by disconnect(), or the server went away

    def submit(self, specs: list[types_pb2.TaskSpec], chunk: int = 1000) -> None:
        assert self._out is not None
        for i in range(0, len(specs), chunk):
            self._batch += 1
            msg = task_pb2.ClientMessage(
                submit=task_pb2.SubmitBatch(batch_id=self._batch, tasks=specs[i : i + chunk])
            )
            self._out.put(msg)

    def submit_ok(
        self, specs: list[types_pb2.TaskSpec], chunk: int = 1000, timeout_s: float = 30
    ) -> None:
        """Submit and wait until every batch is acknowledged as accepted."""
        before = len(self.replies)
        self.submit(specs, chunk)
        batches = (len(specs) + chunk - 1) // chunk
        eventually(lambda: len(self.replies) >= before + batches, timeout_s, what="submit replies")
        bad = [r for r in self.replies[before:] if r.code != 0]
        assert not bad, bad

    def wait_results(self, n: int, timeout_s: float = 60.0) -> dict[str, types_pb2.TaskResult]:
        eventually(
            lambda: len(self.results) >= n,
            timeout_s,
            0.02,
            what=f"{n} results (have {len(self.results)})",
        )
        return self.results

    def assert_exactly_once(self, ids: list[str]) -> None:
        """Every id has exactly one delivered result, and nothing else was delivered."""
        with self._lock:
            missing = [i for i in ids if i not in self.deliveries]
            twice = {i: n for i, n in self.deliveries.items() if n != 1}
            extra = set(self.deliveries) - set(ids)
        assert not missing, f"{len(missing)} tasks without a result, e.g. {missing[:5]}"
        assert not twice, f"results delivered more than once: {list(twice.items())[:5]}"
        assert not extra, f"results for tasks never submitted: {list(extra)[:5]}"


def spec(task_id: str, kind: str, payload: Any = None, **kw: Any) -> types_pb2.TaskSpec:
    data = (
        payload
        if isinstance(payload, bytes)
        else json.dumps(payload).encode()
        if payload is not None
        else b""
    )
    return types_pb2.TaskSpec(id=task_id, kind=kind, payload=data, **kw)
