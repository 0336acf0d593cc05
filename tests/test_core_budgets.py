"""Byte budgets in the no-I/O core: batches cut by bytes, fan-ins and outputs that can never fit,
and the memory a client can make the orchestrator hold (unacknowledged results, unfinished
payloads, retained tasks), with the expiry of disconnected clients' results."""

from __future__ import annotations

import pytest
from swarm.server.budgets import BATCH_BYTES, MAX_ITEM_BYTES, assignment_bytes, result_bytes
from swarm.server.model import FailureReason, Rejected, Task, TaskState

from tests.core_helpers import join, make_core, ok, submit

MIB = 1024 * 1024


def big(task_id: str, size: int, deps: list[str] | None = None) -> tuple[Task, list[str]]:
    return Task(task_id, "echo", b"x" * size), deps or []


def submit_big(core: object, *items: tuple[Task, list[str]], client: str = "c") -> None:
    tasks = [t for t, _ in items]
    deps = [d for _, d in items]
    core.submit(tasks, deps, client, 0.0)  # type: ignore[attr-defined]


def test_assign_batches_are_cut_by_bytes_below_the_message_limit() -> None:
    core = make_core()
    host = join(core, "h")
    submit_big(core, *(big(f"t{i}", 5 * MIB) for i in range(5)))
    assert len(host.outbox) == 5
    batches = []
    while host.outbox:
        batch, _ = core.take_assignments(host, 4096, 0.0)
        batches.append(batch)
    assert [t.id for b in batches for t in b] == [f"t{i}" for i in range(5)]
    for batch in batches:
        assert len(batch) == 1 or sum(assignment_bytes(t) for t in batch) <= BATCH_BYTES
    assert len(batches) > 1


def test_a_fan_in_known_to_be_over_the_limit_is_refused_at_submit() -> None:
    core = make_core()
    host = join(core, "h")
    submit_big(core, *(big(f"p{i}", 15 * MIB) for i in range(5)))
    ok(core, host, list(host.outbox), output=b"y" * 15 * MIB)
    host.outbox.clear()
    with pytest.raises(Rejected) as exc:
        submit_big(core, big("small", 1), big("fan", 0, [f"p{i}" for i in range(5)]))
    assert exc.value.code == "INVALID_ARGUMENT"
    assert exc.value.field == "tasks[1].depends_on"
    assert str(75 * MIB) in exc.value.message and str(MAX_ITEM_BYTES) in exc.value.message
    assert "small" not in core.tasks and "fan" not in core.tasks  # a refusal changes nothing


def test_a_fan_in_that_grows_over_the_limit_fails_too_large_and_is_never_sent() -> None:
    core = make_core()
    host = join(core, "h")
    submit_big(
        core,
        *(big(f"p{i}", 1) for i in range(5)),
        big("fan", 0, [f"p{i}" for i in range(5)]),
        big("after", 0, ["fan"]),
    )
    ok(core, host, list(host.outbox), output=b"y" * 15 * MIB)
    host.outbox.clear()
    fan = core.tasks["fan"]
    assert fan.state is TaskState.FAILED and fan.attempt == 0
    assert fan.error is not None and fan.error.reason is FailureReason.TOO_LARGE
    assert str(75 * MIB) in fan.error.message
    assert core.tasks["after"].error.reason is FailureReason.DEPENDENCY_FAILED  # type: ignore[union-attr]
    assert not host.outbox and core.counters.hosts_lost == 0
    assert core.pending == 0 and core.live_tasks == 0


def test_an_output_over_the_limit_fails_the_task_without_retries() -> None:
    core = make_core(max_output_bytes=100)
    host = join(core, "h")
    submit(core, ("t", "echo"), max_retries=3)
    (task,) = host.outbox
    ok(core, host, [task], output=b"z" * 101)
    assert task.state is TaskState.FAILED and task.retries == 0
    assert task.error is not None and task.error.reason is FailureReason.TOO_LARGE
    assert task.output == b"" and "101" in task.error.message


def test_result_batches_to_a_client_are_cut_by_bytes() -> None:
    core = make_core()
    host = join(core, "h")
    outbox = core.attach_client("c", 0.0)
    submit(core, *[(f"t{i}", "echo") for i in range(5)])
    ok(core, host, list(host.outbox), output=b"y" * 15 * MIB)
    batches = []
    while outbox.unsent:
        batches.append(core.take_results(outbox, 4096))
    assert sum(len(b) for b in batches) == 5 and len(batches) > 1
    for batch in batches:
        assert len(batch) == 1 or sum(result_bytes(t) for t in batch) <= BATCH_BYTES


