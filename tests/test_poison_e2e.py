"""A poison task on real processes (issue 9, defect 7): quarantined after exactly K host deaths,
and its batch-mates are not starved while it is isolated.

The poison task (tests/poison_handlers.py) ends its host with os._exit(1), before the host can
send its started notice. The same 3,000 tasks run once without it and once beside it, in one
swarm, so the slowdown is measured against this machine's load of the moment.
"""

from __future__ import annotations

import time

from swarm.v1 import types_pb2

from tests.helpers import eventually, local_swarm
from tests.raw_client import RawClient, spec

K = 3


def test_a_poison_task_costs_k_hosts_and_its_batch_mates_finish_within_twice_their_time() -> None:
    with (
        local_swarm(
            hosts=4,
            agents_per_host=10,
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
            client.submit_ok([*extra, *[spec(i, "sleep", 40) for i in ids]])
            eventually(lambda: all(i in client.results for i in ids), 120, 0.01, what=prefix)
            assert all(client.results[i].state == types_pb2.SUCCEEDED for i in ids)
            return time.monotonic() - started

        alone_s = run("a", poison=False)
        beside_s = run("b", poison=True)
        poison = client.wait_results(6001, 30)["bpoison"]
        print(
            f"\n3,000 tasks: {alone_s:.2f} s alone, {beside_s:.2f} s beside a poison task "
            f"(x{beside_s / alone_s:.2f}); restarts {c.restarts}"
        )
        assert poison.state == types_pb2.FAILED and poison.error.reason == types_pb2.HOST_LOST
        eventually(lambda: sum(c.restarts) >= K, 10, what=f"{K} restarts")
        assert sum(c.restarts) == K, c.restarts  # exactly K hosts, the first death counted
        # The target of issue 9 (here x1.2; with 100 agents a host it is x3.3, see the note).
        assert beside_s < 2 * alone_s, f"{beside_s:.2f} s beside the poison, {alone_s:.2f} alone"
