"""Placement and dispatch in the no-I/O core: credits, free capacity, kinds, priorities."""

from __future__ import annotations

import random

from swarm.server.model import SPREAD_LABEL, Task
from swarm.server.placement import water_fill
from swarm.server.status import waiting_kinds

from tests.core_helpers import beat, join, make_core, ok, submit, take


def test_water_fill_gives_the_freest_host_work_first() -> None:
    assert water_fill([10, 2], [12, 4], 8, random.Random(1)) == [8, 0]
    assert water_fill([10, 2], [12, 4], 12, random.Random(1)) == [10, 2]


def test_water_fill_never_passes_credit() -> None:
    take = water_fill([5, 5, 0], [6, 2, 1], 100, random.Random(1))
    assert take == [6, 2, 1]


def test_water_fill_splits_ties_evenly() -> None:
    take = water_fill([4, 4, 4], [4, 4, 4], 9, random.Random(3))
    assert sorted(take) == [3, 3, 3]


def test_free_capacity_wins() -> None:
    core = make_core(prefetch=0)
    big = join(core, "big", capacity=10)
    small = join(core, "small", capacity=3)
    submit(core, *[(f"t{i}", "echo") for i in range(7)])
    assert len(big.outbox) == 7 and not small.outbox


def test_sustained_load_splits_work_in_proportion_to_agents() -> None:
    """Exactly what tests/test_integration.py checks end to end (coarsely): hosts of 100 and
    10 agents under a deep queue, each finishing one task per agent per round, are topped back
    up to their credit every time and so do work in the ratio of their agents."""
    core = make_core(prefetch=4)
    hosts = [join(core, "big", capacity=100), join(core, "small", capacity=10)]
    submit(core, *[(f"t{i}", "echo") for i in range(3000)])
    held = {h.id: take(h) for h in hosts}
    # No prefetch before a host has finished anything (see the stranding test below).
    assert {k: len(v) for k, v in held.items()} == {"big": 100, "small": 10}
    done = {"big": 0, "small": 0}
    for _ in range(20):
        for host in hosts:
            finished, held[host.id] = held[host.id][: host.capacity], held[host.id][host.capacity :]
            ok(core, host, finished)
            done[host.id] += len(finished)
            held[host.id] += take(host)
            assert len(held[host.id]) == host.capacity + 4  # agents + prefetch, no more
    assert done == {"big": 2000, "small": 200}


def test_a_full_host_gets_nothing_beyond_its_prefetch() -> None:
    core = make_core(prefetch=2)
    host = join(core, "h", capacity=3)
    submit(core, *[(f"t{i}", "echo") for i in range(10)])
    first = take(host)
    assert len(first) == 3  # its free agents: it has earned no prefetch yet
    ok(core, host, first)
    assert len(take(host)) == 5  # 3 free agents + 2 prefetch
    assert core.ready["echo"].live == 2


def test_short_work_is_not_stranded_behind_long_work_while_a_host_is_free() -> None:
    """Issue 9, defect 8: two hosts full of long tasks, a third idle; short tasks arrive."""
    core = make_core(prefetch=16, heartbeat_interval_s=0.5, lease_s=10.0)
    a, b = join(core, "a", capacity=10), join(core, "b", capacity=10)
    submit(core, *[(f"long{i}", "echo") for i in range(20)])
    for host in (a, b):
        core.on_started(host, [(t.key, t.attempt) for t in take(host)], 0.0)
    c = join(core, "c", capacity=10, now=1.0)
    submit(core, *[(f"short{i}", "echo") for i in range(30)], now=1.0)
    assert not a.outbox and not b.outbox  # nothing waits behind a 6 s task
    first = take(c)
    assert len(first) == 10 and core.ready["echo"].live == 20
    ok(core, c, first, now=1.05)  # c finishes fast: it has earned prefetch, a and b have not
    # 10 results in 0.05 s: 200 a second, so 2 in the default prefetch_s of 0.01 s.
    assert c.prefetch_credit(16) == 2 and a.prefetch_credit(16) == b.prefetch_credit(16) == 0
    assert len(take(c)) == 12 and not a.outbox and not b.outbox


