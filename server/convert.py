"""Protobuf at the edge: checked conversion of wire messages into domain types and back.

Every check names the field it refuses, and `tasks_from_specs` validates a whole batch before
the core sees any of it, so a bad request changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from swarm.server.config import OrchestratorConfig
from swarm.server.keys import DEFAULT_NAMESPACE, NS_SEP, key_safe, task_key
from swarm.server.model import Rejected, Task, TaskState
from swarm.v1 import task_pb2, types_pb2

MAX_ID_CHARS = 256
MAX_KIND_CHARS = 128
MAX_LABELS = 64
MAX_LABEL_CHARS = 256
MAX_RETRIES = 100
MAX_NON_RETRYABLE = 64
# The longest timeout_s and schedule_timeout_s: 30 days. Longer is a typo or an attack, and an
# event loop's timers overflow long before 1e308.
MAX_DURATION_S = 30 * 86400.0
_SUCCEEDED = TaskState.SUCCEEDED


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


def _duration(value: float, field: str) -> float:
    if not 0 <= value <= MAX_DURATION_S:  # NaN fails every comparison: refused as well
        raise _bad(field, f"must be a number within 0..{MAX_DURATION_S:g} s, got {value}")
    return value


def _all_good_ids(ids: Sequence[str]) -> bool:
    """Every id non-empty and key-safe: a loop over the lengths (C where compiled, which
    `max(map(len, ids))` is not) and one `isprintable` over their join (NS_SEP is not
    printable). Only when this is False are they checked one by one, to name the bad one."""
    for task_id in ids:
        if not task_id or len(task_id) > MAX_ID_CHARS:
            return False
    return "".join(ids).isprintable()


def _bad_id(value: str) -> bool:
    """keys.key_safe inlined (a call per task); check_name then says what is wrong."""
    return len(value) > MAX_ID_CHARS or not value.isprintable() or NS_SEP in value


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
        ids: list[str] = []  # the ids the client chose, checked together after the loop
        for i, spec in enumerate(specs):
            task_id = spec.id
            if task_id:
                ids.append(task_id)
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
                task.timeout_s = _duration(spec.timeout_s, f"tasks[{i}].timeout_s")
            if spec.schedule_timeout_s:
                task.schedule_timeout_s = _duration(
                    spec.schedule_timeout_s, f"tasks[{i}].schedule_timeout_s"
                )
            if spec.HasField("max_retries"):
                if spec.max_retries > MAX_RETRIES:
                    raise _bad(f"tasks[{i}].max_retries", f"at most {MAX_RETRIES}")
                task.max_retries = spec.max_retries
            else:
                task.max_retries = default_retries
            if spec.non_retryable:
                task.non_retryable = _names(spec.non_retryable, i)
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
                    if not dep or _bad_id(dep):
                        raise _bad(f"tasks[{i}].depends_on[{j}]", "not a valid task id")
                dep_keys[i] = [task_key(namespace, d) for d in deps] if not plain_ns else list(deps)
            tasks.append(task)
        if not _all_good_ids(ids):
            for i, spec in enumerate(specs):
                if spec.id and _bad_id(spec.id):
                    check_name(spec.id, f"tasks[{i}].id", MAX_ID_CHARS)
        self.picked_ids = picked
        return tasks, dep_keys

    def read_submit(
        self, batch: task_pb2.SubmitBatch, namespace: str
    ) -> tuple[list[Task], list[list[str]] | None]:
        """A Session's SubmitBatch in either form (task.proto, SubmitBatch)."""
        if not (batch.ids or batch.payloads):
            if batch.dep_counts or batch.depends_on:
                raise _bad(
                    "dep_counts" if batch.dep_counts else "depends_on",
                    "only with the column form (ids, payloads); in rows, use each task's "
                    "TaskSpec.depends_on",
                )
            return self.read(batch.tasks, namespace)
        if batch.tasks:
            raise _bad("tasks", "must be empty when ids or payloads (the column form) are set")
        ids, payloads = list(batch.ids), list(batch.payloads)
        if len(ids) != len(payloads):
            raise _bad("payloads", f"{len(payloads)} payloads for {len(ids)} ids")
        deps = None
        if batch.dep_counts or batch.depends_on:
            deps = self.read_dep_columns(list(batch.dep_counts), list(batch.depends_on), namespace)
            if len(deps) != len(ids):
                raise _bad("dep_counts", f"{len(deps)} counts for {len(ids)} ids")
        return self.read_columns(ids, batch.kind, payloads, namespace), deps

    def read_dep_columns(
        self, counts: list[int], deps: list[str], namespace: str
    ) -> list[list[str]]:
        """The column form's dependencies (task.proto, SubmitBatch.dep_counts): each task's
        dependency keys, checked as the row form checks them and named as it names them."""
        if sum(counts) != len(deps):
            raise _bad("depends_on", f"{len(deps)} ids, but dep_counts add up to {sum(counts)}")
        limit = self.config.max_depends_on
        if counts and max(counts) > limit:
            i = next(i for i, n in enumerate(counts) if n > limit)
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                f"tasks[{i}].depends_on",
                f"{counts[i]} dependencies, limit {limit}",
            )
        if not _all_good_ids(deps):
            at = 0
            for i, n in enumerate(counts):
                for j, dep in enumerate(deps[at : at + n]):
                    if not dep or _bad_id(dep):
                        raise _bad(f"tasks[{i}].depends_on[{j}]", "not a valid task id")
                at += n
        if namespace != DEFAULT_NAMESPACE:
            deps = [task_key(namespace, d) for d in deps]
        out: list[list[str]] = []
        add = out.append
        at = 0
        for n in counts:
            add(deps[at : at + n])
            at += n
        return out

    def read_columns(
        self, ids: list[str], kind: str, payloads: list[bytes], namespace: str
    ) -> list[Task]:
        """The column form: one kind, ids and payloads, every other field at its default. The
        same checks and field names as `read`, done per column where they can be."""
        cfg = self.config
        if len(ids) > cfg.max_batch:
            raise Rejected(
                "RESOURCE_EXHAUSTED",
                "tasks",
                f"{len(ids)} tasks in one batch, limit {cfg.max_batch}",
            )
        if kind not in self._good_kinds:
            check_name(kind, "tasks[0].kind", MAX_KIND_CHARS)
            if len(self._good_kinds) < 10_000:
                self._good_kinds.add(kind)
        max_payload = cfg.max_payload_bytes
        for i, payload in enumerate(payloads):  # a C loop where compiled
            if len(payload) > max_payload:
                raise Rejected(
                    "RESOURCE_EXHAUSTED",
                    f"tasks[{i}].payload",
                    f"{len(payload)} bytes, limit {max_payload}",
                )
        picked = False
        if not _all_good_ids(ids):  # a server-picked id (empty) or a bad one
            for i, task_id in enumerate(ids):
                if not task_id:
                    ids[i] = f"s-{os.urandom(16).hex()}"  # as in `read`
                    picked = True
                elif _bad_id(task_id):
                    check_name(task_id, f"tasks[{i}].id", MAX_ID_CHARS)
        self.picked_ids = picked
        retries = cfg.default_max_retries
        if namespace == DEFAULT_NAMESPACE:
            tasks = [
                Task(t, kind, p, max_retries=retries) for t, p in zip(ids, payloads, strict=True)
            ]
        else:
            tasks = [
                Task(t, kind, p, key=task_key(namespace, t), max_retries=retries)
                for t, p in zip(ids, payloads, strict=True)
            ]
        return tasks


