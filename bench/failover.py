"""W5: failover. Sleeping tasks on 2 hosts x 10 agents; one host process is killed or frozen.

Each run starts its own swarm, submits every task at once through the raw protocol (which sees
a result delivered twice, where the SDK would hide it), and signals host 0 some time after the
first submit:

* `none`: no fault, the baseline wall time;
* `kill`: SIGKILL, and the host is started again at once, as the `swarm up` supervisor does;
* `kill-no-restart`: SIGKILL, the capacity stays halved;
* `stop`: SIGSTOP (a hung host whose socket stays open), SIGCONT once it was declared lost, so
  its late results must be fenced off.

Detection time runs from the signal to the orchestrator's "host ... lost" log line (its
timestamps have millisecond resolution).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from swarm.bench.local import bench_swarm
from swarm.bench.raw import SUCCEEDED, RawSession
from swarm.deploy.local import LocalSwarm

MODES = ("none", "kill", "kill-no-restart", "stop")
HOSTS = 2
AGENTS = 10
SLEEP_MS = 50
# After the last result, how long to keep listening for a result delivered twice.
LISTEN_AFTER_S = 1.0


@dataclass(slots=True)
class FailoverRun:
    mode: str
    tasks: int
    ok: int = 0
    errored: int = 0
    lost: int = 0
    duplicates: int = 0
    wall_s: float = 0.0
    detect_ms: float | None = None
    requeued: int | None = None
    restarts: int = 0
    log_tail: str = ""  # the orchestrator's log when something went wrong, to see why


async def _cont_when_lost(swarm: LocalSwarm, host_id: str, deadline_s: float) -> float | None:
    """Poll the orchestrator's log until it declares `host_id` lost, then SIGCONT the frozen
    host at once (it wakes up fenced off: its late results must be dropped). Returns the
    wall-clock time of the declaration, None if it never came."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while loop.time() < end:
        for event in swarm.lost_events():
            if event.host_id == host_id:
                swarm.cont_host(0)
                return event.at
        await asyncio.sleep(0.01)
    swarm.cont_host(0)
    return None


async def _drive(swarm: LocalSwarm, mode: str, tasks: int, fault_after_s: float) -> FailoverRun:
    out = FailoverRun(mode, tasks)
    ideal_s = tasks * SLEEP_MS / 1000 / (HOSTS * AGENTS)
    deadline_s = 4 * ideal_s + 15
    async with RawSession(swarm.address, batch=1000) as session:
        warm = [f"warm{i}" for i in range(200)]
        await session.run("echo", warm, [b"%d" % i for i in range(200)])
        ids = [f"t{i}" for i in range(tasks)]
        payload = b"%d" % SLEEP_MS
        fault_at: list[float] = []
        loop = asyncio.get_running_loop()
        if mode in ("kill", "kill-no-restart"):
            loop.call_later(fault_after_s, lambda: fault_at.append(swarm.kill_host(0)))
        elif mode == "stop":
            loop.call_later(fault_after_s, lambda: fault_at.append(swarm.stop_host(0)))
        t0 = time.perf_counter()
        await session.submit("sleep", ids, [payload] * tasks)
        watcher = None
        if mode == "stop":
            watcher = asyncio.create_task(_cont_when_lost(swarm, "h0", fault_after_s + 30))
        want = len(warm) + tasks
        complete = await session.wait_count(want, deadline_s)
        out.wall_s = session.last_result_at - t0
        if watcher is not None:
            await watcher
        if complete:
            await asyncio.sleep(LISTEN_AFTER_S)  # an observation window, not a wait for a state
    for task_id in ids:
        result = session.results.get(task_id)
        if result is None:
            out.lost += 1
        elif result.state == SUCCEEDED and result.output == payload:
            out.ok += 1
        else:
            out.errored += 1
    out.duplicates = session.duplicates
    if fault_at:
        events = [e for e in swarm.lost_events() if e.host_id == "h0"]
        if events:
            out.detect_ms = (events[0].at - fault_at[0]) * 1000
            out.requeued = events[0].requeued
    out.restarts = sum(swarm.restarts)
    if out.lost or out.duplicates or (fault_at and out.detect_ms is None):
        out.log_tail = swarm.log("orchestrator")[-4000:]
    return out


async def failover_run(mode: str, tasks: int, fault_after_s: float) -> FailoverRun:
    """One run in a swarm of its own (started before the clock starts, killed after)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    with bench_swarm(HOSTS, AGENTS, restart=mode == "kill") as swarm:
        return await _drive(swarm, mode, tasks, fault_after_s)


def w5_figures(runs: dict[str, FailoverRun]) -> dict[str, float | int | None]:
    """The W5 keys of docs/workloads.md (from the `kill` run) plus the variants'."""
    base, kill, stop = runs["none"], runs["kill"], runs["stop"]
    figures: dict[str, float | int | None] = {
        "w5_ok": kill.ok,
        "w5_errored": kill.errored,
        "w5_lost": kill.lost,
        "w5_duplicates": kill.duplicates,
        "w5_slowdown": kill.wall_s / base.wall_s,
        "w5_detect_ms": kill.detect_ms,
        "w5_requeued": kill.requeued,
        "w5_stop_detect_ms": stop.detect_ms,
        "w5_stop_lost": stop.lost,
        "w5_stop_duplicates": stop.duplicates,
        "w5_stop_errored": stop.errored,
        "w5_stop_slowdown": stop.wall_s / base.wall_s,
    }
    no_restart = runs.get("kill-no-restart")
    if no_restart is not None:
        figures["w5_no_restart_slowdown"] = no_restart.wall_s / base.wall_s
        figures["w5_no_restart_lost"] = no_restart.lost
        figures["w5_no_restart_duplicates"] = no_restart.duplicates
    return figures
