"""What both harnesses offer a caller about their orchestrator: a channel, a stub, its status.

`LocalSwarm` (processes) and `InProcessSwarm` (one process) differ in how they run a swarm,
not in how a test or a script looks at it, so the looking lives here once.
"""

from __future__ import annotations

import grpc
from swarm.common.credentials import Credentials
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2


class OrchestratorView:
    """Mixed into a harness that has an `address`; `close_channel()` when the swarm stops."""

    _channel: grpc.Channel | None = None
    credentials: Credentials | None = None  # None: SWARM_* variables and $SWARM_HOME

    @property
    def address(self) -> str:
        raise NotImplementedError

    @property
    def channel(self) -> grpc.Channel:
        """A blocking channel to the orchestrator, owned (and closed) by the swarm."""
        if self._channel is None:
            self._channel = self._credentials().channel(self.address)
        return self._channel

    @property
    def stub(self) -> task_pb2_grpc.TaskServiceStub:
        return self._credentials().bind(task_pb2_grpc.TaskServiceStub(self.channel))

    def _credentials(self) -> Credentials:
        if self.credentials is None:
            self.credentials = Credentials.resolve()  # once: it reads files
        return self.credentials

    def status(self, timeout_s: float = 5.0) -> task_pb2.ClusterStatus:
        reply: task_pb2.ClusterStatus = self.stub.GetStatus(
            task_pb2.GetStatusRequest(), timeout=timeout_s
        )
        return reply

    def active_hosts(self) -> list[task_pb2.HostStatus]:
        return [h for h in self.status().hosts if h.state == types_pb2.ACTIVE]

    def close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
