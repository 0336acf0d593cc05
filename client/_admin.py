"""Looking tasks up, waiting on them by id, draining hosts: GetTasks, Wait and DrainHost.

These work by id, so they reach tasks that another client (or an earlier process) submitted:
what `swarm get`, `swarm wait` and `swarm drain` call. Results come back as `TaskInfo`, the
output as the raw bytes the handler returned (no codec guesses what another client encoded).
"""

from __future__ import annotations

from dataclasses import dataclass

from swarm.client._types import _name, state_name
from swarm.v1 import task_pb2, types_pb2


@dataclass(frozen=True, slots=True)
class TaskInfo:
    id: str
    state: str  # "QUEUED", "RUNNING", "SUCCEEDED", ...
    kind: str = ""  # empty from Wait, which answers with results only
    attempts: int = 0
    host_id: str = ""
    output: bytes = b""
    error_reason: str = ""
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""

    @property
    def final(self) -> bool:
        return self.state in ("SUCCEEDED", "FAILED", "CANCELLED")


def host_state_name(value: int) -> str:
    return _name(types_pb2.HostState, value)


def from_result(r: types_pb2.TaskResult, kind: str = "") -> TaskInfo:
    err = r.error if r.HasField("error") else None
    return TaskInfo(
        id=r.task_id,
        state=state_name(r.state),
        kind=kind,
        attempts=r.attempts,
        host_id=r.host_id,
        output=r.output,
        error_reason=_name(types_pb2.FailureReason, err.reason) if err is not None else "",
        error_type=err.type if err is not None else "",
        error_message=err.message if err is not None else "",
        traceback=err.traceback if err is not None else "",
    )


def from_info(t: task_pb2.TaskInfo) -> TaskInfo:
    if t.HasField("result") and t.result.task_id:
        return from_result(t.result, t.kind)
    return TaskInfo(
        id=t.task_id, state=state_name(t.state), kind=t.kind, attempts=t.attempt, host_id=t.host_id
    )
