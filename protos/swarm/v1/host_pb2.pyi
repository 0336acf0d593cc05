from swarm.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HostMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "started", "results", "returned", "draining")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    hello: HostHello
    heartbeat: Heartbeat
    started: AttemptBatch
    results: HostResultBatch
    returned: AttemptBatch
    draining: Draining
    def __init__(self, hello: _Optional[_Union[HostHello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., started: _Optional[_Union[AttemptBatch, _Mapping]] = ..., results: _Optional[_Union[HostResultBatch, _Mapping]] = ..., returned: _Optional[_Union[AttemptBatch, _Mapping]] = ..., draining: _Optional[_Union[Draining, _Mapping]] = ...) -> None: ...

class OrchestratorMessage(_message.Message):
    __slots__ = ("welcome", "assign", "cancel", "drain", "started_ok")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    STARTED_OK_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assign: AssignBatch
    cancel: AttemptBatch
    drain: DrainRequest
    started_ok: AttemptBatch
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assign: _Optional[_Union[AssignBatch, _Mapping]] = ..., cancel: _Optional[_Union[AttemptBatch, _Mapping]] = ..., drain: _Optional[_Union[DrainRequest, _Mapping]] = ..., started_ok: _Optional[_Union[AttemptBatch, _Mapping]] = ...) -> None: ...

class HostHello(_message.Message):
    __slots__ = ("host_id", "pid", "hostname", "kinds", "capacity", "max_capacity", "running", "session", "columns")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MAX_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    pid: int
    hostname: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    capacity: int
    max_capacity: int
    running: _containers.RepeatedCompositeFieldContainer[Attempt]
    session: int
    columns: bool
    def __init__(self, host_id: _Optional[str] = ..., pid: _Optional[int] = ..., hostname: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., max_capacity: _Optional[int] = ..., running: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., session: _Optional[int] = ..., columns: _Optional[bool] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("heartbeat_interval_s", "lease_s", "orchestrator_id", "columns")
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATOR_ID_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_s: float
    lease_s: float
    orchestrator_id: str
    columns: bool
    def __init__(self, heartbeat_interval_s: _Optional[float] = ..., lease_s: _Optional[float] = ..., orchestrator_id: _Optional[str] = ..., columns: _Optional[bool] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("running", "free", "local_queue", "capacity", "loop_lag_ms", "cpu_percent", "rss_bytes", "tasks_done", "last_assign_seq", "held")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_QUEUE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LOOP_LAG_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    TASKS_DONE_FIELD_NUMBER: _ClassVar[int]
    LAST_ASSIGN_SEQ_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    running: int
    free: int
    local_queue: int
    capacity: int
    loop_lag_ms: float
    cpu_percent: float
    rss_bytes: int
    tasks_done: int
    last_assign_seq: int
    held: _containers.RepeatedCompositeFieldContainer[Attempt]
    def __init__(self, running: _Optional[int] = ..., free: _Optional[int] = ..., local_queue: _Optional[int] = ..., capacity: _Optional[int] = ..., loop_lag_ms: _Optional[float] = ..., cpu_percent: _Optional[float] = ..., rss_bytes: _Optional[int] = ..., tasks_done: _Optional[int] = ..., last_assign_seq: _Optional[int] = ..., held: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ...) -> None: ...

class Draining(_message.Message):
    __slots__ = ("grace_s",)
    GRACE_S_FIELD_NUMBER: _ClassVar[int]
    grace_s: float
    def __init__(self, grace_s: _Optional[float] = ...) -> None: ...

class DrainRequest(_message.Message):
    __slots__ = ("grace_s",)
    GRACE_S_FIELD_NUMBER: _ClassVar[int]
    grace_s: float
    def __init__(self, grace_s: _Optional[float] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("task_id", "attempt")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class AttemptBatch(_message.Message):
    __slots__ = ("attempts",)
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    def __init__(self, attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ...) -> None: ...

class DependencyOutput(_message.Message):
    __slots__ = ("task_id", "output")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    output: bytes
    def __init__(self, task_id: _Optional[str] = ..., output: _Optional[bytes] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("task_id", "attempt", "kind", "payload", "timeout_s", "deps", "labels", "report_start")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    DEPS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REPORT_START_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    kind: str
    payload: bytes
    timeout_s: float
    deps: _containers.RepeatedCompositeFieldContainer[DependencyOutput]
    labels: _containers.ScalarMap[str, str]
    report_start: bool
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., kind: _Optional[str] = ..., payload: _Optional[bytes] = ..., timeout_s: _Optional[float] = ..., deps: _Optional[_Iterable[_Union[DependencyOutput, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., report_start: _Optional[bool] = ...) -> None: ...

class AssignBatch(_message.Message):
    __slots__ = ("tasks", "seq", "task_ids", "attempts", "payloads", "kind", "kinds", "dep_counts", "dep_task_ids", "dep_outputs")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PAYLOADS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    DEP_COUNTS_FIELD_NUMBER: _ClassVar[int]
    DEP_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    DEP_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Assignment]
    seq: int
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    attempts: _containers.RepeatedScalarFieldContainer[int]
    payloads: _containers.RepeatedScalarFieldContainer[bytes]
    kind: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    dep_counts: _containers.RepeatedScalarFieldContainer[int]
    dep_task_ids: _containers.RepeatedScalarFieldContainer[str]
    dep_outputs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, tasks: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ..., seq: _Optional[int] = ..., task_ids: _Optional[_Iterable[str]] = ..., attempts: _Optional[_Iterable[int]] = ..., payloads: _Optional[_Iterable[bytes]] = ..., kind: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., dep_counts: _Optional[_Iterable[int]] = ..., dep_task_ids: _Optional[_Iterable[str]] = ..., dep_outputs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HostResult(_message.Message):
    __slots__ = ("task_id", "attempt", "output", "error")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    output: bytes
    error: _types_pb2.TaskError
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., output: _Optional[bytes] = ..., error: _Optional[_Union[_types_pb2.TaskError, _Mapping]] = ...) -> None: ...

class HostResultBatch(_message.Message):
    __slots__ = ("results", "task_ids", "attempts", "outputs")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[HostResult]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    attempts: _containers.RepeatedScalarFieldContainer[int]
    outputs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, results: _Optional[_Iterable[_Union[HostResult, _Mapping]]] = ..., task_ids: _Optional[_Iterable[str]] = ..., attempts: _Optional[_Iterable[int]] = ..., outputs: _Optional[_Iterable[bytes]] = ...) -> None: ...
