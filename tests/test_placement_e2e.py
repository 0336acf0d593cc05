"""Placement on real processes: short work is not stranded behind long work (issue 9, defect 8).

Prefetch (tasks a host holds beyond its free agents) hides the round trip between batches, but
a task prefetched to a host whose agents are all in long tasks waits for them while another
host may sit idle. A host is now prefetched only as much as it finished lately.
"""

from __future__ import annotations

import time

from swarm.v1 import types_pb2

from tests.helpers import eventually, local_swarm
from tests.raw_client import RawClient, spec


def test_short_tasks_do_not_wait_behind_long_ones_while_a_host_is_idle() -> None:
    with local_swarm(hosts=2, agents_per_host=10) as c, RawClient(c.address) as client:
        c.wait_hosts()
        client.submit_ok([spec(f"long{i}", "sleep", 6000) for i in range(20)])
        eventually(
            lambda: sum(h.running for h in c.status().hosts) == 20, 10, what="both hosts full"
        )
        c.add_host()
        c.wait_hosts(3)
        short = [f"short{i}" for i in range(30)]
        sent = time.monotonic()
        client.submit_ok([spec(i, "sleep", 50) for i in short])
        eventually(lambda: all(i in client.results for i in short), 10, 0.005, what="short")
        took_s = time.monotonic() - sent
        # 30 x 50 ms on an idle host of 10 agents: ~0.2 s. Stranded behind a 6 s task: ~5 s.
        assert took_s < 2.0, f"the short tasks took {took_s:.2f} s"
        assert all(client.results[i].state == types_pb2.SUCCEEDED for i in short)
        print(f"\n30 short tasks beside 20 long ones: {took_s:.3f} s")
