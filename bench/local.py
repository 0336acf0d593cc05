"""The swarm a benchmark runs against: `LocalSwarm`, the supervisor of `swarm up`, on loopback.

    with bench_swarm(hosts=2, agents=500) as swarm:
        swarm.address                    # "127.0.0.1:PORT": bound as port 0 and read back
        at = swarm.kill_host(0)          # SIGKILL the process that runs the agents, at time `at`
        swarm.lost_events()              # when the orchestrator declared hosts lost (its log)

Only the options are the benchmarks' own: the orchestrator logs at INFO (its "host ... left"
lines are INFO, and `lost_events` reads them), hosts are named `h0`, then `h0-r1`, ... after
each restart, so a failover run tells the host that died from the one that replaced it; with
`restart=True` a dead host comes back after the supervisor's backoff, as under `swarm up`.
Leaving the `with` SIGKILLs everything: nothing a benchmark measures is left to drain. Hosts
serve the harmful built-in kinds (`burn` is W7's workload). With `state_dir` the orchestrator
journals there and the supervisor restarts it when it dies (W8), as `swarm up` does.
"""

from __future__ import annotations

from pathlib import Path

from swarm.deploy.local import LocalSwarm

HANDLERS = "swarm.bench.handlers"


def bench_swarm(
    hosts: int = 2, agents: int = 500, *, restart: bool = False, state_dir: Path | None = None
) -> LocalSwarm:
    return LocalSwarm(
        hosts,
        agents,
        modules=[HANDLERS],
        host_ids="generation",
        restart=restart,
        orchestrator_log_level="INFO",
        on_exit="kill",
        test_kinds=True,
        server_args=["--state-dir", str(state_dir)] if state_dir is not None else [],
        restart_orchestrator=state_dir is not None,
    )
