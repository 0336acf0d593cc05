"""What a host has to tell the orchestrator, gathered between two writes of its stream.

Results are built straight into the next protobuf message, so a batch costs one encode.
Started notices ride with the heartbeat, for the tasks still running then: a task that finishes
sooner never costs one (the result says more), and a busy host sends no extra message for them.
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
        self._started: dict[str, int] = {}
        self._announce: dict[str, int] = {}
        self.returned: list[tuple[str, int]] = []
        self.capacity_changed = False

    def started(self, key: str, attempt: int) -> None:
        self._started[key] = attempt  # no wake: it waits for the heartbeat

    def announce(self, key: str, attempt: int) -> None:
        self._announce[key] = attempt
        self.wake()

    def result(self, key: str, attempt: int, output: bytes) -> None:
        self._started.pop(key, None)
        self._add(task_id=key, attempt=attempt, output=output)
        self.count += 1
        self.wake()

    def error(self, key: str, attempt: int, reason: int, type_: str, message: str, tb: str) -> None:
        self._started.pop(key, None)
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

    def take_started(self, with_running: bool) -> host_pb2.HostMessage | None:
        """Announcements always; started notices of running tasks when a heartbeat goes out."""
        if not self._announce and not (with_running and self._started):
            return None
        msg = host_pb2.HostMessage()
        add = msg.started.attempts.add
        for key, attempt in self._announce.items():
            add(task_id=key, attempt=attempt)
        self._announce = {}
        if with_running:
            for key, attempt in self._started.items():
                add(task_id=key, attempt=attempt)
            self._started = {}
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
        self._started = {}
        self._announce = {}
        self.returned = []
