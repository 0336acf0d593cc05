from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    PENDING: _ClassVar[TaskState]
    QUEUED: _ClassVar[TaskState]
    ASSIGNED: _ClassVar[TaskState]
    RUNNING: _ClassVar[TaskState]
    SUCCEEDED: _ClassVar[TaskState]
    FAILED: _ClassVar[TaskState]
    CANCELLED: _ClassVar[TaskState]

class FailureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_REASON_UNSPECIFIED: _ClassVar[FailureReason]
    HANDLER_ERROR: _ClassVar[FailureReason]
    TIMEOUT: _ClassVar[FailureReason]
    DEPENDENCY_FAILED: _ClassVar[FailureReason]
    HOST_LOST: _ClassVar[FailureReason]
    SCHEDULE_TIMEOUT: _ClassVar[FailureReason]
    NO_HANDLER: _ClassVar[FailureReason]
    CANCELLED_BY_CLIENT: _ClassVar[FailureReason]
    TOO_LARGE: _ClassVar[FailureReason]

class HostState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST_STATE_UNSPECIFIED: _ClassVar[HostState]
    JOINING: _ClassVar[HostState]
    ACTIVE: _ClassVar[HostState]
    DRAINING: _ClassVar[HostState]
    GONE: _ClassVar[HostState]
    SUSPECT: _ClassVar[HostState]
    LOST: _ClassVar[HostState]
TASK_STATE_UNSPECIFIED: TaskState
PENDING: TaskState
QUEUED: TaskState
ASSIGNED: TaskState
RUNNING: TaskState
SUCCEEDED: TaskState
FAILED: TaskState
CANCELLED: TaskState
FAILURE_REASON_UNSPECIFIED: FailureReason
HANDLER_ERROR: FailureReason
TIMEOUT: FailureReason
DEPENDENCY_FAILED: FailureReason
HOST_LOST: FailureReason
SCHEDULE_TIMEOUT: FailureReason
NO_HANDLER: FailureReason
CANCELLED_BY_CLIENT: FailureReason
TOO_LARGE: FailureReason
HOST_STATE_UNSPECIFIED: HostState
JOINING: HostState
ACTIVE: HostState
DRAINING: HostState
GONE: HostState
SUSPECT: HostState
LOST: HostState

class TaskSpec(_message.Message):
    __slots__ = ("id", "kind", "payload", "depends_on", "priority", "timeout_s", "max_retries", "labels", "schedule_timeout_s", "non_retryable")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    NON_RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    payload: bytes
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    priority: int
    timeout_s: float
    max_retries: int
    labels: _containers.ScalarMap[str, str]
    schedule_timeout_s: float
    non_retryable: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., payload: _Optional[bytes] = ..., depends_on: _Optional[_Iterable[str]] = ..., priority: _Optional[int] = ..., timeout_s: _Optional[float] = ..., max_retries: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., schedule_timeout_s: _Optional[float] = ..., non_retryable: _Optional[_Iterable[str]] = ...) -> None: ...

class TaskError(_message.Message):
    __slots__ = ("reason", "type", "message", "traceback")
    REASON_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    reason: FailureReason
    type: str
    message: str
    traceback: str
    def __init__(self, reason: _Optional[_Union[FailureReason, str]] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_id", "state", "output", "error", "attempts", "host_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    state: TaskState
    output: bytes
    error: TaskError
    attempts: int
    host_id: str
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., output: _Optional[bytes] = ..., error: _Optional[_Union[TaskError, _Mapping]] = ..., attempts: _Optional[int] = ..., host_id: _Optional[str] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("results", "ok_ids", "ok_outputs", "ok_attempts", "ok_host_ids")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    OK_IDS_FIELD_NUMBER: _ClassVar[int]
    OK_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    OK_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OK_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    ok_ids: _containers.RepeatedScalarFieldContainer[str]
    ok_outputs: _containers.RepeatedScalarFieldContainer[bytes]
    ok_attempts: _containers.RepeatedScalarFieldContainer[int]
    ok_host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ..., ok_ids: _Optional[_Iterable[str]] = ..., ok_outputs: _Optional[_Iterable[bytes]] = ..., ok_attempts: _Optional[_Iterable[int]] = ..., ok_host_ids: _Optional[_Iterable[str]] = ...) -> None: ...