def test_unacknowledged_result_bytes_are_budgeted_per_client() -> None:
    core = make_core(max_unacked_result_bytes=20_000)
    host = join(core, "h")
    client = core.attach_client("c", 0.0)
    submit(core, ("a", "echo"), ("b", "echo"))
    ok(core, host, list(host.outbox), output=b"y" * 10_000)
    with pytest.raises(Rejected) as exc:
        submit(core, ("c", "echo"))
    assert exc.value.code == "RESOURCE_EXHAUSTED" and exc.value.field == "tasks"
    assert "unacknowledged result bytes" in exc.value.message and "'c'" in exc.value.message
    core.ack(client, ["a", "b"])
    assert client.pending_bytes == 0 and core.unacked.bytes == 0
    submit(core, ("c", "echo"))


def test_unacknowledged_result_bytes_are_budgeted_in_total() -> None:
    core = make_core(max_unacked_result_bytes=30_000, max_unacked_bytes_total=30_000)
    host = join(core, "h")
    for client in ("c1", "c2"):
        core.attach_client(client, 0.0)
        submit(core, (f"{client}-t", "echo"), client=client)
    ok(core, host, list(host.outbox), output=b"y" * 15_000)
    with pytest.raises(Rejected) as exc:
        submit(core, ("c3-t", "echo"), client="c3")
    assert exc.value.code == "RESOURCE_EXHAUSTED"
    assert "all clients" in exc.value.message and "c3-t" not in core.tasks


def test_payload_bytes_of_unfinished_tasks_are_capped() -> None:
    core = make_core(max_task_bytes=1000)
    host = join(core, "h")
    submit_big(core, big("a", 600))
    with pytest.raises(Rejected) as exc:
        submit_big(core, big("b", 600))
    assert exc.value.code == "RESOURCE_EXHAUSTED" and "payload bytes" in exc.value.message
    ok(core, host, list(host.outbox))
    assert core.live_bytes == 0
    submit_big(core, big("b", 600))


def test_retained_tasks_are_capped_by_bytes_oldest_first() -> None:
    core = make_core(max_retained_bytes=50_000)
    host = join(core, "h")
    for i in range(5):
        submit_big(core, big(f"t{i}", 10_000))
        ok(core, host, list(host.outbox))
    assert core.retained_bytes <= 50_000
    assert "t0" not in core.tasks and "t4" in core.tasks


def test_a_disconnected_clients_results_expire_after_client_ttl() -> None:
    core = make_core(client_ttl_s=10.0)
    host = join(core, "h")
    gone = core.attach_client("gone", 0.0)
    back = core.attach_client("back", 0.0)
    submit(core, ("g", "echo"), client="gone")
    submit(core, ("b", "echo"), client="back")
    submit(core, ("u", "echo"), client="unary", now=0.0)  # never opens a session
    ok(core, host, list(host.outbox), output=b"y" * 1000)
    assert core.unacked.bytes > 0
    core.detach_client(gone, 1.0)
    core.detach_client(back, 1.0)
    core.tick(10.5)
    assert {"gone", "back"} <= set(core.clients) and "unary" not in core.clients
    core.attach_client("back", 10.6)
    core.tick(11.5)
    assert set(core.clients) == {"back"}
    assert core.unacked.bytes == back.pending_bytes > 0
    core.tick(1000.0)
    assert set(core.clients) == {"back"}  # connected: never expires


def test_a_fast_submitter_is_refused_on_what_its_unfinished_tasks_will_hold() -> None:
    core = make_core(max_unacked_result_bytes=10_000)
    core.attach_client("c", 0.0)
    submit_big(core, big("a", 9_000))  # no host: it stays unfinished
    with pytest.raises(Rejected) as exc:
        submit_big(core, big("b", 10))
    assert exc.value.code == "RESOURCE_EXHAUSTED" and "unfinished tasks" in exc.value.message
    host = join(core, "h")
    ok(core, host, list(host.outbox), output=b"")
    assert core.clients["c"].live_bytes == 0
