"""Task life in the no-I/O core: transitions, DAGs, retries, idempotency, results, cancel."""

from __future__ import annotations

import pytest
from swarm.server.budgets import held_bytes
from swarm.server.keys import DEFAULT_NAMESPACE, NS_SEP, key_safe, split_key, task_key
from swarm.server.model import (
    TASK_EDGES,
    FailureReason,
    IllegalTransition,
    Rejected,
    Task,
    TaskError,
    TaskState,
)

from tests.core_helpers import beat, err, join, make_core, ok, submit, take


def test_illegal_transition_is_refused() -> None:
    task = Task("t", "echo", b"")
    with pytest.raises(IllegalTransition):
        task.move(TaskState.SUCCEEDED)


def test_move_allows_exactly_the_edges_of_the_life_cycle() -> None:
    for was in TaskState:
        for to in TaskState:
            task = Task("t", "echo", b"")
            task.state = was
            if (was, to) in TASK_EDGES:
                task.move(to)
                assert task.state is to
            else:
                with pytest.raises(IllegalTransition):
                    task.move(to)
                assert task.state is was


def test_a_task_runs_once_and_its_client_gets_one_result() -> None:
    core = make_core()
    host = join(core, "h")
    outbox = core.attach_client("c", 0.0)
    submit(core, ("t", "echo"))
    (task,) = take(host)
    assert task.state is TaskState.ASSIGNED and task.attempt == 1
    core.on_started(host, [("t", 1)], 0.0)
    assert task.state is TaskState.RUNNING
    ok(core, host, [task])
    assert task.state is TaskState.SUCCEEDED and task.output == b"t"
    assert outbox.take(10) == [task]
    ok(core, host, [task])  # a repeat of the same result is stale
    assert core.counters.stale_results == 1 and outbox.take(10) == []


def test_dag_releases_incrementally_and_passes_outputs() -> None:
    core = make_core()
    host = join(core, "h", capacity=100)
    submit(core, ("a", "echo"), ("b", "echo"), ("c", "echo", ["a", "b"]), ("d", "echo", ["c"]))
    first = take(host)
    assert sorted(t.id for t in first) == ["a", "b"]
    ok(core, host, first[:1])
    assert not host.outbox  # c still waits for one dependency
    ok(core, host, first[1:])
    (c,) = take(host)
    assert c.id == "c" and [d.output for d in c.deps] == [b"a", b"b"]
    ok(core, host, [c])
    (d,) = take(host)
    assert d.deps[0].output == b"c"


def test_long_chain_in_one_batch() -> None:
    core = make_core()
    host = join(core, "h")
    submit(core, ("n0", "echo"), *[(f"n{i}", "echo", [f"n{i - 1}"]) for i in range(1, 3000)])
    for i in range(3000):
        (t,) = take(host)
        assert t.id == f"n{i}"
        ok(core, host, [t])
    assert core.live_tasks == 0 and core.pending == 0


def test_dependency_on_unknown_task_is_refused_whole() -> None:
    core = make_core()
    with pytest.raises(Rejected) as exc:
        submit(core, ("a", "echo"), ("b", "echo", ["nope"]))
    assert exc.value.code == "INVALID_ARGUMENT" and exc.value.field == "tasks[1].depends_on[0]"
    assert "nope" in exc.value.message and not core.tasks


def test_cycle_is_refused_naming_a_task() -> None:
    core = make_core()
    with pytest.raises(Rejected) as exc:
        submit(
            core, ("a", "echo", ["c"]), ("b", "echo", ["a"]), ("c", "echo", ["b"]), ("free", "echo")
        )
    assert exc.value.code == "INVALID_ARGUMENT" and "cycle" in exc.value.message
    assert not core.tasks and core.live_tasks == 0


def test_self_dependency_is_a_cycle() -> None:
    core = make_core()
    with pytest.raises(Rejected):
        submit(core, ("a", "echo", ["a"]))


