"""What a host has to tell the orchestrator, gathered between two writes of its stream.

Results are built straight into the next protobuf message, so a batch costs one encode.
Started notices ride with the heartbeat, for the tasks still running then (the executor derives
them from what it runs): a task that finishes sooner never costs one, the result says more.
Announcements (tasks re-sent after a host loss must be known to run before they run) go out
with the very next write. Only the latest heartbeat is ever sent.
"""

from __future__ import annotations

from collections.abc import Callable

from swarm.v1 import host_pb2


class Outbox:
    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self.wake = wake
        self._results = host_pb2.HostMessage()
        self._add = self._results.results.results.add
        self.count = 0
        self._announce: dict[str, int] = {}
        self.returned: list[tuple[str, int]] = []
        self.capacity_changed = False

    def announce(self, key: str, attempt: int) -> None:
        self._announce[key] = attempt
        self.wake()

    def result(self, key: str, attempt: int, output: bytes) -> None:
        self._add(task_id=key, attempt=attempt, output=output)
        self.count += 1
        self.wake()

    def error(self, key: str, attempt: int, reason: int, type_: str, message: str, tb: str) -> None:
        r = self._add(task_id=key, attempt=attempt)
        e = r.error
        e.reason = reason  # type: ignore[assignment]
        e.type = type_
        e.message = message
        e.traceback = tb
        self.count += 1
        self.wake()

    def take_results(self) -> host_pb2.HostMessage | None:
        if not self.count:
            return None
        msg = self._results
        self._results = host_pb2.HostMessage()
        self._add = self._results.results.results.add
        self.count = 0
        return msg

    def take_started(self, running: list[tuple[str, int]]) -> host_pb2.HostMessage | None:
        """Announcements, plus `running`: the executor's not yet reported starts, which the
        writer passes when a heartbeat goes out (see Executor.unreported_starts)."""
        if not self._announce and not running:
            return None
        msg = host_pb2.HostMessage()
        add = msg.started.attempts.add
        for key, attempt in (*self._announce.items(), *running):
            add(task_id=key, attempt=attempt)
        self._announce = {}
        return msg

    def take_returned(self) -> host_pb2.HostMessage | None:
        if not self.returned:
            return None
        msg = host_pb2.HostMessage()
        add = msg.returned.attempts.add
        for key, attempt in self.returned:
            add(task_id=key, attempt=attempt)
        self.returned = []
        return msg

    def reset(self) -> None:
        """A new session: what was queued for the old one is stale (fenced) and is dropped."""
        self.take_results()
        self._announce = {}
        self.returned = []
