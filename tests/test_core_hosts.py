"""Host failure in the no-I/O core: leases, requeue, fencing, poison tasks, drains."""

from __future__ import annotations

import logging

import pytest
from swarm.server.config import ConfigError, OrchestratorConfig
from swarm.server.model import FailureReason, HostState, TaskState

from tests.core_helpers import beat, join, make_core, ok, submit, take


def test_lease_must_cover_two_heartbeats() -> None:
    with pytest.raises(ConfigError, match="two heartbeat intervals"):
        OrchestratorConfig(heartbeat_interval_s=1.0, lease_s=1.5)


@pytest.mark.parametrize("prefetch_s", [-0.01, 0.6, float("nan")])
def test_prefetch_time_must_be_within_a_heartbeat_interval(prefetch_s: float) -> None:
    with pytest.raises(ConfigError, match="prefetch_s"):
        OrchestratorConfig(heartbeat_interval_s=0.5, prefetch_s=prefetch_s)


def test_lost_host_work_moves_with_a_new_attempt_and_stale_results_are_dropped() -> None:
    core = make_core(prefetch=0)
    a = join(core, "a", capacity=5)
    submit(core, *[(f"t{i}", "echo") for i in range(5)])
    sent = take(a)
    core.host_lost(a, 1.0, "test")
    assert a.state is HostState.LOST and core.take_effects().close_hosts == [(a, "declared lost")]
    assert all(t.state is TaskState.QUEUED for t in sent)
    b = join(core, "b", capacity=5)
    resent = take(b)
    assert {t.id for t in resent} == {t.id for t in sent} and all(t.attempt == 2 for t in resent)
    core.on_results(
        a, [(t.key, 1, b"late", None) for t in sent], 2.0
    )  # the old host's late results
    assert core.counters.stale_results == 5
    ok(core, b, resent)
    assert all(t.state is TaskState.SUCCEEDED and t.output != b"late" for t in resent)


def test_a_silent_host_is_lost_after_its_lease() -> None:
    core = make_core(heartbeat_interval_s=0.5, lease_s=1.5)
    a = join(core, "a")
    b = join(core, "b")
    for now in (0.5, 1.0, 1.4):
        beat(core, b, now)
        core.tick(now)
    assert a.state is HostState.SUSPECT
    beat(core, b, 1.6)
    core.tick(1.6)
    assert a.state is HostState.LOST and b.state is HostState.ACTIVE


def test_reconnecting_host_is_told_to_abort_fenced_attempts() -> None:
    core = make_core()
    a = join(core, "a")
    submit(core, ("t", "echo"))
    take(a)
    core.host_lost(a, 1.0, "test")
    from swarm.server.hosts import HostHello

    back = core.host_joined(
        HostHello("a", 1, "x", frozenset({"echo"}), 10, 10, 2, (("t", 1),)), 2.0
    )
    assert back.cancels == [("t", 1)]
    (t,) = take(back)
    assert t.attempt == 2


