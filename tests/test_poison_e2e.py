"""A poison task on real processes (issue 9, defect 7): quarantined after exactly K host deaths,
and its batch-mates are not starved while the suspects among them are told apart.

The poison task (tests/poison_handlers.py) ends its host with os._exit(1), before the host can
send its started notice. The same 3,000 tasks run once without it and once beside it, in one
swarm, so the slowdown is measured against this machine's load of the moment. The scale is the
one that showed the starvation: 4 hosts x 100 agents hold a host's worth (~100) of suspects
after the first death, which one per host took x3.3 the time alone (see server/suspects.py).
"""

from __future__ import annotations

import time

from swarm.v1 import types_pb2

from tests.helpers import eventually, local_swarm
from tests.raw_client import RawClient, spec

K = 3
# The target, x2. Measured on this 2-vCPU machine shared with other work, 16 runs:
# median x1.30, x1.11-x1.62 (mostly the K hosts' restarts, ~0.5 s each); one suspect per host
# from the first death's co-runners on (before suspects.py's groups): x2.64-x5.79 in 4 runs.
BOUND = 2.0


def test_a_poison_task_costs_k_hosts_and_its_batch_mates_finish_within_twice_their_time() -> None:
    with (
        local_swarm(
            hosts=4,
            agents_per_host=100,
            restart=True,
            modules=["tests.poison_handlers"],
            server_args=["--max-host-losses", str(K)],
        ) as c,
        RawClient(c.address) as client,
    ):
        c.wait_hosts()

        def run(prefix: str, poison: bool) -> float:
            ids = [f"{prefix}{i}" for i in range(3000)]
            started = time.monotonic()
            extra = [spec(f"{prefix}poison", "poison")] if poison else []
            client.submit_ok([*extra, *[spec(i, "sleep", 100) for i in ids]])
            eventually(lambda: all(i in client.results for i in ids), 120, 0.01, what=prefix)
            assert all(client.results[i].state == types_pb2.SUCCEEDED for i in ids)
            return time.monotonic() - started

        alone_s = run("a", poison=False)
        beside_s = run("b", poison=True)
        poison = client.wait_results(6001, 30)["bpoison"]
        print(
            f"\n3,000 x 100 ms on 4 x 100 agents: {alone_s:.2f} s alone, {beside_s:.2f} s beside "
            f"a poison task (x{beside_s / alone_s:.2f}); restarts {c.restarts}"
        )
        assert poison.state == types_pb2.FAILED and poison.error.reason == types_pb2.HOST_LOST
        eventually(lambda: sum(c.restarts) >= K, 10, what=f"{K} restarts")
        lost = [(e.host_id, e.requeued, e.quarantined) for e in c.lost_events() if e.lost]
        assert sum(c.restarts) == K, (c.restarts, lost)  # exactly K hosts, the first included
        assert beside_s < BOUND * alone_s, (
            f"{beside_s:.2f} s beside the poison, {alone_s:.2f} s alone"
        )
