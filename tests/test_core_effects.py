"""The core's one contract with the edge: the Effects it takes, and what writers take."""

from __future__ import annotations

from swarm.server.effects import DECLARED_LOST
from swarm.server.model import HostState, TaskState

from tests.core_helpers import join, make_core, ok, submit


def test_a_host_loss_names_the_session_to_close_and_whom_to_wake() -> None:
    core = make_core(max_host_losses=1)
    outbox = core.attach_client("c", 0.0)
    a = join(core, "a")
    core.take_effects()
    submit(core, ("runs", "echo"), ("waits", "echo"))
    runs = core.tasks["runs"]
    core.on_started(a, [(runs.key, runs.attempt)], 0.0)
    b = join(core, "b")  # joins after the submission: gets nothing until a is lost
    core.host_lost(a, 1.0, "test")
    effects = core.take_effects()
    assert effects.close_hosts == [(a, DECLARED_LOST)]
    assert effects.wake_hosts == {b}  # a lost session is never woken, though work was queued
    assert effects.wake_clients == {outbox}  # the quarantined task's result
    assert runs.state is TaskState.FAILED and [t.id for t in b.outbox] == ["waits"]
    assert not core.take_effects()  # taken once


def test_taking_effects_empties_them() -> None:
    core = make_core()
    host = join(core, "h")
    first = core.take_effects()
    assert first.wake_hosts == set() and not first
    submit(core, ("t", "echo"))
    taken = core.take_effects()
    assert taken.wake_hosts == {host}
    assert not core.take_effects() and not core.take_effects()


def test_watched_tasks_are_named_once_when_final() -> None:
    core = make_core()
    host = join(core, "h")
    submit(core, ("t", "echo"), ("other", "echo"))
    core.watch("t")
    ok(core, host, host.outbox)
    effects = core.take_effects()
    assert [t.id for t in effects.finished] == ["t"] and "t" not in core.watched
    core.unwatch("t")  # the waiter's cleanup after it was answered: harmless
    assert not core.take_effects().finished


def test_a_detached_client_is_not_woken() -> None:
    core = make_core()
    host = join(core, "h")
    outbox = core.attach_client("c", 0.0)
    submit(core, ("t", "echo"))
    ok(core, host, host.outbox)
    core.detach_client(outbox, 1.0)
    assert core.take_effects().wake_clients == set()
    core.attach_client("c", 2.0)
    assert core.take_effects().wake_clients == {outbox}
    assert [t.id for t in core.take_results(outbox, 10)] == ["t"]
    assert core.take_results(outbox, 10) == []


def test_assignments_are_taken_in_batches_with_one_seq_each() -> None:
    core = make_core(prefetch=0)
    host = join(core, "h", capacity=5)
    submit(core, *[(f"t{i}", "echo") for i in range(5)])
    first, seq1 = core.take_assignments(host, 3, 0.0)
    second, seq2 = core.take_assignments(host, 3, 0.0)
    assert (len(first), seq1, len(second), seq2) == (3, 1, 2, 2) and not host.outbox
    assert {t.sent_seq for t in first} == {1} and {t.sent_seq for t in second} == {2}
    # The host confirms batch 1 but holds none of it: only batch 1's attempts were lost.
    missing = core.reconcile(host, 1, {t.key: t.attempt for t in second}, 1.0)
    assert missing == first and all(t.attempt == 2 for t in first)


def test_cancels_and_a_drain_request_are_taken_once() -> None:
    core = make_core()
    host = join(core, "h")
    submit(core, ("t", "echo"))
    core.take_effects()
    core.cancel(["t"], 1.0)
    core.request_drain(host, 5.0, 1.0)
    assert core.take_effects().wake_hosts == {host}
    assert core.take_cancels(host) == [("t", 1)] and core.take_cancels(host) == []
    assert core.take_drain_request(host) == 5.0 and core.take_drain_request(host) is None


def test_any_host_message_renews_the_lease() -> None:
    core = make_core(heartbeat_interval_s=0.5, lease_s=1.5)
    host = join(core, "h")
    core.host_message(host, 1.0)
    core.tick(2.0)  # quiet for 1.0 s: suspect, not lost
    assert host.state is HostState.SUSPECT
    core.tick(2.6)
    assert host.state is HostState.LOST
    assert core.take_effects().close_hosts == [(host, DECLARED_LOST)]
