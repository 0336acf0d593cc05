"""W8: the orchestrator SIGKILLed with 100,000 tasks queued, restarted on its journal.

    python -m swarm.bench.durable                      # 100,000 tasks + a 1,000-node DAG
    python -m swarm.bench.durable --tasks 10000 --dag 10x10

A journaled swarm (2 hosts x 500 agents, `swarm up`'s supervisor restarting the orchestrator on
the same port and state directory) first gets one long task per agent (`sleep` 60 s, the
*blockers*), so that what follows queues behind busy agents as in a loaded swarm: `tasks` tasks
of 1 ms (`sleep`) and a DAG with data on its edges (W4's graph, `dag`), at a higher priority,
all at once through the raw protocol (which sees a result delivered twice where the SDK would
hide it). Once every batch is answered (durable), the orchestrator gets SIGKILL. The client
reopens its session under the same client id when the new orchestrator listens, resubmits any
batch it had no answer for (same ids: a journaled one is recognised, never run twice), waits for
every result of the load; it cancels the blockers as soon as it is back (their hosts report
them on reconnecting and they are adopted, docs/durability.md; left to run, they would hold the
agents for a minute and the DAG's later layers behind them).

Figures (times from the restart: the supervisor's spawn of the new process):

* `w8_lost`: accepted tasks (load and blockers) with no final result; `w8_wrong`: a wrong output;
* `w8_duplicates`: a result delivered twice on one session (always a bug);
* `w8_redelivered`: results delivered before the kill and again after it: allowed, as the
  client's ack was not journaled yet (acks get no answer); the SDK resolves a future once;
* `w8_first_result_s`, `w8_last_result_s`: restart to the first and the last result of the load;
* `w8_recovery_s`: the new orchestrator's journal load and rebuild, by its own log line;
* `w8_restart_s`: SIGKILL to the restart (the supervisor seeing the death, and its backoff);
* `w8_queued_at_kill`: tasks of the load accepted and without a result when the kill came.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from swarm.bench import workloads
from swarm.bench.local import bench_swarm
from swarm.bench.raw import RawSession, output_of
from swarm.deploy.local import LocalSwarm
from swarm.v1 import types_pb2

HOSTS = 2
AGENTS = 500
BLOCK_MS = 60_000  # longer than any submission: the agents stay busy until the kill
CLIENT_ID = "w8"
BATCH = 1000
RECOVERED = re.compile(r"unfinished tasks restored.* in ([\d.]+) s")


@dataclass(slots=True)
class CrashRun:
    tasks: int  # the load: 1 ms tasks and the DAG (blockers not counted)
    accepted_at_kill: int = 0
    queued_at_kill: int = 0
    lost: int = 0
    wrong: int = 0
    duplicates: int = 0
    redelivered: int = 0
    resubmitted: int = 0  # tasks in batches the kill left unanswered, sent again
    restart_s: float = 0.0
    recovery_s: float | None = None
    first_result_s: float | None = None
    last_result_s: float | None = None
    log_tail: str = ""

    def figures(self) -> dict[str, float | int | None]:
        out = asdict(self)
        out.pop("log_tail")
        return {f"w8_{k}": v for k, v in out.items()}


@dataclass(slots=True)
class Part:
    """Tasks of one kind and priority, submitted in batches of BATCH."""

    kind: str
    priority: int
    ids: list[str]
    payloads: list[bytes]
    deps: list[list[str]] | None = None
    want: list[bytes] = field(default_factory=list)

    def chunks(self) -> list[tuple[Part, range]]:
        return [
            (self, range(i, min(i + BATCH, len(self.ids)))) for i in range(0, len(self.ids), BATCH)
        ]


def parts(tasks: int, layers: int, width: int) -> tuple[Part, Part, Part]:
    """The blockers, the DAG and the 1 ms tasks."""
    block = b"%d" % BLOCK_MS
    blockers = Part("sleep", 0, [f"b{i}" for i in range(HOSTS * AGENTS)], [block] * HOSTS * AGENTS)
    payloads, parents, labels = workloads.dag(layers, width)
    gids = [f"g{i}" for i in range(len(payloads))]
    graph = Part("dag", 1, gids, payloads, [[gids[j] for j in ps] for ps in parents], labels)
    one_ms = Part("sleep", 1, [f"t{i}" for i in range(tasks)], [b"1"] * tasks, want=[b"1"] * tasks)
    return blockers, graph, one_ms


async def _submit(
    session: RawSession, chunks: list[tuple[Part, range]], which: list[int], sent: dict[int, int]
) -> None:
    """One message per chunk named in `which`; `sent` maps each batch id to its chunk's index."""
    for n in which:
        part, r = chunks[n]
        deps = part.deps[r.start : r.stop] if part.deps else None
        ids, payloads = part.ids[r.start : r.stop], part.payloads[r.start : r.stop]
        (batch_id,) = await session.submit(part.kind, ids, payloads, deps, part.priority)
        sent[batch_id] = n


