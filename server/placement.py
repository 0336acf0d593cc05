"""Placement: which hosts may take a kind's ready tasks, and how many each one gets.

Pure decisions over host views, with no core state: who qualifies (ACTIVE hosts serving the
kind), credit (free agents plus prefetch), water filling of bulk work, and the one-by-one
placement of special tasks (suspected poison tasks kept apart, spread replicas on distinct
hosts), and the spreading of suspect groups (the rule is in suspects.py). The core's dispatch
(core_dispatch.py) applies the decisions.

Water filling: hosts with the most free agents fill first: the freest host takes tasks until it
is level with the next, then both take in turn, and so on, never past a host's credit. Ties are
broken at random so equal hosts share evenly over time. O(H^2) per call for H candidate hosts,
independent of n.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from swarm.server.hosts import HostView
from swarm.server.model import SPREAD_LABEL, HostState, Task
from swarm.server.suspects import Group

_ACTIVE = HostState.ACTIVE


def isolate_after(max_host_losses: int) -> int:
    """Blamed host losses (Task.host_losses) from which a task runs apart from other suspects.

    A poison task is blamed at every death it causes (core_hosts.py), and a bystander only
    for deaths it shared with it, so a bystander's count never passes the poison task's.
    Once both stand at max_host_losses - 1 they never share a host again, so the poison task's
    last death blames no bystander: only the poison task is quarantined. Below that count,
    suspects go out in groups spread over hosts (suspects.py), beside bulk work.
    """
    return max(1, max_host_losses - 1)


def is_special(task: Task, isolate_after: int) -> bool:
    """Placed one by one rather than in bulk: suspected poison tasks and spread replicas."""
    return task.host_losses >= isolate_after or (
        task.labels is not None and SPREAD_LABEL in task.labels
    )


def qualified(serving: Iterable[HostView]) -> list[HostView]:
    """The hosts serving a kind that take new work now: not suspect, draining or gone."""
    return [h for h in serving if h.state is _ACTIVE]


def bulk_shares(
    hosts: list[HostView], n: int, prefetch: int, rng: random.Random
) -> list[int] | None:
    """How many of n ready tasks each host takes, within its credit; None when none fit."""
    free = [h.capacity - len(h.inflight) for h in hosts]
    credit = [max(0, f + h.prefetch_credit(prefetch)) for f, h in zip(free, hosts, strict=True)]
    want = min(n, sum(credit))
    if want <= 0:
        return None
    return water_fill(free, credit, want, rng)


def host_credit(h: HostView, prefetch: int) -> int:
    """Tasks the host may take now: free agents plus the prefetch it earned."""
    return h.capacity + h.prefetch_credit(prefetch) - len(h.inflight)


def group_shares(
    group: Group, hosts: list[HostView], prefetch: int, capped: bool, rng: random.Random
) -> list[int]:
    """How many of a group's waiting members each host takes now.

    Capped: each host up to the group's cap (what it took of the group counts), so that one
    death's suspects are spread over hosts. Uncapped: water filling within credit, for a group
    left over when nothing else is queued, so that it never idles a host.
    """
    credits = [max(0, host_credit(h, prefetch)) for h in hosts]
    if not capped:
        free = [h.capacity - len(h.inflight) for h in hosts]
        return water_fill(free, credits, min(group.live, sum(credits)), rng)
    left = group.live
    takes = []
    for h, c in zip(hosts, credits, strict=True):
        n = max(0, min(c, group.room(h), left))
        takes.append(n)
        left -= n
    return takes


def water_fill(free: list[int], credit: list[int], n: int, rng: random.Random) -> list[int]:
    """Split n tasks over hosts by free capacity. free[i] may be <= 0 (prefetch in use)."""
    hosts = len(free)
    take = [0] * hosts
    order = list(range(hosts))
    rng.shuffle(order)  # random tie-break: stable sort below keeps this order among equals
    while n > 0:
        live = [i for i in order if take[i] < credit[i]]
        if not live:
            break
        level = {i: free[i] - take[i] for i in live}
        top = max(level.values())
        tops = [i for i in live if level[i] == top]
        lower = [v for v in level.values() if v < top]
        # Each top host may descend to the next level (or without bound when none is lower).
        depth = top - max(lower) if lower else n
        share, extra = divmod(min(n, depth * len(tops)), len(tops))
        for k, i in enumerate(tops):
            give = min(share + (1 if k < extra else 0), credit[i] - take[i])
            take[i] += give
            n -= give
        if share == 0 and extra == 0:
            break
    return take


def holding_suspects(hosts: list[HostView], isolate_after: int) -> set[HostView]:
    """The hosts running a suspect now: one scan per dispatch, not per suspect and host."""
    return {h for h in hosts if any(t.host_losses >= isolate_after for t in h.inflight.values())}


def special_host(
    task: Task,
    hosts: list[HostView],
    prefetch: int,
    isolate_after: int,
    holding: set[HostView],
) -> HostView | None:
    """The freest host with credit that keeps suspects apart and spread replicas apart.

    Suspects never share a host (`holding`: the hosts that run one, see holding_suspects).
    Replicas of one spread group go to hosts that hold none of the group, unless every host
    serving the kind already does (more replicas than hosts): then any host with credit will do.
    """
    suspect = task.host_losses >= isolate_after
    group = task.labels.get(SPREAD_LABEL) if task.labels else None

    def holds_group(h: HostView) -> bool:
        return any(t.labels and t.labels.get(SPREAD_LABEL) == group for t in h.inflight.values())

    crowded = {h for h in hosts if holds_group(h)} if group is not None else set()
    if len(crowded) == len(hosts):
        crowded = set()
    best: HostView | None = None
    for h in hosts:
        if h.capacity + h.prefetch_credit(prefetch) <= len(h.inflight) or h in crowded:
            continue
        if suspect and h in holding:
            continue
        if best is None or h.free() > best.free():
            best = h
    return best
