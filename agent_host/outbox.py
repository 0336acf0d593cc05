"""What a host has to tell the orchestrator, gathered between two writes of its stream.

Results are built straight into the next protobuf message, so a batch costs one encode; on a
stream in the column form (host.proto, Welcome.columns) successes are gathered as three plain
lists instead and handed to protobuf whole when the message is closed, failures as rows.
Started notices ride with the heartbeat, for the tasks still running then (the executor derives
them from what it runs): a task that finishes sooner never costs one, the result says more.
Announcements (tasks re-sent after a host loss must be known to run before they run) go out
with the very next write; such a task runs once the orchestrator confirms it (`started_ok`).
Only the latest heartbeat is ever sent.

Result batches are cut by bytes (common/grpc_options.py): once the outputs gathered reach
BATCH_BYTES the message is closed and a new one started, so no message is larger than its
largest result, which the executor keeps within MAX_OUTPUT_BYTES.
"""

from __future__ import annotations

from collections.abc import Callable

from swarm.common.grpc_options import BATCH_BYTES
from swarm.v1 import host_pb2

# A result's small fields (ids, attempt, framing) and its error text counted with its output.
_RESULT_OVERHEAD = 256


class Outbox:
    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self.wake = wake
        self._results = host_pb2.HostMessage()
        self._add = self._results.results.results.add
        self.count = 0
        self._bytes = 0  # of the message being gathered
        self._full: list[host_pb2.HostMessage] = []  # closed at BATCH_BYTES, not yet taken
        self.columns = False  # successes in the column form (set per session from the welcome)
        self._keys: list[str] = []
        self._attempts: list[int] = []
        self._outputs: list[bytes] = []
        self._announce: dict[str, int] = {}
        self.returned: list[tuple[str, int]] = []
        self.capacity_changed = False

    def announce(self, key: str, attempt: int) -> None:
        self._announce[key] = attempt
        self.wake()

    def use_columns(self, columns: bool) -> None:
        """The form of the session that starts: what is gathered already is kept, as rows if the
        new session does not read columns."""
        if self.columns and not columns:
            for key, attempt, output in zip(self._keys, self._attempts, self._outputs, strict=True):
                self._add(task_id=key, attempt=attempt, output=output)
            self._keys, self._attempts, self._outputs = [], [], []
        self.columns = columns

    def _close(self) -> host_pb2.HostMessage:
        """The message being gathered, with its columns in; a new one is started."""
        msg = self._results
        if self._keys:
            batch = msg.results
            batch.task_ids.extend(self._keys)
            batch.attempts.extend(self._attempts)
            batch.outputs.extend(self._outputs)
            self._keys, self._attempts, self._outputs = [], [], []
        self._results = host_pb2.HostMessage()
        self._add = self._results.results.results.add
        self._bytes = 0
        return msg

    def _room(self, size: int) -> None:
        size += _RESULT_OVERHEAD
        if self.count and self._bytes + size > BATCH_BYTES:
            self._full.append(self._close())
        self._bytes += size

    def result(self, key: str, attempt: int, output: bytes) -> None:
        self._room(len(output))
        if self.columns:
            self._keys.append(key)
            self._attempts.append(attempt)
            self._outputs.append(output)
        else:
            self._add(task_id=key, attempt=attempt, output=output)
        self.count += 1
        self.wake()

    def error(self, key: str, attempt: int, reason: int, type_: str, message: str, tb: str) -> None:
        self._room(4 * (len(type_) + len(message) + len(tb)))
        r = self._add(task_id=key, attempt=attempt)
        e = r.error
        e.reason = reason  # type: ignore[assignment]
        e.type = type_
        e.message = message
        e.traceback = tb
        self.count += 1
        self.wake()

    def take_results(self) -> list[host_pb2.HostMessage]:
        """Every result gathered, in batches of at most BATCH_BYTES (or one result)."""
        if not self.count:
            return []
        msgs = self._full
        msgs.append(self._close())
        self._full = []
        self.count = 0
        return msgs

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