async def _wait_for(session: RawSession, ids: list[str], timeout_s: float) -> None:
    """Until every one of `ids` has a result on `session`, or the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    results, at = session.results, 0
    while loop.time() < end:
        while at < len(ids) and ids[at] in results:
            at += 1
        if at == len(ids):
            return
        await session.wait_count(len(results) + 1, min(1.0, end - loop.time()))


async def _reopen(
    swarm: LocalSwarm, deadline_s: float, first_new: list[float], new: set[str]
) -> RawSession:
    """The session under the same client id, once the new orchestrator listens; `first_new`
    gets the arrival time of the first result for one of `new`."""

    def seen(at: float, batch: Sequence[types_pb2.TaskResult]) -> None:
        if not first_new and any(r.task_id in new for r in batch):
            first_new.append(at)

    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        session = RawSession(swarm.address, client_id=CLIENT_ID, batch=BATCH, on_results=seen)
        try:
            return await session.__aenter__()
        except Exception:
            await session.__aexit__(None, None, None)
            if loop.time() > end:
                raise
            await asyncio.sleep(0.01)


async def _restarted(swarm: LocalSwarm, old: int, deadline_s: float) -> float:
    """perf_counter() once the supervisor has spawned the orchestrator's successor."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while swarm.orchestrator_pid in (None, old):
        if loop.time() > end:
            raise TimeoutError("the supervisor did not restart the orchestrator")
        await asyncio.sleep(0.002)
    return time.perf_counter()


async def _drive(swarm: LocalSwarm, blockers: Part, load: list[Part]) -> CrashRun:
    load_ids = [i for p in load for i in p.ids]
    out = CrashRun(tasks=len(load_ids))
    chunks = [c for p in (blockers, *load) for c in p.chunks()]
    sent: dict[int, int] = {}
    first = RawSession(swarm.address, client_id=CLIENT_ID, batch=BATCH)
    await first.__aenter__()
    try:
        await first.run("echo", [f"warm{i}" for i in range(200)], [b"w"] * 200)
        await _submit(first, chunks, list(range(len(chunks))), sent)
        await first.wait_accepted(sent, 120)  # every batch durable
        old = swarm.orchestrator_pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        killed_at = time.perf_counter()
    finally:
        await first.__aexit__(None, None, None)
    answered = {sent[b] for b in first.accepted if b in sent}  # chunks durable before the kill
    before = {k for k in first.results if not k.startswith("warm")}
    out.accepted_at_kill = sum(
        len(r) for n, (p, r) in enumerate(chunks) if n in answered and p is not blockers
    )
    out.queued_at_kill = out.accepted_at_kill - len(before - set(blockers.ids))
    restarted = await _restarted(swarm, old, 30)
    out.restart_s = restarted - killed_at
    missing = [i for i in load_ids if i not in before]
    first_new: list[float] = []
    second = await _reopen(swarm, 60, first_new, set(missing))
    try:
        again = [n for n in range(len(chunks)) if n not in answered]
        out.resubmitted = sum(len(chunks[n][1]) for n in again)
        await _submit(second, chunks, again, {})
        # They kept the agents busy until the kill; adopted, they would go on holding them.
        await second.cancel(blockers.ids)
        await _wait_for(second, missing, 4 * len(load_ids) / 1000 + 60)
        if first_new:
            out.first_result_s = first_new[0] - restarted
            out.last_result_s = second.last_result_at - restarted
        await _wait_for(second, [i for i in blockers.ids if i not in before], 60)
        out.duplicates = first.duplicates + second.duplicates
        out.redelivered = sum(1 for k in second.results if k in before)
        everything = [i for i in (*blockers.ids, *load_ids) if i not in before]
        out.lost = sum(1 for i in everything if i not in second.results)
        got = {**first.results, **second.results}
        for part in load:
            for task_id, want in zip(part.ids, part.want, strict=True):
                if task_id in got:
                    out.wrong += _output(got[task_id]) != want
        for task_id in blockers.ids:
            r = got.get(task_id)
            ok = r is None or r.state == types_pb2.CANCELLED or _output(r) == blockers.payloads[0]
            out.wrong += not ok
    finally:
        await second.__aexit__(None, None, None)
    found = RECOVERED.findall(swarm.log("orchestrator"))
    out.recovery_s = float(found[-1]) if found else None
    if out.lost or out.duplicates or out.wrong:
        out.log_tail = swarm.log("orchestrator")[-4000:]
    return out


def _output(result: types_pb2.TaskResult) -> bytes | None:
    try:
        output: bytes = output_of(result)
        return output
    except RuntimeError:  # it failed or was cancelled
        return None


async def crash_run(tasks: int, dag: tuple[int, int] = (10, 100)) -> CrashRun:
    """One W8 run in a journaled swarm of its own (its state directory removed after)."""
    blockers, graph, one_ms = parts(tasks, *dag)
    with tempfile.TemporaryDirectory(prefix="swarm-w8-") as state:
        async with bench_swarm(HOSTS, AGENTS, state_dir=Path(state)) as swarm:
            return await _drive(swarm, blockers, [graph, one_ms])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=workloads.FULL.w8_tasks)
    p.add_argument("--dag", default="10x100", help="LAYERSxWIDTH (default 10x100)")
    args = p.parse_args()
    layers, width = (int(n) for n in args.dag.split("x"))
    from swarm.common.runtime import run

    result = run(crash_run(args.tasks, (layers, width)))
    for key, value in result.figures().items():
        print(f"{key} = {value}")
    if result.log_tail:
        print(result.log_tail)


if __name__ == "__main__":
    main()