def test_failed_dependency_fails_dependents_without_running_them() -> None:
    core = make_core()
    host = join(core, "h", kinds=["fail", "echo"])
    client = core.attach_client("c", 0.0)
    submit(core, ("a", "fail"), ("b", "echo", ["a"]), ("c", "echo", ["b"]))
    (a,) = take(host)
    err(core, host, a, TaskError(FailureReason.HANDLER_ERROR, "RuntimeError", "boom"))
    by_id = {t.id: t for t in client.take(10)}
    assert by_id["a"].state is TaskState.FAILED
    for name in ("b", "c"):
        assert by_id[name].state is TaskState.FAILED
        assert by_id[name].error is not None
        assert by_id[name].error.reason is FailureReason.DEPENDENCY_FAILED
    assert not host.outbox and core.live_tasks == 0 and core.pending == 0
    submit(core, ("late", "echo", ["a"]))  # depending on a task that already failed
    assert core.tasks["late"].state is TaskState.FAILED and core.pending == 0


def test_resubmission_is_idempotent_and_redelivers_the_result() -> None:
    core = make_core()
    host = join(core, "h")
    client = core.attach_client("c", 0.0)
    submit(core, ("t", "echo"))
    submit(core, ("t", "echo"))
    assert len(take(host)) == 1 and core.live_tasks == 1
    (t,) = [core.tasks["t"]]
    ok(core, host, [t])
    assert client.take(10) == [t]
    # Asked again on the session it was sent on: it is queued once per session (a lost reply
    # means a broken stream, and the next session is sent every unacknowledged result).
    submit(core, ("t", "echo"))
    assert client.take(10) == [] and not host.outbox
    core.detach_client(client, 1.0)
    client = core.attach_client("c", 2.0)
    submit(core, ("t", "echo"))
    assert client.take(10) == [t] and not host.outbox


def test_duplicate_ids_in_one_batch_are_refused() -> None:
    core = make_core()
    with pytest.raises(Rejected) as exc:
        submit(core, ("t", "echo"), ("t", "echo"))
    assert exc.value.field == "tasks[1].id"


def test_limit_is_resource_exhausted_and_changes_nothing() -> None:
    core = make_core(max_tasks=3)
    submit(core, ("a", "echo"), ("b", "echo"))
    with pytest.raises(Rejected) as exc:
        submit(core, ("c", "echo"), ("d", "echo"))
    assert exc.value.code == "RESOURCE_EXHAUSTED" and set(core.tasks) == {"a", "b"}


def test_handler_errors_retry_with_backoff_then_fail_with_the_error() -> None:
    core = make_core(retry_backoff_s=1.0, retry_backoff_max_s=8.0)
    host = join(core, "h", kinds=["fail"])
    submit(core, ("t", "fail"), max_retries=2)
    boom = TaskError(FailureReason.HANDLER_ERROR, "RuntimeError", "boom", "Traceback...")
    now = 0.0
    for attempt in (1, 2):
        (t,) = take(host)
        assert t.attempt == attempt
        err(core, host, t, boom, now)
        assert t.state is TaskState.QUEUED and not host.outbox
        beat(core, host, now + 0.2)
        core.tick(now + 0.2)  # backoff is at least half the base delay
        assert not host.outbox
        now += 10.0
        beat(core, host, now)
        core.tick(now)
    (t,) = take(host)
    err(core, host, t, boom, now)
    assert t.state is TaskState.FAILED and t.error == boom and t.attempt == 3


def test_non_retryable_error_fails_at_once() -> None:
    core = make_core()
    host = join(core, "h", kinds=["fail"])
    submit(core, ("t", "fail"), max_retries=5, non_retryable=frozenset({"ValueError"}))
    (t,) = take(host)
    err(core, host, t, TaskError(FailureReason.HANDLER_ERROR, "ValueError", "bad"))
    assert t.state is TaskState.FAILED


def test_cancel_queued_and_running_tasks() -> None:
    core = make_core(prefetch=0)
    host = join(core, "h", capacity=1, kinds=["sleep", "echo"])
    client = core.attach_client("c", 0.0)
    submit(core, ("run", "sleep"), ("wait", "sleep"), ("child", "echo", ["wait"]))
    (running,) = take(host)
    states = core.cancel(["run", "wait", "missing"], 1.0)
    assert states == [TaskState.CANCELLED, TaskState.CANCELLED, None]
    assert host.cancels == [("run", 1)]
    assert core.tasks["child"].state is TaskState.FAILED
    ok(core, host, [running])  # the host finished before it saw the cancel: dropped
    assert {t.id for t in client.take(10)} == {"run", "wait", "child"}
    assert not host.outbox  # the cancelled queued task is never sent