def test_poison_task_is_quarantined_after_exactly_k_lost_hosts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9, defect 7: the first death (before any started notice) is counted too.
    Issue 13: each loss and the quarantine are logged once, with their fields."""
    caplog.set_level(logging.WARNING, logger="swarm.server.core")
    core = make_core(max_host_losses=3)
    client = core.attach_client("c", 0.0)
    submit(core, ("poison", "crash"), ("bystander", "crash"))
    host = join(core, "h0", kinds=["crash"])
    poison, bystander = core.take_assignments(host, 100, 0.0)[0]
    core.host_lost(host, 0.0, "crashed")  # before any started notice: both may have run
    assert poison.host_losses == 1 and bystander.host_losses == 1
    for i in (1, 2):
        host = join(core, f"h{i}", kinds=["crash"])
        sent = core.take_assignments(host, 100, float(i))[0]
        assert poison in sent
        if bystander in sent:  # announced and ran to completion beside the poison task
            core.on_started(host, [(bystander.key, bystander.attempt)], float(i))
            ok(core, host, [bystander], float(i))
        core.on_started(host, [(poison.key, poison.attempt)], float(i))  # announced, then ran
        core.host_lost(host, float(i), "crashed")
    assert core.counters.hosts_lost == 3
    assert poison.state is TaskState.FAILED and poison.error is not None
    assert poison.error.reason is FailureReason.HOST_LOST and poison.host_losses == 3
    assert bystander.state is TaskState.SUCCEEDED
    assert sorted(r.id for r in client.take(10)) == ["bystander", "poison"]
    events = [(r.__dict__.get("event"), r.__dict__) for r in caplog.records]
    losses = [f for e, f in events if e == "host_lost"]
    assert [f["host_id"] for f in losses] == ["h0", "h1", "h2"]
    assert all(f["reason"] == "crashed" and f["silent_s"] >= 0 for f in losses)
    assert [f["quarantined"] for f in losses] == [0, 0, 1]
    (quarantined,) = [f for e, f in events if e == "task_quarantined"]
    assert (quarantined["task_id"], quarantined["client_id"]) == ("poison", "c")
    assert (quarantined["hosts"], quarantined["last_host_id"]) == (3, "h2")


def test_unannounced_batch_mates_are_not_suspects_and_go_out_in_bulk() -> None:
    """Issue 9, defect 7: tasks queued on hosts the poison task killed are not isolated."""
    core = make_core(max_host_losses=3)
    submit(core, ("poison", "echo"), *[(f"b{i}", "echo") for i in range(8)])
    host = join(core, "h0", capacity=9)
    first = core.take_assignments(host, 100, 0.0)[0]
    core.on_started(host, [(t.key, t.attempt) for t in first[:1]], 0.0)  # the poison ran
    core.host_lost(host, 0.0, "crashed")
    host = join(core, "h1", capacity=9)
    again = core.take_assignments(host, 100, 1.0)[0]
    assert len(again) == 9  # one blame each is below isolation (K - 1 = 2): all in bulk
    poison = next(t for t in again if t.id == "poison")
    core.on_started(host, [(poison.key, poison.attempt)], 1.0)  # the rest wait their notice
    core.host_lost(host, 1.0, "crashed")
    assert poison.host_losses == 2 and all(t.host_losses == 1 for t in again if t is not poison)
    hosts = [join(core, f"h{i}", capacity=10) for i in (2, 3)]
    placed = {h.id: [t.id for t in h.outbox] for h in hosts}
    # The poison task alone is isolated; the 8 others go out in bulk, here all to h2, which
    # joined first (today all 9 are suspects placed one per host: 2 run, 18 agents idle).
    assert [len(v) for v in placed.values()] == [9, 0] and "poison" in placed["h2"]


def test_queued_bystanders_of_lost_hosts_are_not_blamed() -> None:
    core = make_core(max_host_losses=1)
    submit(core, ("waiting", "echo"))
    for i in range(5):
        host = join(core, f"h{i}")
        (t,) = take(host)
        core.host_lost(host, float(i), "crashed")
    assert t.state is TaskState.QUEUED and t.lost_with == 5 and t.host_losses == 0


def test_draining_host_gets_no_work_is_not_lost_and_hands_back() -> None:
    core = make_core(prefetch=0, heartbeat_interval_s=0.5, lease_s=1.5, drain_margin_s=1.0)
    a = join(core, "a", capacity=2, kinds=["sleep"])
    submit(core, ("r", "sleep"), ("q", "sleep"))
    running, queued = take(a)
    core.draining(a, 5.0, 0.1)
    core.on_returned(a, [(queued.key, queued.attempt)], 0.2)
    assert queued.state is TaskState.QUEUED and queued.host_losses == 0
    core.tick(3.0)  # silent past its lease, but within its grace: not lost
    assert a.state is HostState.DRAINING
    ok(core, a, [running], now=3.5)
    core.host_left(a, 3.6)
    assert a.state is HostState.GONE and running.attempt == 1
    b = join(core, "b", kinds=["sleep"])
    (again,) = take(b)
    assert again is queued and again.attempt == 2 and again.host_losses == 0


def test_schedule_timeout_applies_again_when_the_only_host_is_lost() -> None:
    core = make_core(heartbeat_interval_s=1.0, lease_s=3.0)
    host = join(core, "only", kinds=["rare"])
    submit(core, ("t", "rare"), schedule_timeout_s=2.0)
    (t,) = take(host)
    core.host_lost(host, 5.0, "test")  # started long after its first deadline: requeued
    core.tick(6.9)
    assert t.state is TaskState.QUEUED
    core.tick(7.1)
    assert t.state is TaskState.FAILED and t.error is not None
    assert t.error.reason is FailureReason.SCHEDULE_TIMEOUT


def test_started_notices_of_report_start_attempts_are_confirmed_and_fenced_ones_are_not() -> None:
    """A task re-sent after a host loss runs only once its notice is applied (started_ok)."""
    core = make_core(max_host_losses=3)
    submit(core, ("lost", "echo"), ("cancelled", "echo"), ("stale", "echo"))
    first = join(core, "h0", capacity=3)
    take(first)
    core.on_started(first, [(t.key, 1) for t in first.inflight.values()], 0.0)
    core.host_lost(first, 1.0, "crashed")  # each was running: all three re-sent with report_start
    submit(core, ("plain", "echo"), now=1.0)
    host = join(core, "h1", capacity=4, now=1.0)
    sent = {t.id: t for t in take(host)}
    assert sorted(sent) == ["cancelled", "lost", "plain", "stale"]
    assert all(t.lost_with for k, t in sent.items() if k != "plain") and not sent["plain"].lost_with
    core.cancel([sent["cancelled"].key], 2.0)  # fenced by a client: its cancel is queued already
    assert core.take_cancels(host) == [(sent["cancelled"].key, 2)]
    core.take_effects()
    notices = [(t.key, t.attempt) for t in sent.values()] + [(sent["stale"].key, 1)]
    core.on_started(host, notices, 2.0)
    assert host in core.take_effects().wake_hosts  # its writer sends the confirmations
    assert core.take_started_ok(host) == [(sent["lost"].key, 2), (sent["stale"].key, 2)]
    assert core.take_started_ok(host) == [] and core.take_cancels(host) == []
    assert all(sent[k].state is TaskState.RUNNING for k in ("lost", "stale", "plain"))
    core.on_started(host, [(sent["lost"].key, 2)], 3.0)  # a repeated notice: confirmed once
    assert core.take_started_ok(host) == [] and not core.take_effects().wake_hosts
    # Confirmed, it runs there: this host's death now blames it (its second loss).
    core.host_lost(host, 4.0, "crashed")
    assert sent["lost"].host_losses == 2 and sent["stale"].host_losses == 2
