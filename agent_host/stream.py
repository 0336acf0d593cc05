"""One open session of an agent host: the stream after the welcome, and the drain sequence.

Three loops run under one supervisor (`Stream.run`), which waits on them with FIRST_COMPLETED
and cancels the rest: the reader applies assignments, cancels and confirmations of started
notices (`started_ok`), the writer sends whatever the outbox gathered since its last write
(at most once per COALESCE_S while many handlers run; once a drain is asked for, it runs the
drain sequence, `_drain`), the beat loop marks a heartbeat due. The writer is the only one
that writes: a gRPC stream takes one write at a time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import grpc
from swarm.agent_host.executor import Executor, Job
from swarm.agent_host.lifecycle import Conn
from swarm.v1 import host_pb2

if TYPE_CHECKING:
    from swarm.agent_host.host import AgentHost

log = logging.getLogger("swarm.agent_host")

SERVER_END_WAIT_S = 5.0  # after our goodbye, the orchestrator ends the call within this

# While at least COALESCE_BUSY handlers are in flight (agents waiting on I/O), their results
# arrive as a stream, a few per turn of the loop, and the writer sends at most one batch per
# COALESCE_S: one message then carries what a write per turn sent as several, each of which
# costs the orchestrator and this host a gRPC message (~100 µs each side), at most COALESCE_S
# later. With fewer in flight every result goes out on the next turn: then a lone task's
# latency is what counts (docs/performance.md, change 31).
COALESCE_BUSY = 64
COALESCE_S = 0.001


def _column_jobs(batch: host_pb2.AssignBatch) -> list[Job]:
    keys, attempts, payloads = batch.task_ids, batch.attempts, batch.payloads
    kinds = batch.kinds or [batch.kind] * len(keys)
    jobs = [
        Job(key, attempt, kind, payload, 0.0)
        for key, attempt, kind, payload in zip(keys, attempts, kinds, payloads, strict=True)
    ]
    if batch.dep_counts:
        ids, outputs = list(batch.dep_task_ids), list(batch.dep_outputs)
        if len(ids) != len(outputs):
            raise ValueError("dep_task_ids and dep_outputs differ in length")
        at = 0
        for job, n in zip(jobs, batch.dep_counts, strict=True):
            if n:
                end = at + n
                job.set_deps(ids[at:end], outputs[at:end])
                at = end
    return jobs


def jobs_from_pb(batch: host_pb2.AssignBatch) -> list[Job]:
    """Rows first, then the column form's entries (host.proto, AssignBatch), in order."""
    jobs: list[Job] = []
    append = jobs.append
    columns = _column_jobs(batch) if batch.task_ids else []
    if not batch.tasks:
        return columns
    for a in batch.tasks:
        job = Job(a.task_id, a.attempt, a.kind, a.payload, a.timeout_s)
        job.report_start = a.report_start
        if a.deps:
            job.set_deps([d.task_id for d in a.deps], [d.output for d in a.deps])
        if a.labels:
            job.labels = dict(a.labels)
        append(job)
    jobs.extend(columns)
    return jobs