def test_schedule_timeout_fails_a_task_nobody_starts() -> None:
    core = make_core()
    submit(core, ("t", "nobody"), schedule_timeout_s=2.0)
    core.tick(1.9)
    assert core.tasks["t"].state is TaskState.QUEUED
    core.tick(2.1)
    t = core.tasks["t"]
    assert t.state is TaskState.FAILED and t.error is not None
    assert t.error.reason is FailureReason.SCHEDULE_TIMEOUT


def test_results_wait_for_a_reconnecting_client() -> None:
    core = make_core()
    host = join(core, "h")
    client = core.attach_client("c", 0.0)
    submit(core, ("a", "echo"), ("b", "echo"))
    core.detach_client(client, 0.0)
    ok(core, host, take(host))
    assert client.take(10) == []
    core.attach_client("c", 1.0)
    got = client.take(10)
    assert sorted(t.id for t in got) == ["a", "b"]
    core.ack(client, ["a"])
    core.detach_client(client, 2.0)
    core.attach_client("c", 3.0)
    assert [t.id for t in client.take(10)] == ["b"]
    assert "a" not in client.pending and "a" in core.tasks  # still a valid dependency


def test_finished_tasks_expire_by_age_and_by_count() -> None:
    core = make_core(result_ttl_s=10.0, max_retained=3)
    host = join(core, "h", capacity=10)
    submit(core, ("t", "echo"), client="")
    ok(core, host, take(host), now=1.0)
    beat(core, host, 5.0)
    core.tick(5.0)
    assert "t" in core.tasks
    beat(core, host, 12.0)
    core.tick(12.0)
    assert "t" not in core.tasks
    submit(core, *[(f"n{i}", "echo") for i in range(5)], now=12.0)
    ok(core, host, take(host), now=12.0)
    assert sorted(core.tasks) == ["n2", "n3", "n4"]


def test_retention_evicted_in_batches_keeps_its_byte_tally_exact() -> None:
    """Successes are finished and evicted a batch at a time, failures one by one: the tally
    of retained bytes stays the sum of what the retained tasks hold, through expiry too."""
    core = make_core(result_ttl_s=10.0, max_retained=20)
    host = join(core, "h", capacity=100)

    def tally() -> int:
        return sum(held_bytes(t) for t in core._retained)

    for r in range(4):
        submit(core, *[(f"r{r}-{i}", "echo") for i in range(9)], client="", now=float(r))
        tasks = take(host)
        failed = TaskError(FailureReason.NO_HANDLER, "NoHandler", "x" * r)
        err(core, host, tasks[0], failed, now=float(r))
        ok(core, host, tasks[1:], now=float(r), output=b"o" * r)
        assert len(core._retained) == min(9 * (r + 1), 20)
        assert core.retained_bytes == tally()
        assert set(core.tasks) == {t.key for t in core._retained}
    beat(core, host, 12.5)
    core.tick(12.5)  # r0..r2 finished before 2.5: expired
    assert sorted(t.id for t in core._retained) == sorted(f"r3-{i}" for i in range(9))
    assert core.retained_bytes == tally()


def test_a_client_that_never_acknowledges_is_refused_more_work() -> None:
    core = make_core(max_unacked_results=2)
    host = join(core, "h")
    client = core.attach_client("c", 0.0)
    submit(core, ("a", "echo"), ("b", "echo"))
    ok(core, host, take(host))
    with pytest.raises(Rejected) as exc:
        submit(core, ("c", "echo"))
    assert exc.value.code == "RESOURCE_EXHAUSTED" and "acknowledge" in exc.value.message
    core.ack(client, ["a"])
    submit(core, ("c", "echo"))


def test_task_keys_split_back_into_namespace_and_id() -> None:
    assert task_key(DEFAULT_NAMESPACE, "t") == "t"  # the default namespace costs nothing
    assert split_key("t") == (DEFAULT_NAMESPACE, "t")
    assert split_key(task_key("ns", "t")) == ("ns", "t")
    assert not key_safe(f"a{NS_SEP}b") and key_safe("a b")


def test_an_unknown_dependency_in_a_namespace_is_named_by_its_id() -> None:
    core = make_core()
    task = Task("a", "echo", b"", key=task_key("ns", "a"))
    with pytest.raises(Rejected) as exc:
        core.submit([task], [[task_key("ns", "nope")]], "c", 0.0)
    assert "'nope'" in exc.value.message and NS_SEP not in exc.value.message
