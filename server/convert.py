"""Protobuf at the edge: checked conversion of wire messages into domain types and back.

Every check names the field it refuses, and `tasks_from_specs` validates a whole batch before
the core sees any of it, so a bad request changes nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

from swarm.server.config import OrchestratorConfig
from swarm.server.core_tasks import HostResult
from swarm.server.hosts import HostHello, HostLoad
from swarm.server.keys import DEFAULT_NAMESPACE, NS_SEP, key_safe, task_key
from swarm.server.model import FailureReason, Rejected, Task, TaskError
from swarm.v1 import host_pb2, task_pb2, types_pb2

MAX_ID_CHARS = 256
MAX_KIND_CHARS = 128
MAX_LABELS = 64
MAX_LABEL_CHARS = 256
MAX_RETRIES = 100


def _bad(field: str, message: str) -> Rejected:
    return Rejected("INVALID_ARGUMENT", field, message)


def check_name(value: str, field: str, limit: int) -> str:
    if not value:
        raise _bad(field, "must not be empty")
    if len(value) > limit:
        raise _bad(field, f"longer than {limit} characters")
    if not key_safe(value):
        raise _bad(field, "must hold printable characters only")
    return value


def namespace_of(value: str) -> str:
    if not value:
        return DEFAULT_NAMESPACE
    return check_name(value, "namespace", MAX_KIND_CHARS)


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise _bad(field, f"must be a finite number >= 0, got {value}")
    return value


class SpecReader:
    """Turns TaskSpec batches into Tasks. Keeps the kinds it has checked, so checks are O(1)."""

    def __init__(self, config: OrchestratorConfig) -> None:
        self.config = config
        self._good_kinds: set[str] = set()
        self.picked_ids = False  # whether the last batch read had tasks without an id

    def read(
        self, specs: Sequence[types_pb2.TaskSpec], namespace: str
    ) -> tuple[list[Task], list[list[str]] | None]:
        cfg = self.config
        if not specs:
            raise _bad("tasks", "must hold at least one task")
        if len(specs) > cfg.max_batch:
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                "tasks",
                f"{len(specs)} tasks in one batch, limit {cfg.max_batch}",
            )
        tasks: list[Task] = []
        dep_keys: list[list[str]] | None = None
        good_kinds = self._good_kinds
        default_retries = cfg.default_max_retries
        max_payload = cfg.max_payload_bytes
        plain_ns = namespace == DEFAULT_NAMESPACE
        picked = False
        for i, spec in enumerate(specs):
            task_id = spec.id
            if task_id:
                # keys.key_safe inlined (a call per task); check_name then says what is wrong.
                if len(task_id) > MAX_ID_CHARS or not task_id.isprintable() or NS_SEP in task_id:
                    check_name(task_id, f"tasks[{i}].id", MAX_ID_CHARS)
            else:
                # 128 random bits: one submit must not reveal the ids of anyone else's tasks.
                task_id = f"s-{os.urandom(16).hex()}"
                picked = True
            kind = spec.kind
            if kind not in good_kinds:
                check_name(kind, f"tasks[{i}].kind", MAX_KIND_CHARS)
                if len(good_kinds) < 10_000:
                    good_kinds.add(kind)
            payload = spec.payload
            if len(payload) > max_payload:
                raise Rejected(
                    "RESOURCE_EXHAUSTED",
                    f"tasks[{i}].payload",
                    f"{len(payload)} bytes, limit {max_payload}",
                )
            task = Task(
                task_id, kind, payload, key=None if plain_ns else task_key(namespace, task_id)
            )
            task.priority = spec.priority
            if spec.timeout_s:
                task.timeout_s = _finite(spec.timeout_s, f"tasks[{i}].timeout_s")
            if spec.schedule_timeout_s:
                task.schedule_timeout_s = _finite(
                    spec.schedule_timeout_s, f"tasks[{i}].schedule_timeout_s"
                )
            if spec.HasField("max_retries"):
                if spec.max_retries > MAX_RETRIES:
                    raise _bad(f"tasks[{i}].max_retries", f"at most {MAX_RETRIES}")
                task.max_retries = spec.max_retries
            else:
                task.max_retries = default_retries
            if spec.non_retryable:
                task.non_retryable = frozenset(spec.non_retryable)
            if spec.labels:
                task.labels = _labels(spec.labels, i)
            if spec.depends_on:
                deps = spec.depends_on
                if len(deps) > cfg.max_depends_on:
                    raise Rejected(
                        "RESOURCE_EXHAUSTED",
                        f"tasks[{i}].depends_on",
                        f"{len(deps)} dependencies, limit {cfg.max_depends_on}",
                    )
                if dep_keys is None:
                    dep_keys = [[] for _ in specs]
                for j, dep in enumerate(deps):
                    if not dep or len(dep) > MAX_ID_CHARS or NS_SEP in dep:  # no escapes
                        raise _bad(f"tasks[{i}].depends_on[{j}]", "not a valid task id")
                dep_keys[i] = [task_key(namespace, d) for d in deps] if not plain_ns else list(deps)
            tasks.append(task)
        self.picked_ids = picked
        return tasks, dep_keys


def _labels(labels: Mapping[str, str], i: int) -> dict[str, str]:
    out: dict[str, str] = dict(labels)
    if len(out) > MAX_LABELS:
        raise Rejected("RESOURCE_EXHAUSTED", f"tasks[{i}].labels", f"more than {MAX_LABELS}")
    for k, v in out.items():
        if len(k) > MAX_LABEL_CHARS or len(v) > MAX_LABEL_CHARS:
            raise _bad(
                f"tasks[{i}].labels[{k[:40]!r}]", f"longer than {MAX_LABEL_CHARS} characters"
            )
    return out


# ---- host side ----------------------------------------------------------------------------------


def hello_from_pb(msg: host_pb2.HostHello) -> HostHello:
    check_name(msg.host_id, "hello.host_id", MAX_ID_CHARS)
    kinds = frozenset(msg.kinds)
    for k in kinds:
        check_name(k, "hello.kinds", MAX_KIND_CHARS)
    return HostHello(
        host_id=msg.host_id,
        pid=msg.pid,
        hostname=msg.hostname,
        kinds=kinds,
        capacity=msg.capacity,
        max_capacity=max(msg.max_capacity, msg.capacity),
        session=msg.session,
        running=tuple((a.task_id, a.attempt) for a in msg.running),
    )


def load_from_pb(hb: host_pb2.Heartbeat) -> HostLoad:
    return HostLoad(
        running=hb.running,
        free=hb.free,
        local_queue=hb.local_queue,
        loop_lag_ms=hb.loop_lag_ms,
        cpu_percent=hb.cpu_percent,
        rss_bytes=hb.rss_bytes,
        tasks_done=hb.tasks_done,
    )


def results_from_pb(batch: host_pb2.HostResultBatch) -> list[HostResult]:
    out: list[HostResult] = []
    append = out.append
    for r in batch.results:
        if r.HasField("error"):
            e = r.error
            error = TaskError(FailureReason(e.reason or 1), e.type, e.message, e.traceback)
            append((r.task_id, r.attempt, b"", error))
        else:
            append((r.task_id, r.attempt, r.output, None))
    return out


def attempts_from_pb(batch: host_pb2.AttemptBatch) -> list[tuple[str, int]]:
    return [(a.task_id, a.attempt) for a in batch.attempts]


def assignments_to_pb(tasks: Sequence[Task], msg: host_pb2.OrchestratorMessage) -> None:
    add = msg.assign.tasks.add
    for t in tasks:
        a = add(task_id=t.key, attempt=t.attempt, kind=t.kind, payload=t.payload)
        if t.timeout_s:
            a.timeout_s = t.timeout_s
        if t.lost_with:
            a.report_start = True
        if t.deps:
            dep_add = a.deps.add
            for d in t.deps:
                dep_add(task_id=d.id, output=d.output)
        if t.labels:
            a.labels.update(t.labels)


# ---- client side --------------------------------------------------------------------------------


def result_to_pb(t: Task, r: types_pb2.TaskResult) -> None:
    r.task_id = t.id
    r.state = t.state  # type: ignore[assignment]
    r.attempts = t.attempt
    if t.host_id:
        r.host_id = t.host_id
    if t.error is None:
        r.output = t.output
    else:
        e = t.error
        r.error.reason = e.reason  # type: ignore[assignment]
        r.error.type = e.type
        r.error.message = e.message
        r.error.traceback = e.traceback


def results_to_pb(tasks: Sequence[Task], msg: task_pb2.ServerMessage) -> None:
    add = msg.results.results.add
    for t in tasks:
        if t.error is None:
            # host_id too: the SDK exposes it (TaskFuture.host_id, Vote.hosts) for successes.
            add(
                task_id=t.id,
                state=t.state,
                output=t.output,
                attempts=t.attempt,
                host_id=t.host_id or "",
            )
        else:
            result_to_pb(t, add())
