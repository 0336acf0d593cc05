"""What a handler gets besides its payload."""

from __future__ import annotations

import logging
from typing import Any


class Agent:
    """A unit of concurrency in a host: an id and private state kept across the tasks it runs.

    Idle agents are plain objects (no coroutine, no asyncio.Task), so a host can hold hundreds
    of thousands of them at a few dozen bytes each.
    """

    __slots__ = ("_state", "done", "id")

    def __init__(self, agent_id: int) -> None:
        self.id = agent_id
        self._state: dict[str, Any] | None = None
        self.done = 0

    @property
    def state(self) -> dict[str, Any]:
        if self._state is None:
            self._state = {}
        return self._state


class TaskContext:
    """Passed to every handler call.

    task_id, attempt, kind: which execution this is. deps: outputs of the task's dependencies
    (bytes, in depends_on order). state: the running agent's private dict. resources: host-wide
    objects created once by the @on_startup hooks. log: the host's task logger.
    """

    __slots__ = ("_dep_ids", "agent", "attempt", "deps", "kind", "labels", "resources", "task_id")

    log = logging.getLogger("swarm.task")

    def __init__(
        self,
        task_id: str,
        attempt: int,
        kind: str,
        agent: Agent,
        resources: dict[str, Any],
        deps: list[bytes],
        dep_ids: list[str],
        labels: dict[str, str],
    ) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.kind = kind
        self.agent = agent
        self.resources = resources
        self.deps = deps
        self._dep_ids = dep_ids
        self.labels = labels

    @property
    def state(self) -> dict[str, Any]:
        return self.agent.state

    @property
    def agent_id(self) -> int:
        return self.agent.id

    @property
    def dep_outputs(self) -> dict[str, bytes]:
        """Dependency outputs by task id."""
        return dict(zip(self._dep_ids, self.deps, strict=True))
