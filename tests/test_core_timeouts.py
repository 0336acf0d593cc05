"""The orchestrator's own enforcement of timeout_s, in the no-I/O core (issue 9, defect 6).

A host enforces an attempt's timeout locally; these cover a host that never reports: the
orchestrator times the attempt out itself, timeout_s plus timeout_grace_s after it was sent (or
after it started, when the started notice came later), fences it and tells the host to cancel.
"""

from __future__ import annotations

from swarm.server.core import Core
from swarm.server.hosts import HostView
from swarm.server.model import FailureReason, TaskState

from tests.core_helpers import beat, join, make_core, ok, submit


def at(core: Core, host: HostView, now: float) -> None:
    """Time passes with the host heartbeating: alive, but silent about its work."""
    beat(core, host, now)
    core.tick(now)


def test_an_attempt_the_host_never_reports_times_out_is_fenced_and_cancelled() -> None:
    core = make_core(timeout_grace_s=0.5)
    host = join(core, "h")
    client = core.attach_client("c", 0.0)
    submit(core, ("t", "echo"), timeout_s=1.0)
    (task,) = core.take_assignments(host, 100, 0.0)[0]
    at(core, host, 1.49)
    assert task.state is TaskState.ASSIGNED  # within timeout + grace
    at(core, host, 1.51)
    assert task.state is TaskState.FAILED and task.error is not None
    assert task.error.reason is FailureReason.TIMEOUT
    assert core.take_cancels(host) == [("t", 1)]
    assert not host.inflight  # fenced: a late result counts as stale
    ok(core, host, [task], now=2.0)
    assert core.counters.stale_results == 1
    assert [r.id for r in client.take(10)] == ["t"]


def test_the_clock_runs_from_the_start_once_the_host_reports_it() -> None:
    core = make_core(timeout_grace_s=0.5)
    host = join(core, "h")
    submit(core, ("t", "echo"), timeout_s=1.0)
    (task,) = core.take_assignments(host, 100, 0.0)[0]
    core.on_started(host, [("t", 1)], 1.0)  # it waited in the host's queue for 1 s
    at(core, host, 2.0)
    assert task.state is TaskState.RUNNING  # due at 1.0 + 1.0 + 0.5, not at 1.5
    at(core, host, 2.51)
    assert task.state is TaskState.FAILED and task.error is not None
    assert task.error.reason is FailureReason.TIMEOUT


def test_an_unstarted_attempt_behind_busy_agents_is_not_timed_out() -> None:
    core = make_core(timeout_grace_s=0.5, prefetch=1)
    host = join(core, "h", capacity=1)
    submit(core, ("warm", "echo"))
    ok(core, host, core.take_assignments(host, 100, 0.0)[0])  # it earns its prefetch of 1
    submit(core, ("long", "echo"), ("queued", "echo"), timeout_s=1.0)
    long, queued = core.take_assignments(host, 100, 0.0)[0]
    assert queued.state is TaskState.ASSIGNED  # prefetched behind the one agent
    core.on_started(host, [("long", 1)], 0.0)
    ok(core, host, [long], now=1.2)  # it finished in time; the queued one starts only now
    core.on_started(host, [("queued", 1)], 1.2)
    at(core, host, 1.6)
    assert queued.state is TaskState.RUNNING  # due at 1.2 + 1.5: its wait did not count
    at(core, host, 2.71)
    assert queued.state is TaskState.FAILED


def test_a_timed_out_attempt_is_retried_like_a_host_timeout() -> None:
    core = make_core(timeout_grace_s=0.5, retry_backoff_s=0.1)
    a = join(core, "a")
    submit(core, ("t", "echo"), timeout_s=1.0, max_retries=1)
    (task,) = core.take_assignments(a, 100, 0.0)[0]
    at(core, a, 1.6)
    assert task.state is TaskState.QUEUED and task.retries == 1
    at(core, a, 1.8)  # the backoff (at most 0.1 s) is over: a new attempt goes out
    (again,) = core.take_assignments(a, 100, 1.8)[0]
    assert again is task and task.attempt == 2 and task.state is TaskState.ASSIGNED
    ok(core, a, [task], now=2.0)
    assert task.state is TaskState.SUCCEEDED


def test_tasks_without_timeout_are_never_timed_out() -> None:
    core = make_core(timeout_grace_s=0.5)
    host = join(core, "h")
    submit(core, ("t", "echo"))
    (task,) = core.take_assignments(host, 100, 0.0)[0]
    at(core, host, 1000.0)
    assert task.state is TaskState.ASSIGNED and core.take_cancels(host) == []
