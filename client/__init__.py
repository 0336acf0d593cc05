"""Swarm client SDK: submit tasks to a Swarm orchestrator and get their results.

```python
from swarm.client import AsyncClient

async with AsyncClient() as client:           # $SWARM_ADDRESS, else 127.0.0.1:50051
    futs = await client.map("echo", [b"a", b"b", b"c"])
    print(await client.gather(futs))
```

`AsyncClient` is the implementation; `Client` is a thin blocking face over it for scripts and
notebooks. Errors are one hierarchy under `SwarmError`. Payloads: bytes pass through untouched,
Python values go through a `Codec` (JSON by default; never pickle).
"""

from swarm.client._admin import TaskInfo
from swarm.client._client import SPREAD_LABEL, AsyncClient
from swarm.client._codec import Codec, JsonCodec
from swarm.client._errors import (
    REASON_ERRORS,
    STATUS_ERRORS,
    Backpressure,
    DeadlineExceeded,
    DependencyFailed,
    HostLost,
    NotFound,
    Rejected,
    SwarmError,
    TaskCancelled,
    TaskError,
    TaskFailed,
    TaskTimedOut,
    Unavailable,
)
from swarm.client._future import TaskFuture
from swarm.client._graph import Graph, Node
from swarm.client._sync import Client, SyncTaskFuture
from swarm.client._types import ClientInfo, ClusterStatus, HostInfo, Vote

__all__ = [
    "REASON_ERRORS",
    "SPREAD_LABEL",
    "STATUS_ERRORS",
    "AsyncClient",
    "Backpressure",
    "Client",
    "ClientInfo",
    "ClusterStatus",
    "Codec",
    "DeadlineExceeded",
    "DependencyFailed",
    "Graph",
    "HostInfo",
    "HostLost",
    "JsonCodec",
    "Node",
    "NotFound",
    "Rejected",
    "SwarmError",
    "SyncTaskFuture",
    "TaskCancelled",
    "TaskError",
    "TaskFailed",
    "TaskFuture",
    "TaskInfo",
    "TaskTimedOut",
    "Unavailable",
    "Vote",
]
