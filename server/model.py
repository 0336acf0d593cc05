"""Domain types of the orchestrator: task and host life cycles, tasks, results.

The enums reuse the wire numbers of `swarm.v1` so conversion at the edges is an int copy, but
nothing here imports protobuf: the scheduling core works on these types alone.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mypy_extensions import mypyc_attr

if TYPE_CHECKING:
    from swarm.server.suspects import Group, Loss

from swarm.server.journal_base import ATTEMPT_BLOCK

# Tasks labelled with one value of this key are placed on distinct hosts where there are
# enough (replicated voting).
SPREAD_LABEL = "swarm.spread"


class TaskState(enum.IntEnum):
    PENDING = 1  # waiting for dependencies
    QUEUED = 2  # ready, waiting for a host with credit (or for its retry backoff)
    ASSIGNED = 3  # sent to a host, not yet started there
    RUNNING = 4  # started by an agent on its host
    SUCCEEDED = 5  # final: output available
    FAILED = 6  # final: error available
    CANCELLED = 7  # final: cancelled by a client

    @property
    def final(self) -> bool:
        return self >= TaskState.SUCCEEDED


FINAL_STATES = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})

# Every legal edge of the task life cycle; `Task.move` refuses the others.
_S = TaskState
TASK_EDGES: frozenset[tuple[TaskState, TaskState]] = frozenset(
    {
        (_S.PENDING, _S.QUEUED),  # last dependency succeeded
        (_S.PENDING, _S.FAILED),  # a dependency failed
        (_S.PENDING, _S.CANCELLED),
        (_S.QUEUED, _S.ASSIGNED),  # placed on a host
        (_S.QUEUED, _S.FAILED),  # schedule timeout
        (_S.QUEUED, _S.CANCELLED),
        (_S.ASSIGNED, _S.RUNNING),  # the host started it
        (_S.ASSIGNED, _S.QUEUED),  # host lost or handed back unstarted
        (_S.ASSIGNED, _S.SUCCEEDED),  # result overtook its started notice
        (_S.ASSIGNED, _S.FAILED),
        (_S.ASSIGNED, _S.CANCELLED),
        (_S.RUNNING, _S.QUEUED),  # retry, or host lost
        (_S.RUNNING, _S.SUCCEEDED),
        (_S.RUNNING, _S.FAILED),
        (_S.RUNNING, _S.CANCELLED),
    }
)
# The same edges by origin, for `Task.move` (a lookup per move, no tuple made and hashed).
_TASK_NEXT: dict[TaskState, frozenset[TaskState]] = {
    state: frozenset(to for was, to in TASK_EDGES if was is state) for state in TaskState
}


class Rejected(Exception):
    """A request refused whole, before anything changed. `code` is a grpc.StatusCode name."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.code = code
        self.field = field
        self.message = message


@mypyc_attr(native_class=False)  # mypyc: a builtin exception's subclass stays a Python class
class IllegalTransition(RuntimeError):
    """A state change that the life cycle does not allow: a bug, never user input."""


class FailureReason(enum.IntEnum):
    HANDLER_ERROR = 1  # the handler raised
    TIMEOUT = 2  # the handler ran past timeout_s
    DEPENDENCY_FAILED = 3  # a dependency ended FAILED or CANCELLED
    HOST_LOST = 4  # on max_host_losses lost hosts: a poison task
    SCHEDULE_TIMEOUT = 5  # no host started it within schedule_timeout_s
    NO_HANDLER = 6  # the host has no handler for the kind
    CANCELLED_BY_CLIENT = 7
    # Its assignment (payload plus dependencies' outputs) or its output is over the size one
    # message may carry (budgets.py): never sent, never retried.
    TOO_LARGE = 8


@dataclass(frozen=True, slots=True)
class TaskError:
    reason: FailureReason
    type: str = ""
    message: str = ""
    traceback: str = ""


class HostState(enum.IntEnum):
    JOINING = 1  # stream open, hello not yet processed
    ACTIVE = 2  # takes work
    DRAINING = 3  # finishes what it runs, takes nothing new; never treated as lost
    GONE = 4  # left cleanly
    SUSPECT = 5  # missed a heartbeat interval; still gets no new work
    LOST = 6  # stream broke or lease expired; its work was moved


_H = HostState
HOST_EDGES: frozenset[tuple[HostState, HostState]] = frozenset(
    {
        (_H.JOINING, _H.ACTIVE),
        (_H.JOINING, _H.GONE),
        (_H.JOINING, _H.LOST),
        (_H.ACTIVE, _H.DRAINING),
        (_H.ACTIVE, _H.SUSPECT),
        (_H.ACTIVE, _H.LOST),
        (_H.ACTIVE, _H.GONE),
        (_H.SUSPECT, _H.ACTIVE),
        (_H.SUSPECT, _H.LOST),
        (_H.SUSPECT, _H.DRAINING),
        (_H.SUSPECT, _H.GONE),
        (_H.DRAINING, _H.GONE),
        (_H.DRAINING, _H.LOST),  # its stream broke, or it overran the grace period
    }
)