def _labels(labels: Mapping[str, str], i: int) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise Rejected("RESOURCE_EXHAUSTED", f"tasks[{i}].labels", f"more than {MAX_LABELS}")
    out: dict[str, str] = dict(labels)
    for k, v in out.items():
        if not 0 < len(k) <= MAX_LABEL_CHARS or len(v) > MAX_LABEL_CHARS:
            raise _bad(
                f"tasks[{i}].labels[{k[:40]!r}]",
                f"keys 1..{MAX_LABEL_CHARS} characters, values at most {MAX_LABEL_CHARS}",
            )
        if not (k.isprintable() and v.isprintable()):
            raise _bad(f"tasks[{i}].labels[{k[:40]!r}]", "must hold printable characters only")
    return out


def _names(names: Sequence[str], i: int) -> frozenset[str]:
    if len(names) > MAX_NON_RETRYABLE:
        raise Rejected(
            "RESOURCE_EXHAUSTED",
            f"tasks[{i}].non_retryable",
            f"{len(names)} names, limit {MAX_NON_RETRYABLE}",
        )
    for j, name in enumerate(names):
        check_name(name, f"tasks[{i}].non_retryable[{j}]", MAX_LABEL_CHARS)
    return frozenset(names)


def check_ids(ids: Sequence[str], limit: int, field: str = "task_ids") -> None:
    """A list of task ids in a request: at most `limit`, each one a valid id (INVALID_ARGUMENT
    names it by index). One pass, before any lookup, so a refused request did no work."""
    if len(ids) > limit:
        raise Rejected("RESOURCE_EXHAUSTED", field, f"{len(ids)} ids in one call, limit {limit}")
    if not _all_good_ids(ids):
        for j, task_id in enumerate(ids):
            if not task_id or _bad_id(task_id):
                check_name(task_id, f"{field}[{j}]", MAX_ID_CHARS)


# ---- client side --------------------------------------------------------------------------------


def result_to_pb(t: Task, r: types_pb2.TaskResult) -> None:
    r.task_id = t.id
    r.state = t.state  # type: ignore[assignment]
    r.attempts = t.attempts
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


def results_to_columns(tasks: Sequence[Task], msg: task_pb2.ServerMessage) -> None:
    """`results_to_pb` for a session that asked for column_results (types.proto, ResultBatch):
    succeeded results as four columns, the others as TaskResult messages."""
    batch = msg.results
    ok = [t for t in tasks if t.state is _SUCCEEDED]
    if len(ok) < len(tasks):
        add = batch.results.add
        for t in tasks:
            if t.state is not _SUCCEEDED:
                result_to_pb(t, add())
    batch.ok_ids.extend([t.id for t in ok])
    batch.ok_outputs.extend([t.output for t in ok])
    batch.ok_attempts.extend([t.attempt for t in ok])
    batch.ok_host_ids.extend([t.host_id or "" for t in ok])


def results_to_pb(tasks: Sequence[Task], msg: task_pb2.ServerMessage) -> None:
    add = msg.results.results.add
    for t in tasks:
        if t.error is None:
            # host_id too: the SDK exposes it (TaskFuture.host_id, Vote.hosts) for successes.
            add(
                task_id=t.id,
                state=t.state,
                output=t.output,
                attempts=t.attempts,
                host_id=t.host_id or "",
            )
        else:
            result_to_pb(t, add())