def test_prefetch_follows_a_hosts_recent_pace() -> None:
    """What a host finishes in prefetch_s at its recent pace, rounded up, and never more than
    it finished in the window (HostView.earn)."""
    core = make_core(prefetch=16, heartbeat_interval_s=0.5, lease_s=10.0, prefetch_s=0.01)
    host = join(core, "h", capacity=4)
    submit(core, *[(f"t{i}", "echo") for i in range(100)])
    first = take(host)
    assert len(first) == 4 and host.prefetch_credit(16) == 0  # nothing finished: none earned
    ok(core, host, first[:2], now=0.1)  # 20 a second: 0.2 in 0.01 s, rounded up
    assert host.prefetch_credit(16) == 1
    assert len(take(host)) == 3  # 2 free agents + 1
    beat(core, host, 0.5)
    core.tick(0.5)
    assert host.prefetch_credit(16) == 1  # a new window: the last one's pace still counts
    beat(core, host, 1.0)
    core.tick(1.0)
    assert host.prefetch_credit(16) == 0  # a whole window with no result: nothing earned


def test_a_fast_host_earns_up_to_the_prefetch_cap_and_at_most_what_it_finished() -> None:
    core = make_core(prefetch=64, heartbeat_interval_s=0.5, lease_s=10.0, prefetch_s=0.01)
    host = join(core, "h", capacity=40)
    submit(core, *[(f"t{i}", "echo") for i in range(1000)])
    ok(core, host, take(host), now=0.001)  # 40 in 1 ms: 400 in 0.01 s, but only 40 finished
    assert host.earned == 40 and len(take(host)) == 80  # 40 free agents + 40
    beat(core, host, 0.5)
    core.tick(0.5)  # the last window: 40 results in 0.5 s, 80 a second: 1 in 0.01 s
    assert host.earned == 1
    held = list(host.inflight.values())
    assert len(held) == 80 and not take(host)  # 80 held: past 40 agents + 1
    ok(core, host, held[:40], now=0.502)  # 40 more in 2 ms: 200 in 0.01 s, 40 finished
    assert host.earned == 40 and host.prefetch_credit(64) == 40
    ok(core, host, held[40:], now=0.503)  # 80 in 3 ms: 267 in 0.01 s, 80 finished
    assert host.earned == 80 and host.prefetch_credit(64) == 64  # the cap

def test_results_return_credit_and_release_more_work() -> None:
    core = make_core(prefetch=0)
    host = join(core, "h", capacity=2)
    submit(core, *[(f"t{i}", "echo") for i in range(5)])
    first = take(host)
    ok(core, host, first)
    assert [t.id for t in take(host)] == ["t2", "t3"]


def test_kinds_are_respected_and_unserved_kinds_wait() -> None:
    core = make_core()
    a = join(core, "a", kinds=["echo"])
    b = join(core, "b", kinds=["gpu"])
    submit(core, ("x", "gpu"), ("y", "echo"), ("z", "nobody"))
    assert [t.id for t in take(a)] == ["y"]
    assert [t.id for t in take(b)] == ["x"]
    assert waiting_kinds(core) == {"nobody": (1, True)}
    c = join(core, "c", kinds=["nobody"])
    assert [t.id for t in take(c)] == ["z"]


def test_higher_priority_runs_first() -> None:
    core = make_core(prefetch=0)
    submit(core, ("low", "echo"))
    submit(core, ("high", "echo"), priority=5)
    host = join(core, "h", capacity=1)
    assert [t.id for t in take(host)] == ["high"]


def test_suspect_and_draining_hosts_get_no_new_work() -> None:
    core = make_core(prefetch=0, heartbeat_interval_s=1.0, lease_s=3.0)
    a = join(core, "a")
    b = join(core, "b")
    core.tick(2.0)  # both silent for two intervals: suspect, not yet lost
    submit(core, ("t", "echo"), now=2.0)
    assert not a.outbox and not b.outbox
    core.request_drain(a, 5.0, 2.0)
    core.heartbeat(b, b.capacity, a.load, 2.1)
    assert [t.id for t in take(b)] == ["t"]


def test_spread_replicas_go_to_distinct_hosts_where_there_are_enough() -> None:
    core = make_core(prefetch=0)
    hosts = [join(core, f"h{i}", capacity=10) for i in range(3)]
    replicas = [Task(f"r{i}", "echo", b"", labels={SPREAD_LABEL: "vote-1"}) for i in range(3)]
    core.submit(replicas, None, "c", 0.0)
    placed = [t.id for h in hosts for t in take(h)]
    assert sorted(placed) == ["r0", "r1", "r2"]
    assert all(len(h.inflight) == 1 for h in hosts)
    more = [Task(f"x{i}", "echo", b"", labels={SPREAD_LABEL: "vote-2"}) for i in range(5)]
    core.submit(more, None, "c", 0.0)  # more replicas than hosts: they still all run
    assert sum(len(h.inflight) for h in hosts) == 8