class Task:
    """One accepted task: its spec, where it is in its life, and its outcome once final."""

    __slots__ = (
        "attempt",
        "attempt_base",
        "attempt_limit",
        "blamed",
        "client_id",
        "dependents",
        "deps",
        "error",
        "fence_floor",
        "finished_at",
        "group",
        "host_id",
        "host_losses",
        "id",
        "key",
        "kind",
        "labels",
        "lost_with",
        "max_retries",
        "non_retryable",
        "output",
        "payload",
        "priority",
        "queued_at",
        "retries",
        "schedule_timeout_s",
        "sent_seq",
        "started_at",
        "state",
        "timeout_s",
        "unmet",
        "watchers",
        "wire_bytes",
    )

    def __init__(
        self,
        id: str,
        kind: str,
        payload: bytes,
        *,
        key: str | None = None,
        client_id: str = "",
        deps: tuple[Task, ...] = (),
        priority: int = 0,
        timeout_s: float = 0.0,
        max_retries: int = 0,
        labels: dict[str, str] | None = None,
        schedule_timeout_s: float = 0.0,
        non_retryable: frozenset[str] = frozenset(),
    ) -> None:
        self.id = id  # as the client named it
        self.key = id if key is None else key  # unique across namespaces; what hosts see
        self.kind = kind
        self.payload = payload
        self.client_id = client_id
        self.deps = deps
        self.dependents: list[Task] | None = None
        self.unmet = 0
        self.priority = priority
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.labels = labels
        self.schedule_timeout_s = schedule_timeout_s
        self.non_retryable = non_retryable
        self.state = TaskState.PENDING
        self.attempt = 0  # number of the current (or last) attempt; 0: never sent
        # `attempt` less the attempts made (see `attempts`): the numbers an earlier incarnation
        # of the orchestrator reserved for the task fence, they were not all used.
        self.attempt_base = 0
        # Attempt numbers up to this one may have been sent by an earlier incarnation: a new
        # attempt is numbered above it (core_journal.py; 0 for a task this incarnation accepted).
        self.fence_floor = 0
        # The highest attempt number that may be sent without journaling a new reservation
        # (core_journal.py): fencing by attempt number holds across orchestrator restarts.
        self.attempt_limit = ATTEMPT_BLOCK
        self.host_id: str | None = None
        self.sent_seq: int | None = None  # AssignBatch seq that carried the current attempt
        # When the host reported the current attempt started; kept for tasks with a timeout_s.
        self.started_at: float | None = None
        self.host_losses = 0  # lost hosts it may have run on (blamed): the poison-task count
        self.lost_with = 0  # lost hosts it was on in any state
        # The deaths that blamed it and are not explained (suspects.py); None until blamed.
        self.blamed: list[Loss] | None = None
        self.group: Group | None = None  # the suspect group it waits in (queues.py), if any
        self.retries = 0
        self.queued_at: float | None = None
        self.finished_at: float | None = None
        self.output: bytes = b""
        self.error: TaskError | None = None
        # Clients other than client_id that submitted the id too; each is sent the result.
        self.watchers: list[str] | None = None
        # budgets.assignment_bytes, kept once its dependencies have succeeded (they no longer
        # change) so that cutting its AssignBatch does not count them again; 0: not counted.
        self.wire_bytes = 0

    def differs_from(self, other: Task, dep_keys: Sequence[str]) -> str:
        """The first spec field (as TaskSpec names it) in which `other`, submitted under this
        task's id with dependencies `dep_keys`, differs from it; "" when it is the same task.
        Only called for an id that is known already, so new ids pay nothing for it."""
        if other.kind != self.kind:
            return "kind"
        if other.payload != self.payload:
            return "payload"
        if tuple(dep_keys) != tuple(d.key for d in self.deps):
            return "depends_on"
        if other.priority != self.priority:
            return "priority"
        if other.timeout_s != self.timeout_s:
            return "timeout_s"
        if other.max_retries != self.max_retries:
            return "max_retries"
        if (other.labels or None) != (self.labels or None):
            return "labels"
        if other.schedule_timeout_s != self.schedule_timeout_s:
            return "schedule_timeout_s"
        if other.non_retryable != self.non_retryable:
            return "non_retryable"
        return ""

    def move(self, to: TaskState) -> None:
        if to not in _TASK_NEXT[self.state]:
            raise IllegalTransition(f"task {self.id}: {self.state.name} -> {to.name}")
        self.state = to

    @property
    def attempts(self) -> int:
        """The attempts made that the orchestrator knows of: what users are shown. `attempt` is
        the fencing number, which a restart moves past a whole block (ATTEMPT_BLOCK)."""
        return self.attempt - self.attempt_base

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.kind} {self.state.name} attempt={self.attempt}>"
