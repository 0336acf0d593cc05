"""What a handler gets besides its payload."""

from __future__ import annotations

import logging
from typing import Any

_NO_LABELS: dict[str, str] = {}  # shared by every task without labels: read-only in practice


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
    (bytes, in depends_on order). labels: the task's labels. state: the running agent's private
    dict. resources: host-wide objects created once by the @on_startup hooks. log: the host's
    task logger.

    On a host the context is the host's own record of the attempt (`executor.Job` extends it,
    so that an in-flight task is one object, not two: W6 measures it); its other attributes are
    the host's, not part of this API. Construct one directly to call a handler in a unit test.
    """

    __slots__ = ("_deps", "_labels", "agent", "attempt", "key", "kind", "resources")

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
        self.key = task_id
        self.attempt = attempt
        self.kind = kind
        self.agent = agent
        self.resources = resources
        if len(dep_ids) != len(deps):
            raise ValueError(f"{len(dep_ids)} dependency ids for {len(deps)} outputs")
        # The ids and the outputs of the dependencies, in depends_on order (two lists, not a
        # pair per dependency: `deps` is then one copy in C).
        self._deps: tuple[list[str], list[bytes]] | None = (dep_ids, deps)
        self._labels: dict[str, str] | None = labels

    @property
    def task_id(self) -> str:
        return self.key

    @property
    def deps(self) -> list[bytes]:
        """Outputs of the task's dependencies, in depends_on order (a new list per read)."""
        deps = self._deps
        return list(deps[1]) if deps is not None else []

    @property
    def labels(self) -> dict[str, str]:
        return self._labels or _NO_LABELS

    @property
    def state(self) -> dict[str, Any]:
        return self.agent.state

    @property
    def agent_id(self) -> int:
        return self.agent.id

    @property
    def dep_outputs(self) -> dict[str, bytes]:
        """Dependency outputs by task id."""
        deps = self._deps
        return dict(zip(deps[0], deps[1], strict=True)) if deps is not None else {}
