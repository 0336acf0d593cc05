"""Telling a poison task from its batch-mates: blame, groups, isolation and explained deaths.

A poison task kills every host it runs on, and a dead host cannot say which of its tasks did
it. The rule, with K = max_host_losses:

1. **Blame.** A host death blames every task that may have run there (core_hosts.py): each gets
   `host_losses += 1` and the death's `Loss` in `Task.blamed`. A task blamed K times is
   quarantined (FAILED, HOST_LOST), so a poison task costs exactly the K hosts it kills.
2. **Isolation at K-1** (placement.isolate_after). A task at K-1 never shares a host with
   another task at K-1. This is forced, not chosen: the poison task's K-th death blames whoever
   runs beside it, and a task at K-1 beside it would be quarantined with it. Any task at K-1
   may be the poison task, so no two may meet. Isolation bounds how fast suspects run (one per
   host at a time), so the rest of the rule keeps the number that reach K-1 small.
3. **Groups below K-1.** The tasks one death blames that stay below K-1 form a group (one per
   kind). A group is split at once over the hosts serving its kind, at least in halves: no host
   takes more than ceil(members / max(2, hosts)) of it while other work is queued. The poison
   task's next death then blames only its own part, so the tasks that have shared every death
   with it shrink by that factor per death instead of moving on together (a host's worth, ~100,
   reached K-1 together before and then ran one per host: x3.3 the time). The part that
   survives its host is cleared by finishing. A group never idles a host: past its cap it is
   placed like bulk work once nothing else is queued (the split is lost only then).
   A group first run whole on one host and split after dying again, as first proposed, would
   spend one of the poison task's K deaths without shrinking the suspects: with K = 3 there is
   one death to spend between the first (the batch) and the last (alone among suspects).
4. **Explained deaths.** When a task is quarantined, the deaths that blamed it are explained:
   every other task they blamed loses that blame (`host_losses -= 1`) and, below K-1, leaves
   isolation for the bulk queue. Once the poison task is out, the suspects of its lineage go back
   to running in bulk rather than one per host. A second poison task that shared a death with
   the first is blamed for its own deaths only, and so may cost one host more than K.

With one poison task and no other deaths, no innocent task is quarantined: its blame comes only
from deaths it shared with the poison task, so at the poison task's K-th death it would need
K-1 of them already, and isolation keeps two tasks at K-1 apart. Outside kills (the chaos kill
storm) blame whoever ran, K times over, in rare cases; explaining the deaths of a task so
quarantined clears its co-victims of them, and groups keep one death's victims from meeting
again (tests/test_chaos.py's storm, ≤ 1 % allowed: 3-6 of 10,000 in three runs here).

Cost: all of this is per loss (blame, groups, explanation) or per dispatch while a group waits;
a task never blamed pays nothing on the hot path.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swarm.server.hosts import HostView
    from swarm.server.model import Task


class Loss:
    """One host death's blame: the keys of the tasks it blamed (keys, not tasks: a task refers
    to its losses, so a loss referring back would make a reference cycle per death)."""

    __slots__ = ("explained", "keys")

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.explained = False  # by a quarantined task: its blame is withdrawn from the others


class Group:
    """Tasks one death blamed, below isolation: spread over hosts, `cap` at most on each."""

    __slots__ = ("cap", "live", "placed", "queued", "tasks")

    def __init__(self, members: int, hosts: int) -> None:
        parts = max(2, hosts)
        self.cap = -(-members // parts)
        self.tasks: deque[Task] = deque()  # waiting; removal is lazy, as in ReadyQueue
        self.live = 0  # waiting members really queued
        self.placed: dict[HostView, int] = {}  # members each host session took
        self.queued = False  # in its ReadyQueue's group lane

    def room(self, host: HostView) -> int:
        return self.cap - self.placed.get(host, 0)
