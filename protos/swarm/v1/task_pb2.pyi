from swarm.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClientMessage(_message.Message):
    __slots__ = ("open", "submit", "ack", "cancel")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    open: OpenSession
    submit: SubmitBatch
    ack: AckBatch
    cancel: CancelRequest
    def __init__(self, open: _Optional[_Union[OpenSession, _Mapping]] = ..., submit: _Optional[_Union[SubmitBatch, _Mapping]] = ..., ack: _Optional[_Union[AckBatch, _Mapping]] = ..., cancel: _Optional[_Union[CancelRequest, _Mapping]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("opened", "submitted", "results")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    opened: SessionOpened
    submitted: SubmitReply
    results: _types_pb2.ResultBatch
    def __init__(self, opened: _Optional[_Union[SessionOpened, _Mapping]] = ..., submitted: _Optional[_Union[SubmitReply, _Mapping]] = ..., results: _Optional[_Union[_types_pb2.ResultBatch, _Mapping]] = ...) -> None: ...

class OpenSession(_message.Message):
    __slots__ = ("client_id", "namespace", "column_results")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_RESULTS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    namespace: str
    column_results: bool
    def __init__(self, client_id: _Optional[str] = ..., namespace: _Optional[str] = ..., column_results: _Optional[bool] = ...) -> None: ...

class SessionOpened(_message.Message):
    __slots__ = ("client_id", "pending_results", "max_batch", "column_depends_on")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PENDING_RESULTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    COLUMN_DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    pending_results: int
    max_batch: int
    column_depends_on: bool
    def __init__(self, client_id: _Optional[str] = ..., pending_results: _Optional[int] = ..., max_batch: _Optional[int] = ..., column_depends_on: _Optional[bool] = ...) -> None: ...

class SubmitBatch(_message.Message):
    __slots__ = ("batch_id", "tasks", "ids", "payloads", "kind", "dep_counts", "depends_on")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    PAYLOADS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEP_COUNTS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    tasks: _containers.RepeatedCompositeFieldContainer[_types_pb2.TaskSpec]
    ids: _containers.RepeatedScalarFieldContainer[str]
    payloads: _containers.RepeatedScalarFieldContainer[bytes]
    kind: str
    dep_counts: _containers.RepeatedScalarFieldContainer[int]
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[_types_pb2.TaskSpec, _Mapping]]] = ..., ids: _Optional[_Iterable[str]] = ..., payloads: _Optional[_Iterable[bytes]] = ..., kind: _Optional[str] = ..., dep_counts: _Optional[_Iterable[int]] = ..., depends_on: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("batch_id", "code", "message", "field", "accepted", "duplicates", "task_ids")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    code: int
    message: str
    field: str
    accepted: int
    duplicates: _containers.RepeatedScalarFieldContainer[str]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., accepted: _Optional[int] = ..., duplicates: _Optional[_Iterable[str]] = ..., task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AckBatch(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("client_id", "namespace", "tasks")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    namespace: str
    tasks: _containers.RepeatedCompositeFieldContainer[_types_pb2.TaskSpec]
    def __init__(self, client_id: _Optional[str] = ..., namespace: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[_types_pb2.TaskSpec, _Mapping]]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("task_ids", "duplicates")
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    duplicates: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ..., duplicates: _Optional[_Iterable[str]] = ...) -> None: ...

class WaitRequest(_message.Message):
    __slots__ = ("namespace", "task_ids", "timeout_s", "any")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    timeout_s: float
    any: bool
    def __init__(self, namespace: _Optional[str] = ..., task_ids: _Optional[_Iterable[str]] = ..., timeout_s: _Optional[float] = ..., any: _Optional[bool] = ...) -> None: ...

class WaitResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_types_pb2.TaskResult]
    def __init__(self, results: _Optional[_Iterable[_Union[_types_pb2.TaskResult, _Mapping]]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("namespace", "task_ids")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, namespace: _Optional[str] = ..., task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("states",)
    STATES_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_types_pb2.TaskState]
    def __init__(self, states: _Optional[_Iterable[_Union[_types_pb2.TaskState, str]]] = ...) -> None: ...

class GetTasksRequest(_message.Message):
    __slots__ = ("namespace", "task_ids")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, namespace: _Optional[str] = ..., task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskInfo]
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskInfo, _Mapping]]] = ...) -> None: ...

