"""The SDK's exceptions: one small hierarchy, and the two tables that map the wire onto it.

```
SwarmError
├── TaskError                 a task reached a final state other than SUCCEEDED
│   ├── TaskFailed            its handler raised (remote type, message, traceback)
│   │   ├── TaskTimedOut      it ran past its timeout, or no host started it in time
│   │   ├── DependencyFailed  a task it depends on failed or was cancelled; it never ran
│   │   └── HostLost          it was on too many hosts that died (a quarantined poison task)
│   └── TaskCancelled         a client cancelled it
├── Rejected                  the orchestrator refused the input; `field` names what
│   └── NotFound              a named task or host does not exist
├── Backpressure              the orchestrator is at a limit; retry later or submit less
├── Unavailable               the orchestrator cannot be reached (or the client was closed)
└── DeadlineExceeded          a wait ran out of time (also a `TimeoutError`)
```

Every gRPC status code maps to one class in `STATUS_ERRORS`; every failure reason of a task
result maps to one class in `REASON_ERRORS`.
"""

from __future__ import annotations

import re

import grpc
from swarm.v1 import types_pb2


class SwarmError(Exception):
    """Base of every error the SDK raises for the service.

    `code` is the gRPC status code behind the error, when one is known; `field` names the
    field of the request it is about, when the service named one ("tasks[3].payload"), for
    refusals (`Rejected`) and limits (`Backpressure`) alike.

    ```python
    try:
        await fut
    except swarm.client.SwarmError as exc:
        print("swarm said no:", exc)
    ```
    """

    def __init__(
        self, message: str, *, code: grpc.StatusCode | None = None, field: str = ""
    ) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.code = code
        self.field = field


class TaskError(SwarmError):
    """A task ended FAILED or CANCELLED; its result carries why.

    Attributes: `task_id`, `reason` (a `FailureReason` name such as "HANDLER_ERROR"),
    `remote_type`, `remote_message` and `remote_traceback` (the handler's exception, when one was
    raised), `attempts` and `host_id`. The remote traceback is also attached as a note, so an
    uncaught error prints it.
    """

    def __init__(
        self,
        task_id: str,
        *,
        reason: str,
        remote_type: str = "",
        remote_message: str = "",
        remote_traceback: str = "",
        attempts: int = 0,
        host_id: str = "",
    ) -> None:
        what = f"{remote_type}: {remote_message}" if remote_type else remote_message or reason
        where = f" on host {host_id}" if host_id else ""
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        super().__init__(f"task {task_id} {self._verb}{where}{tries}: {what}")
        self.task_id = task_id
        self.reason = reason
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.attempts = attempts
        self.host_id = host_id
        if remote_traceback:
            self.add_note("Remote traceback:\n" + remote_traceback.rstrip())

    _verb = "failed"


class TaskFailed(TaskError):
    """The task's handler raised (after its retries), or no host had a handler for its kind."""


class TaskTimedOut(TaskFailed):
    """The task ran past its `timeout`, or no host started it within its schedule timeout."""

    _verb = "timed out"


class DependencyFailed(TaskFailed):
    """A task this one depends on ended FAILED or CANCELLED, so this one never ran."""

    _verb = "did not run: a dependency failed"


class HostLost(TaskFailed):
    """The task was on too many hosts that were lost; it is quarantined as a poison task."""

    _verb = "was quarantined: its hosts were lost"


class TaskCancelled(TaskError):
    """The task was cancelled by a client before it finished."""

    _verb = "was cancelled"


class Rejected(SwarmError):
    """The orchestrator (or the SDK, before sending) refused the input and changed nothing.

    `field` names the offending field when known, e.g. "tasks[3].depends_on[0]".
    """


class NotFound(Rejected):
    """A task id or host id named in a request does not exist (or has been forgotten)."""


class Backpressure(SwarmError):
    """The orchestrator is at a limit (queue depth, batch size, bytes): retry later or submit
    less. `field` names what is over its limit when the service said, e.g. "tasks[0].payload".
    """


class Unavailable(SwarmError):
    """The orchestrator could not be reached within the client's timeouts, or the client closed.

    The message says which address was tried and what to check.
    """


class DeadlineExceeded(SwarmError, TimeoutError):
    """A wait ran out of time: `result(timeout=...)`, or a call past its deadline.

    The task itself goes on; only the wait ended. It is also a built-in `TimeoutError`.
    """


