"""Byte budgets: what one item costs on the wire and in memory, and how batches are cut.

Every message Swarm sends is bounded by bytes as well as by count: a batch (of assignments to
a host, of results to a client) takes items while their sizes stay within BATCH_BYTES, and
always at least one, so no batch is larger than its largest item. An item is never larger
than MAX_ITEM_BYTES, which stays below the gRPC message limit (common/grpc_options.py): a task
whose assignment (payload plus its dependencies' outputs) or result could not fit is refused
at submit when that is known then, or failed with TOO_LARGE when it becomes known, and never
sent. A message over the limit would break the stream it is written to, and a broken host
stream loses the host and moves its work on: to the next host, forever.

Sizes are upper bounds counted from lengths the core has anyway (`len(payload)`,
`len(output)`): the big fields exactly, the small ones (ids, kind, numbers, protobuf framing)
as a fixed allowance; the few variable small fields (dependency ids, labels, error text) are
counted when present. No message is encoded twice to learn its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from swarm.common.grpc_options import BATCH_BYTES, MAX_ITEM_BYTES
from swarm.server.model import FailureReason, Rejected, TaskError

if TYPE_CHECKING:
    from swarm.server.model import Task

__all__ = [
    "BATCH_BYTES",
    "MAX_ITEM_BYTES",
    "TASK_MEMORY_BYTES",
    "Tally",
    "assignment_bytes",
    "clip_error",
    "deps_bytes",
    "fan_in_refusal",
    "held_bytes",
    "result_bytes",
    "too_large",
]

# One item's small fields (task key, kind, attempt, state, host id, framing): typically about
# 100 bytes, so a batch of small tasks is cut by count (4096), not by this. It need not be an
# upper bound: those fields are at most ~4 KB each (ids <= 385 characters of up to 4 bytes),
# so a full batch of 4096 carries at most 16 MiB of them over BATCH_BYTES, and a single item
# at most 4 KB over MAX_ITEM_BYTES: both well within the 64 MiB limit.
ITEM_OVERHEAD_BYTES = 256
# What a Task object costs beyond its payload and output: its slots, its table and outbox
# entries, the key string (measured about 600 bytes on CPython 3.12; rounded up).
TASK_MEMORY_BYTES = 1024


class Tally:
    """A running byte total shared by the parts that add to it and take from it."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


def deps_bytes(deps: Sequence[Task]) -> int:
    """What a task's dependencies add to its assignment: each one's id and output."""
    size = 0
    for d in deps:  # a plain loop: a task has a few, and this runs for every DAG task
        size += len(d.output) + 4 * len(d.id) + 16
    return size


def _labels_bytes(labels: dict[str, str]) -> int:
    return sum(4 * (len(k) + len(v)) + 16 for k, v in labels.items())


def assignment_bytes(task: Task) -> int:
    """An upper bound of the task's Assignment message on the wire."""
    size = len(task.payload) + ITEM_OVERHEAD_BYTES
    if task.deps:
        size += deps_bytes(task.deps)
    if task.labels:
        size += _labels_bytes(task.labels)
    return size


def _error_bytes(task: Task) -> int:
    e = task.error
    if e is None:
        return 0
    return 4 * (len(e.type) + len(e.message) + len(e.traceback))


def result_bytes(task: Task) -> int:
    """An upper bound of the task's TaskResult message on the wire."""
    return len(task.output) + ITEM_OVERHEAD_BYTES + _error_bytes(task)


def held_bytes(task: Task) -> int:
    """What holding a finished task costs the orchestrator: its payload (kept to recognise a
    resubmission), its output or error, and the object itself."""
    size = len(task.payload) + len(task.output) + TASK_MEMORY_BYTES
    return size if task.error is None else size + _error_bytes(task)


# Error text a host reports is kept up to these many characters (the rest is cut, marked):
# like an output, it is held until acknowledged and sent in result batches.
MAX_ERROR_MESSAGE_CHARS = 16 * 1024
MAX_TRACEBACK_CHARS = 64 * 1024


def clip_error(error: TaskError) -> TaskError:
    """The error as the orchestrator keeps it: type, message and traceback cut to bounds."""
    if (
        len(error.message) <= MAX_ERROR_MESSAGE_CHARS
        and len(error.traceback) <= MAX_TRACEBACK_CHARS
        and len(error.type) <= MAX_ERROR_MESSAGE_CHARS
    ):
        return error
    return TaskError(
        error.reason,
        _clip(error.type, MAX_ERROR_MESSAGE_CHARS),
        _clip(error.message, MAX_ERROR_MESSAGE_CHARS),
        _clip(error.traceback, MAX_TRACEBACK_CHARS),
    )


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters cut]"


def too_large(what: str, size: int, limit: int) -> TaskError:
    return TaskError(
        FailureReason.TOO_LARGE,
        "TooLarge",
        f"{what} is {size} bytes, over the limit of {limit}: a message that large cannot be sent",
    )


def fan_in_refusal(task: Task, deps: Sequence[Task | None], i: int) -> Rejected | None:
    """INVALID_ARGUMENT naming tasks[i].depends_on when the finished dependencies' outputs
    alone take the task's assignment over MAX_ITEM_BYTES (None for a dependency that is new
    in the batch, so its output is not known yet)."""
    outputs = 0
    size = len(task.payload) + ITEM_OVERHEAD_BYTES
    for d in deps:  # one plain loop: this runs for every task of every DAG batch
        if d is not None:
            outputs += len(d.output)
            size += 4 * len(d.id) + 16
    size += outputs + (_labels_bytes(task.labels) if task.labels else 0)
    if size <= MAX_ITEM_BYTES:
        return None
    # INVALID_ARGUMENT, not RESOURCE_EXHAUSTED: retrying it later would never help.
    return Rejected(
        "INVALID_ARGUMENT",
        f"tasks[{i}].depends_on",
        f"the assignment would carry {size} bytes: the payload ({len(task.payload)}) and "
        f"the outputs of {len(deps)} dependencies ({outputs}), over the limit of "
        f"{MAX_ITEM_BYTES} bytes for one task: pass fewer or smaller outputs",
    )
