"""Orchestrator RSS under a slow reader (issue 10): a raw Session submits 150,000 echo tasks of
2 KiB and never reads its results; RSS before, after, and after it disconnects.

    python -m tests.benchmarks.slow_reader_rss

Not a test (it takes tens of seconds): the figures go in the notes.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import grpc
import psutil
from swarm.v1 import task_pb2, task_pb2_grpc

from tests.helpers import local_swarm

TASKS, BATCH, PAYLOAD = 150_000, 1000, b"x" * 2048


def main() -> None:
    with local_swarm(hosts=1, agents_per_host=100) as swarm:
        swarm.wait_hosts(1)
        orch = psutil.Process(swarm.orchestrator_pid)
        mb = lambda: orch.memory_info().rss / 1e6  # noqa: E731
        before = mb()
        channel = grpc.insecure_channel(swarm.address)
        stub = task_pb2_grpc.TaskServiceStub(channel)
        out: queue.Queue[task_pb2.ClientMessage | None] = queue.Queue()
        out.put(task_pb2.ClientMessage(open=task_pb2.OpenSession(client_id="slow")))
        for b in range(TASKS // BATCH):
            msg = task_pb2.ClientMessage()
            msg.submit.batch_id = b + 1
            for i in range(BATCH):
                msg.submit.tasks.add(id=f"t{b}-{i}", kind="echo", payload=PAYLOAD)
            out.put(msg)

        def requests() -> Iterator[task_pb2.ClientMessage]:
            while (m := out.get()) is not None:
                yield m

        call = stub.Session(requests())  # never read: results pile up
        status = task_pb2_grpc.TaskServiceStub(channel)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until every submitted task is final
            s = status.GetStatus(task_pb2.GetStatusRequest())
            live = s.tasks.pending + s.tasks.queued + s.tasks.assigned + s.tasks.running
            if out.empty() and live == 0:
                break
            time.sleep(0.5)
        s = status.GetStatus(task_pb2.GetStatusRequest())
        unacked = sum(c.unacked_results for c in s.clients)
        after = mb()
        out.put(None)
        call.cancel()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the orchestrator saw the session end
            clients = status.GetStatus(task_pb2.GetStatusRequest()).clients
            if not any(c.connected for c in clients):
                break
            time.sleep(0.1)
        gone = mb()
        print(
            f"orchestrator RSS: before {before:.0f} MB, after {after:.0f} MB "
            f"({unacked} unacknowledged results held, {s.tasks.succeeded} succeeded), "
            f"after disconnect {gone:.0f} MB"
        )
        channel.close()


if __name__ == "__main__":
    main()
