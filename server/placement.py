"""Placement: how many of n ready tasks each candidate host gets.

Hosts with the most free agents fill first ("water filling"): the freest host takes tasks until
it is level with the next, then both take in turn, and so on, never past a host's credit
(free agents plus prefetch). Ties are broken at random so equal hosts share evenly over time.
O(H^2) per call for H candidate hosts, independent of n.
"""

from __future__ import annotations

import random


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