class Stream:
    def __init__(self, host: AgentHost, call: Any, executor: Executor) -> None:
        self.host = host
        self.call = call
        self.ex = executor
        self.outbox = host.outbox
        self.wake = asyncio.Event()
        self.beat_due = True
        self.loops: list[asyncio.Task[None]] = []
        self.said_goodbye = False  # our end of stream is written: the server ends the call next
        self.last_assign_seq = 0

    async def run(self) -> None:
        """Until one loop ends: returns on a clean end, raises the error of a failed loop."""
        self.loops = loops = [
            asyncio.create_task(self._read(), name="host-read"),
            asyncio.create_task(self._write(), name="host-write"),
            asyncio.create_task(self._beat(), name="host-beat"),
        ]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            if self.said_goodbye and not loops[1].done():
                # The reader saw the server end the call first: the writer sees it next.
                await loops[1]
        finally:
            for t in loops:
                t.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _read(self) -> None:
        ex, host = self.ex, self.host
        while True:
            msg = await self.call.read()
            if msg is grpc.aio.EOF:
                return
            which = msg.WhichOneof("msg")
            if which == "assign":
                jobs = jobs_from_pb(msg.assign)
                self.last_assign_seq = msg.assign.seq
                if host.drain_grace is None:
                    ex.submit(jobs)
                else:
                    self.outbox.returned.extend((j.key, j.attempt) for j in jobs)
                    self.wake.set()
            elif which == "cancel":
                ex.cancel([(a.task_id, a.attempt) for a in msg.cancel.attempts])
            elif which == "started_ok":
                ex.confirm([(a.task_id, a.attempt) for a in msg.started_ok.attempts])
            elif which == "drain":
                host.drain(msg.drain.grace_s)

    async def _write(self) -> None:
        """Send what the outbox gathered whenever woken; once a drain is asked for, the drain
        sequence takes the stream over."""
        host, ex = self.host, self.ex
        loop = asyncio.get_running_loop()
        last = -COALESCE_S  # when the last write ended
        while host.drain_grace is None:
            await self.wake.wait()
            if ex.busy >= COALESCE_BUSY:
                delay = last + COALESCE_S - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.wake.clear()
            if host.drain_grace is None:
                await self._flush()
                last = loop.time()
        await self._drain()

    async def _flush(self) -> None:
        call, outbox, ex = self.call, self.outbox, self.ex
        beat = None
        if self.beat_due or outbox.capacity_changed:
            self.beat_due = outbox.capacity_changed = False
            # Snapshot first: every result finished before it is in the batch written next,
            # ahead of the heartbeat, so reconciliation never mistakes one for lost.
            beat = self._heartbeat()
        # Announced jobs stay held (Executor.held) until the reader gets their `started_ok`.
        started = outbox.take_started(ex.unreported_starts() if beat is not None else [])
        for msg in (*outbox.take_results(), started, outbox.take_returned(), beat):
            if msg is not None:
                await call.write(msg)

    async def _drain(self) -> None:
        """The drain sequence, in this order:
        1. stop taking work (the reader hands back assignments that still arrive);
        2. tell the orchestrator `draining`, so that it assigns nothing more here;
        3. hand back the queue that has not started;
        4. let what runs finish within the grace period, sending results as they come;
        5. past the grace period, hand back what still runs and cancel it;
        6. flush the last results and hand-backs;
        7. half-close the stream: our goodbye;
        8. wait for the server to end the call (it has seen everything then): DRAINED.
        """
        call, outbox, ex, host = self.call, self.outbox, self.ex, self.host
        grace = host.drain_grace
        assert grace is not None
        loop = asyncio.get_running_loop()
        host.life.to(Conn.DRAINING)
        ex.accepting = False  # 1
        await call.write(host_pb2.HostMessage(draining=host_pb2.Draining(grace_s=grace)))  # 2
        outbox.returned.extend((j.key, j.attempt) for j in ex.take_queue())  # 3
        log.info(
            "host %s draining: %d running, grace %.1f s",
            *(host.host_id, ex.busy, grace),
            extra={
                "event": "host_drain_started",
                "host_id": host.host_id,
                "running": ex.busy,
                "grace_s": grace,
            },
        )
        deadline = loop.time() + grace
        timer = loop.call_at(deadline, self.wake.set)
        try:
            while True:  # 4
                await self._flush()
                if not ex.busy or loop.time() >= deadline:
                    break
                await self.wake.wait()
                self.wake.clear()
        finally:
            timer.cancel()
        if ex.busy:  # 5: to run elsewhere
            outbox.returned.extend((j.key, j.attempt) for j in ex.running_jobs())
            ex.cancel_running()
        await self._flush()  # 6
        self.said_goodbye = True
        await call.done_writing()  # 7
        await asyncio.wait_for(call.code(), SERVER_END_WAIT_S)  # 8
        host.life.to(Conn.DRAINED)

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        host = self.host
        host.proc.cpu_percent(None)
        while True:
            interval = host.heartbeat_interval_s
            t0 = loop.time()
            await asyncio.sleep(interval)
            host.lag_ms = max(0.0, (loop.time() - t0 - interval) * 1000.0)
            if self.ex.maybe_shrink(loop.time()):
                self.outbox.capacity_changed = True
            self.beat_due = True
            self.wake.set()

    def _heartbeat(self) -> host_pb2.HostMessage:
        ex, proc = self.ex, self.host.proc
        with proc.oneshot():
            cpu = proc.cpu_percent(None)
            rss = proc.memory_info().rss
        hb = host_pb2.Heartbeat(
            running=ex.busy,
            free=len(ex.idle),
            local_queue=len(ex.queue),
            capacity=ex.capacity,
            loop_lag_ms=self.host.lag_ms,
            cpu_percent=cpu,
            rss_bytes=rss,
            tasks_done=ex.done,
            last_assign_seq=self.last_assign_seq,
        )
        add = hb.held.add
        for job in ex.running.values():
            if not job.cancelled:
                add(task_id=job.key, attempt=job.attempt)
        for job in (*ex.queue, *ex.held.values()):
            add(task_id=job.key, attempt=job.attempt)
        return host_pb2.HostMessage(heartbeat=hb)
