"""The host stream's messages at the edge: each is checked against the ranges host.proto
documents, whole, before any of it reaches the core, and converted in the same pass.

One reader per message kind; each raises `Rejected` naming the first field out of range, e.g.
`heartbeat.loop_lag_ms` or `results.results[3].attempt`, and the session then ends the stream
with INVALID_ARGUMENT (the host is lost as for a broken stream): a host that sends nonsense is
not trusted with work, and nothing of the bad message was applied. The per-item checks are a
comparison or two per field, folded into the conversion loop that runs anyway.

Free text a handler produced (an error's type, message and traceback) is cut to its limit
rather than refused: it is the task's outcome, not the host's protocol, and refusing it would
make every host that runs the task look broken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, repeat

from swarm.server.config import OrchestratorConfig
from swarm.server.convert import MAX_ID_CHARS, MAX_KIND_CHARS, check_name
from swarm.server.core_tasks import HostResult
from swarm.server.hosts import HostHello, HostLoad, HostView
from swarm.server.model import FailureReason, Rejected, Task, TaskError
from swarm.v1 import host_pb2

# A task key as hosts see it: namespace, separator, id.
MAX_KEY_CHARS = MAX_KIND_CHARS + 1 + MAX_ID_CHARS
MAX_HOSTNAME_CHARS = 256
MAX_KINDS = 1_024
# Attempts or results in one host message (a host holds at most its capacity plus a prefetch).
MAX_HOST_ITEMS = 1_000_000
# Heartbeat figures: an hour of event-loop lag, 1,024 busy cores, and counters a JavaScript
# number still holds exactly (2^53).
MAX_LOOP_LAG_MS = 3_600_000.0
MAX_CPU_PERCENT = 102_400.0
MAX_COUNTER = 2**53
MAX_GRACE_S = 3600.0
MAX_ERROR_TYPE_CHARS = 256
MAX_ERROR_MESSAGE_CHARS = 64 * 1024
MAX_TRACEBACK_CHARS = 256 * 1024
_REASONS = frozenset(int(r) for r in FailureReason)


def _bad(field: str, message: str) -> Rejected:
    return Rejected("INVALID_ARGUMENT", field, message)


def _count(n: int, field: str, limit: int) -> None:
    if n > limit:
        raise _bad(field, f"{n} items, limit {limit}")


def _at_most(value: int, field: str, limit: int) -> int:
    if value > limit:
        raise _bad(field, f"{value} is over the limit {limit}")
    return value


def _number(value: float, field: str, limit: float) -> float:
    if not 0 <= value <= limit:  # NaN fails every comparison, so it is refused here too
        raise _bad(field, f"must be a finite number within 0..{limit:g}, got {value}")
    return value


def attempts_from_pb(attempts: Sequence[host_pb2.Attempt], field: str) -> list[tuple[str, int]]:
    _count(len(attempts), field, MAX_HOST_ITEMS)
    out: list[tuple[str, int]] = []
    for i, a in enumerate(attempts):
        task_id, attempt = a.task_id, a.attempt
        if not 0 < len(task_id) <= MAX_KEY_CHARS:
            raise _bad(f"{field}[{i}].task_id", f"must hold 1..{MAX_KEY_CHARS} characters")
        if attempt == 0:
            raise _bad(f"{field}[{i}].attempt", "must be >= 1 (attempts are numbered from 1)")
        out.append((task_id, attempt))
    return out


def hello_from_pb(msg: host_pb2.HostHello, config: OrchestratorConfig) -> HostHello:
    check_name(msg.host_id, "hello.host_id", MAX_ID_CHARS)
    if len(msg.hostname) > MAX_HOSTNAME_CHARS or not msg.hostname.isprintable():
        raise _bad("hello.hostname", f"at most {MAX_HOSTNAME_CHARS} printable characters")
    _count(len(msg.kinds), "hello.kinds", MAX_KINDS)
    for i, k in enumerate(msg.kinds):
        check_name(k, f"hello.kinds[{i}]", MAX_KIND_CHARS)
    cap = config.max_host_capacity
    capacity = _at_most(msg.capacity, "hello.capacity", cap)
    max_capacity = _at_most(msg.max_capacity, "hello.max_capacity", cap)
    running = attempts_from_pb(msg.running, "hello.running")
    return HostHello(
        host_id=msg.host_id,
        pid=msg.pid,
        hostname=msg.hostname,
        kinds=frozenset(msg.kinds),
        capacity=capacity,
        max_capacity=max(max_capacity, capacity),
        session=msg.session,
        running=tuple(running),
    )


def heartbeat_from_pb(
    hb: host_pb2.Heartbeat, host: HostView, config: OrchestratorConfig
) -> tuple[HostLoad, dict[str, int] | None]:
    """The load it reports, and the attempts it holds when it asks for reconciliation."""
    cap = config.max_host_capacity
    load = HostLoad(
        running=_at_most(hb.running, "heartbeat.running", cap),
        free=_at_most(hb.free, "heartbeat.free", cap),
        local_queue=_at_most(hb.local_queue, "heartbeat.local_queue", MAX_HOST_ITEMS),
        loop_lag_ms=_number(hb.loop_lag_ms, "heartbeat.loop_lag_ms", MAX_LOOP_LAG_MS),
        cpu_percent=_number(hb.cpu_percent, "heartbeat.cpu_percent", MAX_CPU_PERCENT),
        rss_bytes=_at_most(hb.rss_bytes, "heartbeat.rss_bytes", MAX_COUNTER),
        tasks_done=_at_most(hb.tasks_done, "heartbeat.tasks_done", MAX_COUNTER),
    )
    _at_most(hb.capacity, "heartbeat.capacity", cap)
    held: dict[str, int] | None = None
    if hb.last_assign_seq:
        # A seq this session never sent would mark every attempt up to it as lost in transit.
        _at_most(hb.last_assign_seq, "heartbeat.last_assign_seq", host.sent_seq)
        held = dict(attempts_from_pb(hb.held, "heartbeat.held"))
    elif hb.held:
        _count(len(hb.held), "heartbeat.held", MAX_HOST_ITEMS)
    return load, held


def grace_from_pb(msg: host_pb2.Draining) -> float:
    return _number(msg.grace_s, "draining.grace_s", MAX_GRACE_S)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _result_rows(results: Sequence[host_pb2.HostResult], out: list[HostResult]) -> None:
    append = out.append
    for i, r in enumerate(results):
        task_id = r.task_id
        if not 0 < len(task_id) <= MAX_KEY_CHARS:
            raise _bad(f"results.results[{i}].task_id", f"must hold 1..{MAX_KEY_CHARS} characters")
        if r.attempt == 0:
            raise _bad(f"results.results[{i}].attempt", "must be >= 1")
        if r.HasField("error"):
            e = r.error
            reason = e.reason or FailureReason.HANDLER_ERROR
            if reason not in _REASONS:
                raise _bad(f"results.results[{i}].error.reason", f"unknown reason {reason}")
            error = TaskError(
                FailureReason(reason),
                _clip(e.type, MAX_ERROR_TYPE_CHARS),
                _clip(e.message, MAX_ERROR_MESSAGE_CHARS),
                _clip(e.traceback, MAX_TRACEBACK_CHARS),
            )
            append((task_id, r.attempt, b"", error))
        else:
            append((task_id, r.attempt, r.output, None))


def check_keys(keys: Sequence[str], field: str) -> None:
    """Every key 1..MAX_KEY_CHARS characters; the first one out of range is named by index.
    One loop (C where compiled: ~4 times faster than min and max of map(len, keys))."""
    for i, key in enumerate(keys):
        if not 0 < len(key) <= MAX_KEY_CHARS:
            raise _bad(f"{field}[{i}]", f"must hold 1..{MAX_KEY_CHARS} characters")


def check_attempt_numbers(attempts: Sequence[int], field: str) -> None:
    if 0 in attempts:
        raise _bad(f"{field}[{list(attempts).index(0)}]", "must be >= 1")


def results_from_pb(batch: host_pb2.HostResultBatch) -> Iterable[HostResult]:
    """Rows (every result with an error) first, then the columns (successes), as the core's
    (key, attempt, output, error) items. The columns are read as whole lists and zipped in C:
    no Python object per result is made here beyond the tuple the core unpacks."""
    results, keys = batch.results, batch.task_ids
    _count(len(results) + len(keys), "results.results", MAX_HOST_ITEMS)
    out: list[HostResult] = []
    if results:
        _result_rows(results, out)
    if not keys and not batch.attempts and not batch.outputs:
        return out
    n = len(keys)
    if len(batch.attempts) != n:
        raise _bad("results.attempts", f"{len(batch.attempts)} attempts for {n} task_ids")
    if len(batch.outputs) != n:
        raise _bad("results.outputs", f"{len(batch.outputs)} outputs for {n} task_ids")
    key_list, attempts = list(keys), list(batch.attempts)
    check_keys(key_list, "results.task_ids")
    check_attempt_numbers(attempts, "results.attempts")
    columns = zip(key_list, attempts, list(batch.outputs), repeat(None))
    return chain(out, columns) if out else columns


def _assignment_rows(tasks: Iterable[Task], batch: host_pb2.AssignBatch) -> None:
    add = batch.tasks.add
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


def assignments_to_pb(
    tasks: Sequence[Task], msg: host_pb2.OrchestratorMessage, columns: bool = False
) -> None:
    """The batch in row form, or (columns) in the column form but for the assignments it cannot
    say, which go as rows: see AssignBatch in host.proto."""
    batch = msg.assign
    if not columns:
        _assignment_rows(tasks, batch)
        return
    # What the column form cannot say (labels, timeout_s, report_start) goes as rows.
    plain = [t for t in tasks if not (t.labels or t.timeout_s or t.lost_with)]
    if len(plain) < len(tasks):
        _assignment_rows([t for t in tasks if t.labels or t.timeout_s or t.lost_with], batch)
    if not plain:
        return
    batch.task_ids.extend([t.key for t in plain])
    batch.attempts.extend([t.attempt for t in plain])
    batch.payloads.extend([t.payload for t in plain])
    kinds = [t.kind for t in plain]
    if kinds.count(kinds[0]) == len(kinds):
        batch.kind = kinds[0]
    else:
        batch.kinds.extend(kinds)
    if any(t.deps for t in plain):
        batch.dep_counts.extend([len(t.deps) for t in plain])
        batch.dep_task_ids.extend([d.id for t in plain for d in t.deps])
        batch.dep_outputs.extend([d.output for t in plain for d in t.deps])