# One table: each gRPC status code to the error it becomes (OK is no error).
STATUS_ERRORS: dict[grpc.StatusCode, type[SwarmError]] = {
    grpc.StatusCode.CANCELLED: Unavailable,  # the call was torn down, e.g. a server shutting down
    grpc.StatusCode.UNKNOWN: SwarmError,
    grpc.StatusCode.INVALID_ARGUMENT: Rejected,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: Rejected,
    grpc.StatusCode.PERMISSION_DENIED: SwarmError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Backpressure,
    grpc.StatusCode.FAILED_PRECONDITION: Rejected,
    grpc.StatusCode.ABORTED: Unavailable,
    grpc.StatusCode.OUT_OF_RANGE: Rejected,
    grpc.StatusCode.UNIMPLEMENTED: SwarmError,
    grpc.StatusCode.INTERNAL: SwarmError,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DATA_LOSS: SwarmError,
    grpc.StatusCode.UNAUTHENTICATED: SwarmError,
}

# One table: each failure reason of a task result to the error it becomes.
REASON_ERRORS: dict[int, type[TaskError]] = {
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

_NAMES_FIELDS = (Rejected, Backpressure)
_CODES_BY_NUMBER: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}
# A field path at the start of a status message: "tasks[3].depends_on[0]: unknown task".
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[A-Za-z_]\w*(?:\[\d+\])?)*): ")
# Trailing metadata key that may carry the field name explicitly.
FIELD_METADATA_KEY = "swarm-field"


def status_error(code: grpc.StatusCode | int, message: str, *, field: str = "") -> SwarmError:
    """The SDK error for a gRPC status code (or its number) and message, through `STATUS_ERRORS`.

    ```python
    err = status_error(grpc.StatusCode.INVALID_ARGUMENT, "tasks[0].kind: empty")
    assert isinstance(err, Rejected) and err.field == "tasks[0].kind"
    ```
    """
    if isinstance(code, int):
        code = _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    cls = STATUS_ERRORS.get(code, SwarmError)
    # Refusals and limits lead with the field ("tasks[0].payload: 11 bytes, limit 10"); other
    # codes carry transport text, where a leading "word: " is no field.
    if not field and issubclass(cls, _NAMES_FIELDS) and (match := _FIELD_PREFIX.match(message)):
        field = match.group(1)
        message = message[match.end() :]
    return cls(message or code.name.lower().replace("_", " "), code=code, field=field)


def rpc_error(exc: grpc.aio.AioRpcError, *, address: str = "") -> SwarmError:
    """The SDK error for a failed gRPC call (unary or stream)."""
    field = ""
    for key, value in exc.trailing_metadata() or ():
        if key == FIELD_METADATA_KEY:
            field = value if isinstance(value, str) else value.decode()
    err = status_error(exc.code(), exc.details() or "", field=field)
    if isinstance(err, Unavailable) and address:
        return Unavailable(unreachable_message(address, err.message), code=err.code)
    return err


# What gRPC's handshake failures mean here, and what to pass instead: the connection error
# itself only says that the handshake failed.
_TLS_HINTS = (
    (
        "handshake failed",
        "the orchestrator's certificate does not chain to the CA bundle given: pass the ca.pem "
        "of the swarm's own state directory (--ca PEM, SWARM_CA, or SWARM_HOME)",
    ),
    (
        "hostname verification",
        "the orchestrator's certificate does not list the address used: add it on the "
        "orchestrator's machine (`swarm certs server --san ADDR`, then restart it), or name "
        "one it lists with --tls-server-name NAME (SWARM_TLS_SERVER_NAME)",
    ),
)


def unreachable_message(address: str, detail: str = "") -> str:
    """What to tell a person when the orchestrator at `address` cannot be reached."""
    tail = f" ({detail})" if detail else ""
    for needle, hint in _TLS_HINTS:
        if needle in detail.lower():
            return f"cannot connect to the Swarm orchestrator at {address} over TLS: {hint}{tail}"
    return (
        f"cannot reach the Swarm orchestrator at {address}{tail}; is `swarm up` running there? "
        "Pass another address (--connect ADDR, or address=...) or set SWARM_ADDRESS; if it "
        "serves TLS (any swarm beyond loopback does), give its CA and a token (SWARM_HOME, or "
        "SWARM_CA and SWARM_TOKEN)"
    )


def result_error(result: types_pb2.TaskResult) -> TaskError:
    """The SDK error for a task result whose state is FAILED or CANCELLED."""
    err = result.error
    reason = err.reason
    if reason == types_pb2.FAILURE_REASON_UNSPECIFIED and result.state == types_pb2.CANCELLED:
        reason = types_pb2.CANCELLED_BY_CLIENT
    return REASON_ERRORS.get(reason, TaskFailed)(
        result.task_id,
        reason=_reason_name(reason),
        remote_type=err.type,
        remote_message=err.message,
        remote_traceback=err.traceback,
        attempts=result.attempts,
        host_id=result.host_id,
    )


def _reason_name(reason: int) -> str:
    try:
        return types_pb2.FailureReason.Name(reason)
    except ValueError:  # a reason newer than this SDK
        return f"REASON_{reason}"