class TaskInfo(_message.Message):
    __slots__ = ("task_id", "kind", "state", "attempt", "host_id", "result")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: str
    state: _types_pb2.TaskState
    attempt: int
    host_id: str
    result: _types_pb2.TaskResult
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[_Union[_types_pb2.TaskState, str]] = ..., attempt: _Optional[int] = ..., host_id: _Optional[str] = ..., result: _Optional[_Union[_types_pb2.TaskResult, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClusterStatus(_message.Message):
    __slots__ = ("hosts", "queues", "tasks", "uptime_s", "stale_results", "clients", "hosts_lost")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    STALE_RESULTS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_LOST_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostStatus]
    queues: _containers.RepeatedCompositeFieldContainer[KindQueue]
    tasks: TaskCounts
    uptime_s: float
    stale_results: int
    clients: _containers.RepeatedCompositeFieldContainer[ClientStatus]
    hosts_lost: int
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostStatus, _Mapping]]] = ..., queues: _Optional[_Iterable[_Union[KindQueue, _Mapping]]] = ..., tasks: _Optional[_Union[TaskCounts, _Mapping]] = ..., uptime_s: _Optional[float] = ..., stale_results: _Optional[int] = ..., clients: _Optional[_Iterable[_Union[ClientStatus, _Mapping]]] = ..., hosts_lost: _Optional[int] = ...) -> None: ...

class ClientStatus(_message.Message):
    __slots__ = ("client_id", "connected", "unacked_results")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    UNACKED_RESULTS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    connected: bool
    unacked_results: int
    def __init__(self, client_id: _Optional[str] = ..., connected: _Optional[bool] = ..., unacked_results: _Optional[int] = ...) -> None: ...

class HostStatus(_message.Message):
    __slots__ = ("host_id", "pid", "hostname", "state", "kinds", "agents", "max_agents", "running", "assigned", "free", "loop_lag_ms", "cpu_percent", "rss_bytes", "tasks_done", "last_seen_ago_s", "local_queue")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGENTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    LOOP_LAG_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    TASKS_DONE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AGO_S_FIELD_NUMBER: _ClassVar[int]
    LOCAL_QUEUE_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    pid: int
    hostname: str
    state: _types_pb2.HostState
    kinds: _containers.RepeatedScalarFieldContainer[str]
    agents: int
    max_agents: int
    running: int
    assigned: int
    free: int
    loop_lag_ms: float
    cpu_percent: float
    rss_bytes: int
    tasks_done: int
    last_seen_ago_s: float
    local_queue: int
    def __init__(self, host_id: _Optional[str] = ..., pid: _Optional[int] = ..., hostname: _Optional[str] = ..., state: _Optional[_Union[_types_pb2.HostState, str]] = ..., kinds: _Optional[_Iterable[str]] = ..., agents: _Optional[int] = ..., max_agents: _Optional[int] = ..., running: _Optional[int] = ..., assigned: _Optional[int] = ..., free: _Optional[int] = ..., loop_lag_ms: _Optional[float] = ..., cpu_percent: _Optional[float] = ..., rss_bytes: _Optional[int] = ..., tasks_done: _Optional[int] = ..., last_seen_ago_s: _Optional[float] = ..., local_queue: _Optional[int] = ...) -> None: ...

class KindQueue(_message.Message):
    __slots__ = ("kind", "queued", "waiting_for_host")
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_HOST_FIELD_NUMBER: _ClassVar[int]
    kind: str
    queued: int
    waiting_for_host: bool
    def __init__(self, kind: _Optional[str] = ..., queued: _Optional[int] = ..., waiting_for_host: _Optional[bool] = ...) -> None: ...

class TaskCounts(_message.Message):
    __slots__ = ("pending", "queued", "assigned", "running", "succeeded", "failed", "cancelled")
    PENDING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    pending: int
    queued: int
    assigned: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    def __init__(self, pending: _Optional[int] = ..., queued: _Optional[int] = ..., assigned: _Optional[int] = ..., running: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ...) -> None: ...

class DrainHostRequest(_message.Message):
    __slots__ = ("host_id", "grace_s")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_S_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    grace_s: float
    def __init__(self, host_id: _Optional[str] = ..., grace_s: _Optional[float] = ...) -> None: ...

class DrainHostResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _types_pb2.HostState
    def __init__(self, state: _Optional[_Union[_types_pb2.HostState, str]] = ...) -> None: ...
